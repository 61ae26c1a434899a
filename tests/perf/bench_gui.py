"""GUI-thread smoothness while a reply streams into the real main window.

What it measures
    The real `MainWindow` (shown offscreen at 1100x720) with the real starter model streams a
    `--max-tokens` reply (temperature 0, a prompt that asks for a long text) into

    * an empty conversation, and
    * a conversation with `--history` earlier messages (alternating user/assistant, realistic
      length, with Markdown: paragraphs, lists, emphasis, inline code, a fenced code block every
      few replies, an occasional table), added straight to `window.messages` before sending.

    For each reply it records

    * GUI-thread responsiveness: a 5 ms precise QTimer on the GUI thread stamps every tick; the
      gaps between ticks from the first chunk until just after the reply is finished (so the final
      full Markdown render is included) give the largest gap and the 99th percentile
      (targets: max < 50 ms, p99 < 16 ms);
    * per-chunk GUI cost: wall time inside `ChatController.handle` for a `Chunk` (the slot connected
      to the bridge's events: the session's transcript append, the model's relay and the view's
      `_on_text_appended`, whose own time the view keeps in `last_append_s`, and the session's
      once-a-second save), mean and p95; the throttled Markdown re-render ticks
      (`MessageView._render_streaming`, only ticks that rendered), the view's paint events and the
      handling of `ReplyDone` are timed separately;
    * completion tokens (from the reply's stats), stop reason, time to first token, tokens/s and
      the number of chunks; the QTextDocuments the view owns and the process RSS after the reply;
      the 1-min load average (other work on the machine makes every number here worse).

    Each case runs `--repeats` times (cases interleaved); the table shows the median of each
    metric over the repeats, and the ratio history/empty of the per-chunk cost (target <= 1.2x).

How it measures
    The methods above are wrapped with timers at class level, in this process only, before the
    window is built (the app's code is not changed). The Qt event loop runs normally
    (`QEventLoop.exec()`, quit on `replyDone`); nothing busy-loops `processEvents()`, which would
    starve the inference thread of the GIL.

    The model is asked only the benchmark prompt in both cases: the session's
    `transcript.prompt_messages` is replaced, on this window only, by one that returns just the last
    user message. The earlier
    messages are shown and laid out by the view exactly as usual, but they are not sent to the
    model (500 realistic messages are far more than the 4096-token context holds, and the app
    refuses such a prompt), so the model does the same work in both cases and only the GUI differs.

    With --api-clients N, the window's reply streams while N API clients stream too: a local API
    server on the window's inference thread, and another process holding N `openai` clients, each
    streaming --max-tokens replies one after another for as long as the benchmark runs (the window
    loads the model with N + 1 parallel replies, so its own never waits). Measurement starts once
    all N are generating.

Run
    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/perf/bench_gui.py
    .venv/bin/python tests/perf/bench_gui.py --api-clients 4 --history 0   # with 4 API streams
    .venv/bin/python tests/perf/bench_gui.py --repeats 1 --max-tokens 48   # quick look
    .venv/bin/python tests/perf/bench_gui.py --llama-threads 1             # leave a core to the GUI

The exit status is 1 when a target is missed. PySide6 must be < 6.12 (6.12.0 aborts the process
after a few thousand QEventLoop.exec()/processEvents() calls under Python 3.11).

It needs the starter model in the cache (`python -m app.core.models.starter` fetches it).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FIRESIDE_THEME", "light")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import PySide6  # noqa: E402
from PySide6.QtCore import QEventLoop, Qt, QTimer, qVersion  # noqa: E402
from PySide6.QtGui import QPaintEvent, QTextDocument  # noqa: E402

from app.core.chat.messages import Role  # noqa: E402
from app.core.inference import engine  # noqa: E402
from app.core.inference.events import Chunk, Event, ReplyDone  # noqa: E402
from app.core.models import starter  # noqa: E402
from app.core.platform import paths  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.core.values.replies import ReplyStats  # noqa: E402
from app.ui.chat.controller import ChatController  # noqa: E402
from app.ui.chat.message_view import MessageView  # noqa: E402
from app.ui.shell.application import create_app  # noqa: E402
from app.ui.shell.main_window import MainWindow  # noqa: E402

PROMPT = (
    "Write a long, detailed essay about the history of the printing press, "
    "with an introduction, several sections and a conclusion."
)
TICK_MS = 5
#: How long the tick timer keeps running after replyDone (covers the final Markdown render/paint).
TAIL_MS = 150
TARGET_MAX_GAP_MS = 50.0
TARGET_P99_GAP_MS = 16.0
TARGET_RATIO = 1.2


#: Run in another process: N threads, each streaming replies from the API server until killed.
CLIENTS = """
import sys, threading, openai
from tests.unit.api.served import MODEL
address, count, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def stream(n):
    client = openai.OpenAI(base_url=address, api_key="none", max_retries=0)
    while True:
        for _ in client.chat.completions.create(
            model=MODEL, stream=True, max_tokens=tokens, temperature=0.7, seed=n,
            messages=[{"role": "user", "content": f"Tell story number {n} about a lighthouse."}],
        ):
            pass
