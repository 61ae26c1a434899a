"""Startup time: from process launch to the main window on screen, and to the model being loaded.

What it measures
    `python -m app --data-dir TMP` is started as a fresh subprocess (`--repeats` times, each with a
    new, empty data folder, so every launch also installs the cached starter model into it the way a
    first launch does). For each launch it reports, in seconds since the parent stamped
    `time.time()` right before starting the process:

    * interpreter up: the child's first line of Python ran;
    * imports: the app's UI modules (Qt included) are imported;
    * show(): `MainWindow.show()` is called (QApplication, theme and window are built);
    * shown: the window's first paint has finished (target <= 1.5 s);
    * load requested: the inference thread starts on the model (the models folder has been scanned:
      the cached starter model verified and linked into the new data folder, its GGUF header read);
    * llama.cpp loading: llama.cpp's first progress report (`llama_cpp` imported by then);
    * loaded: `window.loaded` is set (the starter model is loaded and the window says Ready);

    and whether `llama_cpp` (and other heavy modules) were already imported when the window was
    shown: `llama_cpp` must not be, it is to be imported only after the window is painted.

How it measures
    The app's code is not changed. The subprocess runs this file with `--child`: a small wrapper
    that imports `app.ui.shell.main_window`, wraps `MainWindow.show` (class level, in the child only), and
    then runs the `app` package exactly as `python -m app --data-dir TMP` does
    (`runpy.run_module("app", run_name="__main__")`, so `app.cli.main()` -> `app.ui.application.run()`
    -> qasync loop). The wrapped `show()` installs an application event filter; the first Paint
    event of the main window (or one of its children) is followed by a zero-timer, whose firing
    marks "shown" (the paint is done by then). A slot on `bridge.loaded` marks "loaded" and
    quits the app. The child prints one JSON line that the parent collects.

    Importing `app.ui.shell.main_window` first only moves imports that `run()` does anyway earlier; the
    total until the window is shown is the same work.

Run
    .venv/bin/python tests/perf/bench_startup.py              # 5 launches, medians
    .venv/bin/python tests/perf/bench_startup.py --repeats 2  # quick look

QT_QPA_PLATFORM defaults to offscreen for the child (no display needed). The starter model must be in
the cache (`python -m app.core.models.starter` fetches it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARKER = "FIRESIDE_BENCH_STARTUP "
TARGET_SHOWN_S = 1.5
#: Modules worth knowing about at show time (llama_cpp must be absent).
HEAVY = ("llama_cpp", "numpy", "gguf", "markdown_it", "pygments", "huggingface_hub", "keyring", "qasync")


# ----- child: runs inside the launched process ---------------------------------------------------


def child(launch: float, data_dir: str, timeout_s: float) -> int:
    """Run the app as `python -m app --data-dir DATA_DIR` would, with timing hooks; print one JSON line."""
    marks: dict[str, Any] = {"interpreter": time.time() - launch}
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import runpy

    from app.ui.shell.main_window import MainWindow

    marks["imports"] = time.time() - launch
    original_show = MainWindow.show
    state: dict[str, Any] = {"hooked": False, "painted": False}

    def finish() -> None:
        from PySide6.QtWidgets import QApplication

        if not state.get("printed"):
            state["printed"] = True
            print(MARKER + json.dumps(marks), flush=True)
        QApplication.quit()

    def show(self: MainWindow) -> None:
        from PySide6.QtCore import QEvent, QObject, QTimer
        from PySide6.QtWidgets import QApplication, QWidget

        if state["hooked"]:
            original_show(self)
            return
        state["hooked"] = True
        marks["show_called"] = time.time() - launch
        marks["at_show_called"] = sorted(m for m in HEAVY if m in sys.modules)
        window = self

        def painted() -> None:
            marks["shown"] = time.time() - launch
            marks["at_shown"] = sorted(m for m in HEAVY if m in sys.modules)
            marks["llama_cpp_before_shown"] = "llama_cpp" in sys.modules

        class FirstPaint(QObject):
            def eventFilter(self, obj: QObject, event: QEvent) -> bool:
                if (
                    not state["painted"]
                    and event.type() == QEvent.Type.Paint
                    and isinstance(obj, QWidget)
                    and obj.window() is window
                ):
                    state["painted"] = True
                    QTimer.singleShot(0, painted)  # runs once this paint (the whole frame) is done
                    QApplication.instance().removeEventFilter(self)  # type: ignore[union-attr]
                return False

        def loaded(*_: object) -> None:
            marks["loaded"] = time.time() - launch
            marks["loaded_ok"] = window.loaded is not None
            marks["load_s_reported"] = window.loaded.load_s if window.loaded is not None else None
            QTimer.singleShot(0, finish)

        def progress(_request_id: int, fraction: float) -> None:
            # The worker reports 0.0 before it imports llama_cpp; llama.cpp's own reports follow.
            key = "load_requested" if fraction == 0.0 else "llama_progress"
            marks.setdefault(key, time.time() - launch)

        def load_failed(_request_id: int, message: str) -> None:
            marks["load_error"] = message
            QTimer.singleShot(0, finish)

        app = QApplication.instance()
        assert app is not None
        state["filter"] = FirstPaint(app)
        app.installEventFilter(state["filter"])
        # Connected after the window's own slots: `window.loaded` is set when `loaded` runs.
        self.bridge.loaded.connect(loaded)
        self.bridge.loadProgress.connect(progress)
        self.bridge.loadFailed.connect(load_failed)
        QTimer.singleShot(int(timeout_s * 1000), finish)
        original_show(self)
        marks["show_returned"] = time.time() - launch

    MainWindow.show = show  # type: ignore[method-assign]
    sys.argv = ["app", "--data-dir", data_dir]
    try:
        runpy.run_module("app", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        marks["exit_code"] = exc.code
    if not state.get("printed"):
        print(MARKER + json.dumps(marks), flush=True)
    return 0


# ----- parent: launches and reports --------------------------------------------------------------


def launch_once(data_dir: Path, timeout_s: float) -> dict[str, Any]:
    """Start one `python -m app --data-dir DATA_DIR` (through the child wrapper); its marks."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.pop("FIRESIDE_DATA_DIR", None)  # --data-dir decides
    script = str(Path(__file__).resolve())
    launch = time.time()  # the launch stamp the child measures from
    command = [sys.executable, script, "--child", repr(launch), str(data_dir)]
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s + 30, check=False
    )
    ended = time.time() - launch
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise SystemExit(
            f"child printed no result (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    marks: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    marks["process_exit"] = ended
    marks["returncode"] = proc.returncode
    marks["stderr"] = proc.stderr.strip()
    return marks


COLUMNS = [
    ("interpreter", "interpreter"),
    ("imports", "imports"),
    ("show()", "show_called"),
    ("SHOWN", "shown"),
    ("load req.", "load_requested"),
    ("llama prog.", "llama_progress"),
    ("LOADED", "loaded"),
    ("exited", "process_exit"),
]
WIDTH = 12


def print_run(index: int, marks: dict[str, Any]) -> None:
    """One row of the table."""
    llama = marks.get("llama_cpp_before_shown")
    print(
        f"{index + 1:<8}"
        + "".join(f"{fmt(marks.get(key)):>{WIDTH}}" for _, key in COLUMNS)
        + f"{'?' if llama is None else ('YES' if llama else 'no'):>17}",
        flush=True,
    )
    if marks.get("load_error"):
        print(f"        load failed: {marks['load_error']}")


def fmt(value: Any) -> str:
    """Seconds with 3 decimals, or a dash."""
    return f"{value:.3f}" if isinstance(value, int | float) else "–"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5, help="launches (default 5)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per launch to load")
    parser.add_argument(
        "--reuse-data-dir",
        action="store_true",
        help="launch every time on one data folder, after one unmeasured launch that fills it "
        "(a returning user); default: a new, empty data folder per launch (a first launch)",
    )
    parser.add_argument("--child", nargs=2, metavar=("LAUNCH", "DATA_DIR"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Launch the app `--repeats` times and print a table of medians; exit 1 if a target was missed."""
    args = parse_args(argv)
    if args.child:
        return child(float(args.child[0]), args.child[1], args.timeout)

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}, "
        f"QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM', 'offscreen')}",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    header = f"{'run':<8}" + "".join(f"{title:>{WIDTH}}" for title, _ in COLUMNS) + f"{'llama_cpp@SHOWN':>17}"
    mode = "one reused data folder (returning user)" if args.reuse_data_dir else "a new data folder each"
    print(f"{args.repeats} launches of `python -m app --data-dir DIR`, {mode}; seconds since launch")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="fireside-startup-") as tmp:
        shared = Path(tmp) / "data"
        if args.reuse_data_dir:
            launch_once(shared, args.timeout)  # fills settings, the models folder and the scan cache
        for i in range(args.repeats):
            data_dir = shared if args.reuse_data_dir else Path(tmp) / f"data{i}"
            runs.append(launch_once(data_dir, args.timeout))
            print_run(i, runs[-1])
    medians = {
        key: statistics.median(values)
        for _, key in COLUMNS
        if (values := [r[key] for r in runs if isinstance(r.get(key), int | float)])
    }
    print("-" * len(header))
    print(f"{'median':<8}" + "".join(f"{fmt(medians.get(key)):>{WIDTH}}" for _, key in COLUMNS))
    print(
        "interpreter: first line of Python; imports: app UI modules imported; show(): MainWindow.show() "
        "called;\nSHOWN: first paint done [target <= 1.5 s]; load req.: inference thread starts the load "
        "(models folder\nscanned); llama prog.: llama.cpp's first progress (llama_cpp imported); LOADED: "
        "window.loaded set;\nexited: the process ended after quitting."
    )
    print()
    last = runs[-1]
    print(f"modules imported when show() was called: {', '.join(last.get('at_show_called', [])) or 'none'}")
    print(f"modules imported when the window was shown: {', '.join(last.get('at_shown', [])) or 'none'}")
    if last.get("load_s_reported") is not None:
        print(f"model load time reported by the app (last run): {last['load_s_reported']:.3f} s")
    noisy = sorted({line for r in runs for line in r["stderr"].splitlines() if line.strip()})
    if noisy:
        print("child stderr (unique lines):")
        for line in noisy[:20]:
            print(f"  {line}")

    missed = []
    shown = medians.get("shown")
    if shown is None:
        missed.append("the window was never shown")
    elif shown > TARGET_SHOWN_S:
        missed.append(f"median time to shown {shown:.3f} s > {TARGET_SHOWN_S:g} s")
    if any(r.get("llama_cpp_before_shown") for r in runs):
        missed.append("llama_cpp was imported before the window was shown")
    if any(not r.get("loaded_ok") for r in runs):
        missed.append("the model did not load in every run")
    print()
    print("targets: all met" if not missed else "targets MISSED:\n  " + "\n  ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
