"""Remote chat overhead: tokens/s shown in the real window for a remote reply vs a bare `openai` client.

What it measures
    One `llama_cpp.server` (llama-cpp-python's OpenAI-compatible server, the stand-in for vLLM or a
    llama.cpp server) serves the starter model on 127.0.0.1. Two clients ask it the same thing in
    turn, greedy (temperature 0, fixed seed), `--max-tokens` tokens:

    * window: the real `MainWindow` (offscreen), its remote engine pointing at the server and its
      remote model chosen; each round is a new conversation, the prompt typed into the composer and
      sent, the Qt event loop running normally while the reply streams into the view (quit on
      `replyDone`). Its figure is the tokens/s the window shows under the reply, the reply's
      ReplyStats (measured on the inference thread as the pieces arrive, before coalescing);
    * bare: the official `openai` client, `chat.completions.create(stream=True)` with the same
      messages and the same sampling fields (Fireside also sends llama.cpp's top_k, min_p and
      repeat_penalty; the bare client sends them in `extra_body`), reading the stream in a loop.

How it measures
    Both compute tokens/s as ReplyStats does: (pieces of text - 1) / (time of the last piece -
    time of the first), each piece being one streamed chunk with content (llama_cpp.server sends
    one per token and no usage counts, so both count the same pieces). Time to first token: from
    the request to the first piece. The pairs run interleaved with the order alternating
    (window-bare, bare-window, ...) after one unrecorded warm-up each; the table gives median, min
    and max; the target is window / bare >= 0.98 on the medians. Both get the same text (checked).

    The window also loads the starter model locally, as any launch does (it stays loaded, idle,
    while chat goes to the remote model); the server is a separate process.

Run
    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/perf/bench_remote.py              # 7 pairs, 200 tokens
    .venv/bin/python tests/perf/bench_remote.py --pairs 3 --max-tokens 64              # quick look

The exit status is 1 when the target is missed. It needs the starter model in the cache
(`python -m app.core.models.starter` fetches it) and llama-cpp-python's [server] extra and `openai` (the
test extra).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FIRESIDE_THEME", "light")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402

from app.core.models import starter  # noqa: E402
from app.core.platform import paths  # noqa: E402
from app.core.remote.endpoints import model_key  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.core.values.replies import ReplyStats  # noqa: E402
from app.ui.shell.application import create_app  # noqa: E402
from app.ui.shell.main_window import MainWindow  # noqa: E402
from tests.llama_server import MODEL_ID, LlamaServer  # noqa: E402

PROMPT = (
    "Write a long, detailed essay about the history of the city of Rome, from its founding to the "
    "present day. Cover every century."
)
SEED = 42
TARGET = 0.98


@dataclass(frozen=True, slots=True)
class Run:
    """One measured reply."""

    tokens: int
    tok_s: float
    ttft_s: float
    text: str


def gen_rate(tokens: int, first: float, last: float) -> float:
    """Tokens/s as ReplyStats computes it: tokens after the first one, over first-to-last time."""
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


class WindowRunner:
    """The real window chatting with the server's model."""

    def __init__(self, url: str, max_tokens: int) -> None:
        create_app()
        settings = Settings(
            remote_endpoints=[{"name": "llama_cpp.server", "base_url": url}],
            last_remote_model=model_key(url, MODEL_ID),
            welcomed=True,
        )
        self.window = MainWindow(settings=settings)
        self.window.resize(1100, 720)
        self.window.show()
        self.window.start()
        self._spin_until(lambda: self.window.remote.target() is not None, 30)
        if self.window.remote.choice is None:
            raise RuntimeError("the window did not choose the server's model")
        params = self.window.sampling.params().with_changes(temperature=0.0, seed=SEED, max_tokens=max_tokens)
        self.window.sampling.set_params(params)

    def _spin_until(self, done: object, timeout_s: float) -> None:
        loop = QEventLoop()
        timer = QTimer()
        timer.timeout.connect(lambda: loop.quit() if done() else None)  # type: ignore[operator]
        timer.start(20)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
        timer.stop()

    def run(self) -> Run:
        window = self.window
        window.conversations.new_conversation()  # the same one-message prompt every time
        loop = QEventLoop()
        finished: list[tuple[str, ReplyStats | None, str]] = []

        def done_slot(_rid: int, text: str, stats: ReplyStats) -> None:
            finished.append((text, stats, ""))
            loop.quit()

        def fail_slot(_rid: int, text: str, message: str, _code: str) -> None:
            finished.append((text, None, message))
            loop.quit()

        window.bridge.replyDone.connect(done_slot)
        window.bridge.replyFailed.connect(fail_slot)
        window.composer.setPlainText(PROMPT)
        window.chat.send()
        if not window.is_generating:
            raise RuntimeError(f"the reply did not start: {window.banner.label.text()!r}")
        QTimer.singleShot(300_000, loop.quit)
        loop.exec()
        window.bridge.replyDone.disconnect(done_slot)
        window.bridge.replyFailed.disconnect(fail_slot)
        if not finished or finished[0][1] is None:
            raise RuntimeError(f"the window's reply failed: {finished[0][2] if finished else 'timeout'}")
        text, stats, _ = finished[0]
        assert stats is not None
        shown = window.messages.message(1).stats  # what the line under the reply shows
        assert shown is stats
        return Run(stats.completion_tokens, stats.tokens_per_s, stats.ttft_s, text)

    def close(self) -> None:
        self.window.close()


