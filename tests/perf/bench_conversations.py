"""Conversation benchmarks: opening a 5,000-message conversation, searching 10,000 conversations, and
what saving a streaming reply costs in tokens/s.

What it measures
    * Open: the real window (offscreen, 1100x720) opens a stored conversation of 5,000 messages
      (realistic lengths, some Markdown); time from the click (`open_conversation`) to the message
      view's first paint with the new rows (target <= 200 ms); then the view is scrolled from top to
      bottom in steps every 16 ms while a 5 ms GUI-thread timer stamps; largest gap (target < 50 ms).
    * Search: 10,000 conversations of 20 messages (200,000 messages); `Store.search` for several
      queries (common words, rare words, prefixes, several words), median and worst (target <= 50 ms).
    * Saving while streaming: the window streams `--tokens` tokens (greedy) with the store attached
      and with it detached, interleaved --repeats times; tokens/s medians and the ratio (target >= 0.99).

Run
    .venv/bin/python tests/perf/bench_conversations.py [--repeats 5] [--tokens 192]

The exit status is 1 when a target is missed. It needs the starter model in the cache.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FIRESIDE_THEME", "light")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer  # noqa: E402

from app.core.chat.store import Store  # noqa: E402
from app.core.models import starter  # noqa: E402
from app.core.platform import paths  # noqa: E402
from app.core.settings import Settings  # noqa: E402

_WORD_TEXT = (
    "sea lighthouse keeper storm lamp night ship rock wave light tide boat harbor wind rain fog bell cliff "
    "gull salt rope sail anchor map star compass coast island current drift beacon"
)
WORDS = _WORD_TEXT.split()


def _text(rng: random.Random, words: int) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(words))
    if rng.random() < 0.2:
        body += "\n\n- **one** point\n- `two` points\n"
    return body


def _fill(store: Store, conversations: int, messages: int, rng: random.Random) -> list[int]:
    """Many conversations quickly, in one transaction (the store's API would commit per message)."""
    ids = []
    with store._tx() as db:
        for c in range(conversations):
            cursor = db.execute(
                "INSERT INTO conversations(title, created_at, updated_at) VALUES (?, ?, ?)",
                (f"Chat {c} about {rng.choice(WORDS)}", c, c),
            )
            cid = int(cursor.lastrowid or 0)
            parent = None
            for m in range(messages):
                cursor = db.execute(
                    "INSERT INTO messages(conversation_id, parent_id, role, content, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (cid, parent, "user" if m % 2 == 0 else "assistant", _text(rng, rng.randint(8, 60)), c),
                )
                parent = cursor.lastrowid
            db.execute("UPDATE conversations SET current_leaf = ? WHERE id = ?", (parent, cid))
            ids.append(cid)
    return ids


def _wait(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        _wait(5)


def _window() -> object:
    from app.ui.shell.application import create_app
    from app.ui.shell.main_window import MainWindow

    create_app()
    window = MainWindow(settings=Settings())
    window.resize(1100, 720)
    window.show()
    return window


def bench_open(root: Path) -> tuple[float, float, float]:
    """(ms to first paint, largest scroll gap ms, p99 gap ms) for a 5,000-message conversation."""
    paths.set_data_dir(root / "open")
    store = Store(paths.data_dir() / "conversations.db")
    (cid,) = _fill(store, 1, 5000, random.Random(1))
    store.close()
    starter.install_cached()
    window = _window()
    window.start()  # type: ignore[attr-defined]
    # Launch work (model load, library scan) is over, as when a user clicks a conversation later.
    _until(lambda: window.conversations.store is not None and window.loaded is not None)  # type: ignore[attr-defined]
    _wait(1500)
    painted: list[float] = []

    class PaintWatch(QObject):
        """Stamps the first paint of the message view once it holds the 5,000 rows."""

        def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and not painted and window.messages.rowCount() == 5000:  # type: ignore[attr-defined]
                painted.append(time.perf_counter())
            return False

    watch = PaintWatch()
    window.view.viewport().installEventFilter(watch)  # type: ignore[attr-defined]
    started = time.perf_counter()
    window.conversations.open_conversation(cid)  # type: ignore[attr-defined]
    _until(lambda: bool(painted))
    first_paint_ms = (painted[0] - started) * 1000
    window.view.viewport().removeEventFilter(watch)  # type: ignore[attr-defined]

    bar = window.view.verticalScrollBar()  # type: ignore[attr-defined]
    stamps: list[float] = []
    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.setInterval(5)
    ticker.timeout.connect(lambda: stamps.append(time.perf_counter()))
    step = max(1, bar.maximum() // 300)
    scroller = QTimer()
    scroller.setInterval(16)
    scroller.timeout.connect(lambda: bar.setValue(bar.value() + step))
    bar.setValue(0)
    ticker.start()
    scroller.start()
    _until(lambda: bar.value() >= bar.maximum())
    scroller.stop()
    ticker.stop()
    gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(stamps))
    window.close()  # type: ignore[attr-defined]
    return first_paint_ms, gaps[-1], gaps[int(len(gaps) * 0.99) - 1]


def bench_search(root: Path) -> tuple[float, float, int]:
    """(median ms, worst ms, hits of the first query) over 10,000 conversations of 20 messages."""
    store = Store(root / "search.db")
    _fill(store, 10_000, 20, random.Random(2))
    queries = ["lighthouse", "storm keeper", "salt gull cliff", "anch", "compass beacon drift", "zebra"]
    times = []
    first_hits = 0
    for _ in range(3):
        for query in queries:
            started = time.perf_counter()
            hits = store.search(query)
            times.append((time.perf_counter() - started) * 1000)
            if query == queries[0]:
                first_hits = len(hits)
    store.close()
    return statistics.median(times), max(times), first_hits


def bench_saving(root: Path, repeats: int, tokens: int) -> tuple[float, float]:
    """Median tokens/s streaming into the window with the store attached and detached."""
    paths.set_data_dir(root / "saving")
    starter.install_cached()
    window = _window()
    window.start()  # type: ignore[attr-defined]
    _until(lambda: window.loaded is not None and window.conversations.store is not None)  # type: ignore[attr-defined]
    window.sampling.input("max_tokens").setValue(tokens)  # type: ignore[attr-defined]
    window.sampling.input("temperature").setValue(0.0)  # type: ignore[attr-defined]
    store = window.conversations.store  # type: ignore[attr-defined]
    rates: dict[str, list[float]] = {"saving": [], "not saving": []}
    for i in range(repeats):
        # Alternate which case goes first: the second run of a pair finds a warmer cache.
        for case in list(rates) if i % 2 == 0 else list(rates)[::-1]:
            window.conversations.new_conversation()  # type: ignore[attr-defined]
            window.session.attach_store(store if case == "saving" else None)  # type: ignore[attr-defined]
            window.composer.setPlainText("Write a long story about a lighthouse keeper and the sea.")  # type: ignore[attr-defined]
            window.chat.send()  # type: ignore[attr-defined]
            _until(lambda: not window.is_generating)  # type: ignore[attr-defined]
            stats = window.messages.peek(1).stats  # type: ignore[attr-defined]
            rates[case].append(stats.tokens_per_s)
    window.session.attach_store(store)  # type: ignore[attr-defined]
    window.close()  # type: ignore[attr-defined]
    return statistics.median(rates["saving"]), statistics.median(rates["not saving"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=192)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        first_paint, scroll_max, scroll_p99 = bench_open(root)
        search_median, search_worst, hits = bench_search(root)
        saving, not_saving = bench_saving(root, args.repeats, args.tokens)
    ratio = saving / not_saving
    print()
    print(f"Open a 5,000-message conversation: first paint {first_paint:.0f} ms (target <= 200)")
    print(
        f"Scroll it top to bottom: largest GUI gap {scroll_max:.1f} ms, p99 {scroll_p99:.1f} ms (target < 50)"
    )
    print(
        f"Search 10,000 conversations x 20 messages: median {search_median:.1f} ms, "
        f"worst {search_worst:.1f} ms ({hits} hits for 'lighthouse') (target <= 50)"
    )
    print(
        f"Streaming {args.tokens} tokens: {saving:.1f} tok/s saving, {not_saving:.1f} without; "
        f"ratio {ratio:.3f} (target >= 0.99)"
    )
    ok = first_paint <= 200 and scroll_max < 50 and search_worst <= 50 and ratio >= 0.99
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