threads = [threading.Thread(target=stream, args=(n,), daemon=True) for n in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def start_api_clients(window: MainWindow, count: int, tokens: int) -> tuple[Any, subprocess.Popen[bytes]]:
    """A local API server on the window's inference thread and `count` streaming clients in another
    process; returns once every client is generating."""
    from app.core.api.config import ServerConfig
    from app.core.api.server import LocalServer

    server = LocalServer(window.bridge.worker, ServerConfig(port=0))
    server.start()
    clients = subprocess.Popen([sys.executable, "-c", CLIENTS, server.address, str(count), str(tokens)])
    deadline = time.monotonic() + 60
    while window.bridge.worker.replies_running() < count:
        if time.monotonic() > deadline or clients.poll() is not None:
            raise SystemExit(f"the {count} API clients did not all start streaming")
        spin(20)
    return server, clients


# ----- instrumentation ---------------------------------------------------------------------------


@dataclass
class Probe:
    """Timings collected by the wrapped methods while `active`."""

    active: bool = False
    chunk_at: list[float] = field(default_factory=list)
    chunk_s: list[float] = field(default_factory=list)
    append_s: list[float] = field(default_factory=list)
    render_s: list[float] = field(default_factory=list)
    paint_s: list[float] = field(default_factory=list)
    done_s: list[float] = field(default_factory=list)

    def reset(self) -> None:
        """Forget everything recorded so far."""
        for name in ("chunk_at", "chunk_s", "append_s", "render_s", "paint_s", "done_s"):
            getattr(self, name).clear()


PROBE = Probe()


def instrument() -> None:
    """Wrap the GUI-thread handlers of a streaming reply with timers (class level, this process only)."""
    handle = ChatController.handle
    render = MessageView._render_streaming
    paint = MessageView.paintEvent

    @functools.wraps(handle)
    def timed_handle(self: ChatController, event: Event) -> None:
        started = time.perf_counter()
        handle(self, event)
        if not PROBE.active:
            return
        if isinstance(event, Chunk):
            PROBE.chunk_at.append(started)
            PROBE.chunk_s.append(time.perf_counter() - started)
            PROBE.append_s.append(self.view.last_append_s)
        elif isinstance(event, ReplyDone):
            PROBE.done_s.append(time.perf_counter() - started)

    @functools.wraps(render)
    def timed_render(self: MessageView) -> None:
        rendering = bool(self._pending_render)
        started = time.perf_counter()
        render(self)
        if PROBE.active and rendering:
            PROBE.render_s.append(time.perf_counter() - started)

    @functools.wraps(paint)
    def timed_paint(self: MessageView, event: QPaintEvent) -> None:
        started = time.perf_counter()
        paint(self, event)
        if PROBE.active:
            PROBE.paint_s.append(time.perf_counter() - started)

    ChatController.handle = timed_handle  # type: ignore[method-assign]
    MessageView._render_streaming = timed_render  # type: ignore[method-assign]
    MessageView.paintEvent = timed_paint  # type: ignore[method-assign]


# ----- conversation content ----------------------------------------------------------------------

_VOCABULARY = (
    "the model context token reply window thread layout render paragraph question answer python "
    "function value list memory cache latency file system network server client request response "
    "example detail reason result simple careful quick because however therefore usually often "
    "data user screen chat message history setting option sample number text format line change"
)
_WORDS = _VOCABULARY.split()

_CODE = (
    "```python\n"
    "def fibonacci(n: int) -> list[int]:\n"
    '    """The first n Fibonacci numbers."""\n'
    "    values = [0, 1]\n"
    "    while len(values) < n:\n"
    "        values.append(values[-1] + values[-2])\n"
    "    return values[:n]\n"
    "\n"
    "for i, value in enumerate(fibonacci({n})):\n"
    "    print(f'{{i:>3}}: {{value}}')\n"
    "```"
)


def _sentence(rng: random.Random, lo: int = 6, hi: int = 18) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(lo, hi))]
    if rng.random() < 0.3:
        i = rng.randrange(len(words))
        words[i] = f"**{words[i]}**"
    if rng.random() < 0.2:
        i = rng.randrange(len(words))
        words[i] = f"`{words[i]}()`"
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))