class BareRunner:
    """The official openai client, reading the same stream in a loop."""

    def __init__(self, url: str, max_tokens: int) -> None:
        import openai

        self.client = openai.OpenAI(base_url=url, api_key="none", timeout=300)
        self.max_tokens = max_tokens
        defaults = Settings().sampling  # the window's sampling panel starts from these
        self.top_p = defaults.top_p
        self.extra = {
            "top_k": defaults.top_k,
            "min_p": defaults.min_p,
            "repeat_penalty": defaults.repeat_penalty,
        }

    def run(self) -> Run:
        started = time.perf_counter()
        stream = self.client.chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            temperature=0.0,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=SEED,
            stream_options={"include_usage": True},
            extra_body=self.extra,
        )
        first = last = 0.0
        parts: list[str] = []
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    last = time.perf_counter()
                    first = first or last
                    parts.append(choice.delta.content)
        return Run(len(parts), gen_rate(len(parts), first, last), first - started, "".join(parts))

    def close(self) -> None:
        self.client.close()


def summarize(name: str, runs: list[Run]) -> tuple[str, float, float]:
    rates = [r.tok_s for r in runs]
    ttfts = [r.ttft_s * 1000 for r in runs]
    med, ttft = statistics.median(rates), statistics.median(ttfts)
    tokens = "/".join(str(n) for n in sorted({r.tokens for r in runs}))
    row = f"  {name:<22} {med:>9.1f} {min(rates):>9.1f} {max(rates):>9.1f} {ttft:>11.0f} {len(runs):>5}"
    row += f"   {tokens}"
    return row, med, ttft


def main(argv: list[str] | None = None) -> int:
    """Run the pairs and print the table; exit status 1 if the ratio misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=7, help="measured pairs (default 7)")
    parser.add_argument("--max-tokens", type=int, default=200, help="tokens per reply (default 200)")
    parser.add_argument("--n-ctx", type=int, default=2048, help="the server's context (default 2048)")
    args = parser.parse_args(argv)
    model = starter.fetch_to_cache()
    with tempfile.TemporaryDirectory(prefix="fireside-bench-remote-") as tmp:
        paths.set_data_dir(Path(tmp) / "data")
        server = LlamaServer(model, Path(tmp) / "server.log", n_ctx=args.n_ctx).start()
        window = bare = None
        try:
            window = WindowRunner(server.url, args.max_tokens)
            bare = BareRunner(server.url, args.max_tokens)
            # Unrecorded: the server's first prompt is evaluated cold, later ones come from its cache
            # (and a cold evaluation can tip a greedy choice, so only measured runs are compared).
            window.run()
            bare.run()
            results: dict[str, list[Run]] = {"window (ReplyStats)": [], "bare openai client": []}
            contenders = [("window (ReplyStats)", window.run), ("bare openai client", bare.run)]
            for i in range(args.pairs):
                order = contenders if i % 2 == 0 else contenders[::-1]
                for name, run in order:
                    results[name].append(run())
                print(f"  pair {i + 1}/{args.pairs} done", file=sys.stderr, flush=True)
        finally:
            if window is not None:
                window.close()
            if bare is not None:
                bare.close()
            server.kill()
        print(
            f"\nllama_cpp.server, {model.name}, {args.max_tokens} tokens, temperature 0, seed {SEED} | "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} | {args.pairs} pairs, "
            "order alternating"
        )
        print(
            f"  {'contender':<22} {'tok/s med':>9} {'min':>9} {'max':>9} {'TTFT ms med':>11} {'runs':>5}"
            "   tokens"
        )
        medians: dict[str, tuple[float, float]] = {}
        for name, runs in results.items():
            row, med, ttft = summarize(name, runs)
            medians[name] = (med, ttft)
            print(row)
        (w, w_ttft), (b, b_ttft) = medians["window (ReplyStats)"], medians["bare openai client"]
        ratio = w / b if b else 0.0
        print(f"  window / bare, tokens/s      = {ratio:.3f}   (target >= {TARGET})")
        print(f"  window / bare, time to first = {w_ttft / b_ttft:.3f}" if b_ttft else "")
        texts = {name: {r.text for r in runs} for name, runs in results.items()}
        same = len(texts["window (ReplyStats)"] | texts["bare openai client"]) == 1
        print(f"  same text in every measured run: {'yes' if same else 'no'}")
        return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
