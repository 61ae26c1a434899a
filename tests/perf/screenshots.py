"""Screenshots of every page and dialog, light and dark, at 1000x650 and 1600x1000, and both again with
the text at 200%, to look at.

What it shows
    The real window on a throw-away data folder with the starter model installed twice (once under a
    very long file name, for the model picker and My models), a long conversation (Markdown, code,
    a formula, a long unbroken word), then each page (Chat, Discover, My models, the welcome page)
    and each dialog (Preferences, Local API server, Remote engines, Keyboard shortcuts, About); and
    the empty states: a window with no model installed. Each theme runs in a process of its own
    (Qt picks the palette at start).

Run
    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/perf/screenshots.py --out /tmp/shots
    (then open the PNGs: alignment, spacing, clipping, dark mode, long text, empty states)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: (width, height, text scale): the smallest window, a large one, and both with the text at 200%.
SHOTS = ((1000, 650, 1.0), (1600, 1000, 1.0), (1000, 650, 2.0), (1600, 1000, 2.0))
LONG_NAME = "Some-Organisation_Very-Long-Model-Name-Instruct-v2.5-Experimental-Merge.Q4_1.gguf"
CONVERSATION = [
    ("user", "How do I solve a quadratic equation? Show an example in Python too."),
    (
        "assistant",
        "For $ax^2 + bx + c = 0$ the roots are\n\n$$\nx = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}\n$$\n\n"
        "| a | b | c | roots |\n|---|---|---|---|\n| 1 | -3 | 2 | 1, 2 |\n\n"
        "```python\nimport math\n\ndef roots(a, b, c):\n    d = math.sqrt(b * b - 4 * a * c)\n"
        "    return (-b - d) / (2 * a), (-b + d) / (2 * a)\n```\n\n"
        "A **long** word that does not break: " + "x" * 120,
    ),
    ("user", "Thanks! " * 40),
    ("assistant", "You are welcome. " * 30),
]


def TOOL_USES() -> list[object]:
    """Tool calls in every state, one with long arguments and one unfolded."""
    from app.core.chat.tool_uses import ToolStatus, ToolUse

    long = '{"path": "' + "/home/someone/Documents/a rather long folder name" * 3 + '/notes.md"}'
    return [
        ToolUse(
            "call_1", "files__read_file", long, ToolStatus.DONE, "# Notes\n" + "A line of notes.\n" * 6, True
        ),
        ToolUse("call_2", "calc__add", '{"a": 2, "b": 3}', ToolStatus.DONE, "5"),
        ToolUse(
            "call_3",
            "web__search",
            '{"q": "fireside"}',
            ToolStatus.TIMED_OUT,
            "search gave no result within 60 s.",
        ),
        ToolUse("call_4", "calc__add", '{"a": 40, "b": 2}'),
    ]


def _wait(app: object, until: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let Qt run until `until()` holds (or fail after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the window")
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)


def _settle(app: object, seconds: float = 0.3) -> None:
    """Let layouts and late text (the keyring's answer, a model's limits) settle before a grab: a
    grab taken at once can show a frame that no user ever sees."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)


def one_theme(theme: str, out: Path) -> None:
    """Every screenshot in `theme` (run in a process of its own)."""
    os.environ["FIRESIDE_THEME"] = theme
    from PySide6.QtGui import QFont

    from app.core.chat.messages import Role
    from app.core.models import starter
    from app.core.platform import paths
    from app.core.settings import Settings
    from app.ui.shell.application import create_app
    from app.ui.shell.main_window import MainWindow

    app = create_app()
    out.mkdir(parents=True, exist_ok=True)
    system_font = QFont(app.font())
    for width, height, scale in SHOTS:
        size = (width, height)
        tag = f"{theme}-{width}x{height}" + (f"-text{int(scale * 100)}" if scale != 1.0 else "")
        font = QFont(system_font)
        font.setPointSizeF(system_font.pointSizeF() * scale)  # as a system set to larger text would
        app.setFont(font)
        with tempfile.TemporaryDirectory(prefix="fireside-shots-") as data:
            paths.set_data_dir(data)
            models = Path(data) / "models"
            installed = starter.install(models)
            os.link(installed, models / LONG_NAME)
            window = MainWindow(settings=Settings())
            window.resize(*size)
            window.show()
            window.start(str(models / LONG_NAME))
            _wait(app, lambda w=window: w.loaded is not None)
            for role, text in CONVERSATION:
                window.session.transcript.add(Role(role), text)
            row = window.session.transcript.add(Role.ASSISTANT, "Let me look that up and add it up.")
            window.session.transcript.set_tool_uses(row, TOOL_USES())
            window.tool_approvals.refresh()  # the bar for the call that waits
            _wait(app, lambda: True)
            for page in ("chat", "discover", "library", "welcome"):
                window.show_page(page)
                _settle(app)
                window.grab().save(str(out / f"{tag}-page-{page}.png"))
            window.show_page("chat")
            for section in (*window.side.sections.values(), window.sampling.more):
                section.set_expanded(True)  # the drawer with every section open, scrolled down
            _settle(app)
            window.side.verticalScrollBar().setValue(window.side.verticalScrollBar().maximum())
            _settle(app)
            window.grab().save(str(out / f"{tag}-page-chat-drawer-open.png"))
            for name in (
                "preferences",
                "server_panel",
                "remote_engines",
                "mcp_servers",
                "shortcuts",
                "about",
            ):
                dialog = getattr(window.dialogs, name)()
                _settle(app)
                dialog.grab().save(str(out / f"{tag}-dialog-{name}.png"))
                dialog.close()
            window.close()
        with tempfile.TemporaryDirectory(prefix="fireside-shots-empty-") as data:
            paths.set_data_dir(data)
            # No starter model in the cache either, or a new data folder gets it linked in.
            os.environ[paths.MODEL_CACHE_ENV] = str(Path(data) / "no-cache")
            empty = MainWindow(settings=Settings())
            empty.resize(*size)
            empty.show()
            empty.start()
            _wait(app, lambda w=empty: w.banner.isVisible(), timeout=20)
            for page in ("chat", "discover", "library"):
                empty.show_page(page)
                _settle(app)
                empty.grab().save(str(out / f"{tag}-empty-{page}.png"))
            empty.close()
            del os.environ[paths.MODEL_CACHE_ENV]


def main() -> int:
    """Both themes, each in a child process; prints where the files went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "fireside-shots")
    parser.add_argument("--theme", choices=("light", "dark"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.theme:
        one_theme(args.theme, args.out)
        return 0
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    for theme in ("light", "dark"):
        subprocess.run(
            [sys.executable, __file__, "--theme", theme, "--out", str(args.out)], env=env, check=True
        )
    print(f"{len(list(args.out.glob('*.png')))} screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