def user_text(rng: random.Random) -> str:
    """A user turn: one to three sentences, now and then two short paragraphs."""
    text = " ".join(_sentence(rng, 5, 14) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.15:
        text += "\n\n" + _sentence(rng)
    return text.rstrip(".") + "?"


def assistant_text(rng: random.Random, index: int) -> str:
    """An assistant turn of 80-300 words: paragraphs, a list, sometimes a code block or a table."""
    parts = [_paragraph(rng)]
    if rng.random() < 0.6:
        marker = "1." if rng.random() < 0.4 else "-"
        parts.append("\n".join(f"{marker} {_sentence(rng, 4, 12)}" for _ in range(rng.randint(3, 6))))
    if index % 5 == 0:
        parts.append(_CODE.format(n=index % 20 + 5))
    if index % 17 == 0:
        rows = "\n".join(
            f"| {rng.choice(_WORDS)} | {rng.randint(1, 999)} | {_sentence(rng, 3, 6)} |" for _ in range(4)
        )
        parts.append("| name | value | note |\n| --- | ---: | --- |\n" + rows)
    if rng.random() < 0.3:
        parts.append("### " + _sentence(rng, 2, 5).rstrip("."))
    parts.append(_paragraph(rng))
    return "\n\n".join(parts)


def populate(window: MainWindow, count: int, seed: int = 1) -> None:
    """Add `count` alternating user/assistant messages straight to the window's model."""
    rng = random.Random(seed)
    for i in range(count):
        if i % 2 == 0:
            window.session.transcript.add(Role.USER, user_text(rng))
        else:
            window.session.transcript.add(Role.ASSISTANT, assistant_text(rng, i // 2))


# ----- event loop helpers ------------------------------------------------------------------------


def spin(ms: int) -> None:
    """Run the Qt event loop for `ms` milliseconds (lets layout, paint and queued calls settle)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_loaded(window: MainWindow, timeout_s: float) -> None:
    """Run the event loop until the window's model is loaded (or loading failed / timed out)."""
    loop = QEventLoop()
    failed: list[str] = []

    def on_failed(_request_id: int, message: str) -> None:
        failed.append(message)
        loop.quit()

    # Connected after the window's own slots, so `window.loaded` is already set when these run.
    window.bridge.loaded.connect(loop.quit)
    window.bridge.loadFailed.connect(on_failed)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    if window.loaded is None:
        loop.exec()
    window.bridge.loaded.disconnect(loop.quit)
    window.bridge.loadFailed.disconnect(on_failed)
    if window.loaded is None:
        raise SystemExit(f"model did not load: {failed[0] if failed else f'timed out after {timeout_s:g} s'}")


# ----- one measured reply ------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Result:
    """Metrics of one streamed reply (times in ms)."""

    history: int
    tokens: int
    stop: str
    ttft_s: float
    tokens_per_s: float
    chunks: int
    stream_s: float
    gap_max: float
    gap_p99: float
    gap_p50: float
    gaps_over_16: int
    ticks: int
    chunk_mean: float
    chunk_p95: float
    append_mean: float
    render_n: int
    render_mean: float
    render_max: float
    paint_n: int
    paint_mean: float
    paint_p95: float
    done_ms: float
    total_per_chunk: float
    docs: int
    rss_mb: float
    load_avg: float


def stream_once(window: MainWindow, history: int, timeout_s: float) -> Result:
    """Clear the chat, add `history` messages, send the prompt and measure the streamed reply."""
    window.session.transcript.clear()
    if history:
        started = time.perf_counter()
        populate(window, history)
        print(f"  added {history} messages in {time.perf_counter() - started:.2f} s", flush=True)
    spin(300)

    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    loop = QEventLoop()
    finished: list[tuple[float, ReplyStats | None, str]] = []

    def on_done(_request_id: int, _text: str, stats: ReplyStats) -> None:
        finished.append((time.perf_counter(), stats, ""))
        QTimer.singleShot(TAIL_MS, loop.quit)

    def on_failed(_request_id: int, _text: str, message: str, _code: str) -> None:
        finished.append((time.perf_counter(), None, message))
        QTimer.singleShot(TAIL_MS, loop.quit)

    window.bridge.replyDone.connect(on_done)
    window.bridge.replyFailed.connect(on_failed)
    PROBE.reset()
    PROBE.active = True
    timer.start()
    window.composer.setPlainText(PROMPT)
    window.chat.send()
    if not window.is_generating:
        raise SystemExit(f"the reply did not start: {window.banner.label.text()!r}")
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(loop.quit)
    guard.start(int(timeout_s * 1000))
    loop.exec()
    guard.stop()
    timer.stop()
    PROBE.active = False
    window.bridge.replyDone.disconnect(on_done)
    window.bridge.replyFailed.disconnect(on_failed)
    if not finished:
        raise SystemExit(f"the reply did not finish within {timeout_s:g} s")
    _, stats, error = finished[0]
    if stats is None:
        raise SystemExit(f"the reply failed: {error}")

    first_chunk = PROBE.chunk_at[0] if PROBE.chunk_at else finished[0][0]
    streaming = [t for t in ticks if t >= first_chunk]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(streaming)]
    ms = [s * 1000 for s in PROBE.chunk_s]
    render = [s * 1000 for s in PROBE.render_s]
    paint = [s * 1000 for s in PROBE.paint_s]
    return Result(
        history=history,
        tokens=stats.completion_tokens,
        stop=stats.stop_reason.value,
        ttft_s=stats.ttft_s,
        tokens_per_s=stats.tokens_per_s,
        chunks=len(PROBE.chunk_s),
        stream_s=finished[0][0] - first_chunk,
        gap_max=max(gaps, default=0.0),
        gap_p99=percentile(gaps, 99),
        gap_p50=percentile(gaps, 50),
        gaps_over_16=sum(g > TARGET_P99_GAP_MS for g in gaps),
        ticks=len(streaming),
        chunk_mean=statistics.fmean(ms) if ms else 0.0,
        chunk_p95=percentile(ms, 95),
        append_mean=statistics.fmean(PROBE.append_s) * 1000 if PROBE.append_s else 0.0,
        render_n=len(render),
        render_mean=statistics.fmean(render) if render else 0.0,
        render_max=max(render, default=0.0),
        paint_n=len(paint),
        paint_mean=statistics.fmean(paint) if paint else 0.0,
        paint_p95=percentile(paint, 95),
        done_ms=PROBE.done_s[0] * 1000 if PROBE.done_s else 0.0,
        total_per_chunk=(sum(ms) + sum(render) + sum(paint)) / len(ms) if ms else 0.0,
        docs=len(window.view.findChildren(QTextDocument)),
        rss_mb=rss_mb(),
        load_avg=os.getloadavg()[0],
    )


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux), else 0."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def only_last_user_message(window: MainWindow) -> Callable[..., list[dict[str, str]]]:
    """A `prompt_messages` for this window's model that sends only the newest user message."""

    def prompt_messages(_expand: object = None) -> list[dict[str, str]]:

        for row in range(window.messages.rowCount() - 1, -1, -1):
            message = window.messages.message(row)
            if message.role is Role.USER:
                return [message.as_chat()]
        return []

    return prompt_messages


# ----- report ------------------------------------------------------------------------------------

ROWS: list[tuple[str, str, str]] = [
    # (label, Result attribute, format)
    ("completion tokens", "tokens", "{:.0f}"),
    ("stop reason", "stop", "{}"),
    ("time to first token (s)", "ttft_s", "{:.2f}"),
    ("generation speed (tok/s)", "tokens_per_s", "{:.1f}"),
    ("chunks", "chunks", "{:.0f}"),
    ("streaming time (s)", "stream_s", "{:.1f}"),
    ("timer ticks while streaming", "ticks", "{:.0f}"),
    ("tick gap max (ms) [< 50]", "gap_max", "{:.1f}"),
    ("tick gap p99 (ms) [< 16]", "gap_p99", "{:.1f}"),
    ("tick gap median (ms)", "gap_p50", "{:.1f}"),
    ("tick gaps > 16 ms", "gaps_over_16", "{:.0f}"),
    ("chunk slot mean (ms)", "chunk_mean", "{:.3f}"),
    ("chunk slot p95 (ms)", "chunk_p95", "{:.3f}"),
    ("  of which view append mean (ms)", "append_mean", "{:.3f}"),
    ("Markdown render ticks", "render_n", "{:.0f}"),
    ("render tick mean (ms)", "render_mean", "{:.2f}"),
    ("render tick max (ms)", "render_max", "{:.2f}"),
    ("paint events", "paint_n", "{:.0f}"),
    ("paint mean (ms)", "paint_mean", "{:.2f}"),
    ("paint p95 (ms)", "paint_p95", "{:.2f}"),
    ("ReplyDone handling (ms)", "done_ms", "{:.2f}"),
    ("slot+render+paint per chunk (ms)", "total_per_chunk", "{:.3f}"),
    ("QTextDocuments owned by view", "docs", "{:.0f}"),
    ("process RSS after reply (MB)", "rss_mb", "{:.0f}"),
    ("1-min load average", "load_avg", "{:.2f}"),
]
RATIO_ROWS = {
    "chunk_mean",
    "chunk_p95",
    "append_mean",
    "render_mean",
    "paint_mean",
    "done_ms",
    "total_per_chunk",
}


def median_of(results: list[Result], name: str) -> Any:
    """Median over repeats (the first value for text)."""
    values = [getattr(r, name) for r in results]
    return values[0] if isinstance(values[0], str) else statistics.median(values)


def report(cases: dict[int, list[Result]]) -> list[str]:
    """Print the table; returns the targets that were missed."""
    keys = list(cases)
    titles = ["empty" if h == 0 else f"{h} msgs" for h in keys]
    ratio = len(keys) == 2
    header = f"{'metric (median of ' + str(len(cases[keys[0]])) + ')':<34}" + "".join(
        f"{t:>12}" for t in titles
    )
    if ratio:
        header += f"{'ratio':>9}"
    print(header)
    print("-" * len(header))
    for label, name, fmt in ROWS:
        values = [median_of(cases[k], name) for k in keys]
        line = f"{label:<34}" + "".join(f"{fmt.format(v):>12}" for v in values)
        if ratio and name in RATIO_ROWS and values[0]:
            line += f"{values[1] / values[0]:>8.2f}x"
        print(line)
    missed = []
    for key, title in zip(keys, titles, strict=True):
        gap_max = median_of(cases[key], "gap_max")
        gap_p99 = median_of(cases[key], "gap_p99")
        if gap_max >= TARGET_MAX_GAP_MS:
            missed.append(f"{title}: max tick gap {gap_max:.1f} ms >= {TARGET_MAX_GAP_MS:g} ms")
        if gap_p99 >= TARGET_P99_GAP_MS:
            missed.append(f"{title}: p99 tick gap {gap_p99:.1f} ms >= {TARGET_P99_GAP_MS:g} ms")
    if ratio:
        base, other = (median_of(cases[k], "chunk_mean") for k in keys)
        if base and other / base > TARGET_RATIO:
            missed.append(f"per-chunk cost ratio {other / base:.2f}x > {TARGET_RATIO:g}x")
    return missed


# ----- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3, help="replies per case (default 3)")
    parser.add_argument("--max-tokens", type=int, default=256, help="reply length in tokens (default 256)")
    parser.add_argument("--history", type=int, default=500, help="earlier messages in the second case (500)")
    parser.add_argument("--size", default="1100x720", help="window size WxH (default 1100x720)")
    parser.add_argument(
        "--llama-threads",
        type=int,
        default=0,
        help="threads llama.cpp uses (default 0: the app's own choice); to see CPU contention's share",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per reply")
    parser.add_argument(
        "--api-clients", type=int, default=0, help="API clients streaming meanwhile (default 0)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; exit status 1 if a target was missed."""
    args = parse_args(argv)
    if tuple(int(p) for p in PySide6.__version__.split(".")[:2]) >= (6, 12):
        print(f"PySide6 {PySide6.__version__} is not supported here (needs < 6.12)", file=sys.stderr)
        return 2
    width, height = (int(v) for v in args.size.lower().split("x"))
    if not starter.is_verified(starter.cached_path()):
        print(f"starter model missing from {starter.cached_path()}", file=sys.stderr)
        return 2
    if args.llama_threads > 0:
        threads = args.llama_threads
        engine.default_threads = lambda: threads  # read when the context is created
    instrument()
    with tempfile.TemporaryDirectory(prefix="fireside-bench-") as tmp:
        paths.set_data_dir(Path(tmp) / "data")
        create_app()
        # The window's reply needs a sequence of its own beside the API clients'.
        window = MainWindow(settings=Settings(parallel=args.api_clients + 1 if args.api_clients else 0))
        window.resize(width, height)
        window.show()
        window.start()
        wait_loaded(window, 120)
        assert window.loaded is not None
        window.sampling.input("max_tokens").setValue(args.max_tokens)
        window.sampling.input("temperature").setValue(0.0)
        window.sampling.input("seed").setValue(42)
        window.session.transcript.prompt_messages = only_last_user_message(window)  # type: ignore[method-assign]
        spin(200)
        api = start_api_clients(window, args.api_clients, args.max_tokens) if args.api_clients else None
        print(
            f"PySide6 {PySide6.__version__} (Qt {qVersion()}), "
            f"model {window.loaded.info.path.name}, {window.loaded.n_threads} llama.cpp threads, "
            f"{os.cpu_count()} CPUs, window {window.width()}x{window.height()}, "
            f"tick timer {TICK_MS} ms, max_tokens {args.max_tokens}, "
            f"{args.api_clients} API clients streaming meanwhile ({window.loaded.n_parallel} sequences)",
            flush=True,
        )
        cases: dict[int, list[Result]] = {0: [], args.history: []} if args.history else {0: []}
        for rep in range(args.repeats):
            for history in cases:
                result = stream_once(window, history, args.timeout)
                cases[history].append(result)
                print(
                    f"  run {rep + 1}/{args.repeats} history={history}: {result.tokens} tokens, "
                    f"{result.chunks} chunks, gap max {result.gap_max:.1f} ms p99 {result.gap_p99:.1f} ms, "
                    f"chunk {result.chunk_mean:.3f} ms, {result.tokens_per_s:.1f} tok/s, "
                    f"load {result.load_avg:.2f}",
                    flush=True,
                )
        if api is not None:
            api[1].kill()
            api[1].wait()
            api[0].stop()
        window.close()
        spin(50)
        paths.set_data_dir(None)
    print()
    missed = report(cases)
    print()
    print("targets: all met" if not missed else "targets MISSED:\n  " + "\n  ".join(missed))
    busiest = max(r.load_avg for results in cases.values() for r in results)
    if busiest > (os.cpu_count() or 1):
        print(
            f"note: the 1-min load average reached {busiest:.2f} on {os.cpu_count()} CPUs: other work "
            "competed for the CPUs, so gaps and speeds are pessimistic"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
