"""Streaming throughput: Fireside's full path vs bare llama-cpp-python vs llama.cpp's own llama-bench.

What it measures
    Text-generation speed (tokens/s, the generation phase only) of the starter model, three ways:

    * fireside: `InferenceThread` (worker thread, queue, events) -> `Engine.stream_chat` (the lean
      token loop) -> coalesced `Chunk` events to a sink that only records them (like the UI's bridge);
    * bare: llama-cpp-python's `Llama(...).create_chat_completion(messages, stream=True)`;
    * llama-bench: llama.cpp's native benchmark, `-p 0 -n N -d DEPTH` (no prompt run, N single-token
      decodes starting after DEPTH cached tokens, DEPTH = the chat prompt's length, so its KV cache is
      as full as the other two's), built from the same llama.cpp that llama-cpp-python vendors.

    All three use the same model, thread count and flash-attention setting. Fireside and bare get the
    same chat messages, greedy sampling (temperature 0, repeat penalty 1) and max_tokens N; the
    prompt asks for long text so the reply runs to N tokens (the table shows the tokens actually made).

How it measures
    Fireside and bare alike: tokens/s = (completion tokens - 1) / (time of the last text delivered -
    time of the first), taken where the text arrives (the sink / the loop over the stream), so prompt
    evaluation and load are left out and both pay for delivering the text. llama-bench: its `avg_ts`
    (N decodes / their time), read from `-o json`. The contenders run round-robin (fireside, bare,
    llama-bench, repeat) after one unrecorded warm-up run each; the table gives median, min and max.

    Fireside and bare each run in their own child process (this file with --child, the model loaded
    once, one run per request over a pipe): driven from two threads of one process, two llama.cpp
    contexts slow each other down (by about 20 % here), because libgomp then manages more threads than
    there are CPUs and stops spin-waiting in the barriers ggml runs between graph nodes.

Run
    .venv/bin/python tests/perf/bench_stream.py                      # 7 rounds, flash attention off and on
    .venv/bin/python tests/perf/bench_stream.py --rounds 5 --flash-attn off --tokens 128
    .venv/bin/python tests/perf/bench_stream.py --build-llama-bench  # build llama-bench first (~5 min)

llama-bench is taken from --llama-bench PATH, else from the cache (see `build_llama_bench`). Without
it the script runs the other two and says so. The machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.inference.events import Chunk, Event, Loaded, LoadFailed, ReplyDone, ReplyFailed  # noqa: E402
from app.core.inference.options import LoadOptions, default_threads  # noqa: E402
from app.core.inference.thread import InferenceThread  # noqa: E402
from app.core.models import starter  # noqa: E402
from app.core.system.binding import import_llama_cpp  # noqa: E402
from app.core.values.sampling import SamplingParams  # noqa: E402
from tests.perf.llama_tools import TOOLS_DIR, build_tool, cached_tool  # noqa: E402

CONTEXT_LENGTH = 4096
MARK = "FIRESIDE_BENCH_STREAM "
MESSAGES = [
    {
        "role": "user",
        "content": "Write a long, detailed essay about the history of the city of Rome, from its founding "
        "to the present day. Cover every century.",
    }
]


@dataclass(frozen=True, slots=True)
class Run:
    """One measured generation."""

    tokens: int
    tok_s: float
    text: str = ""
    prompt_tokens: int = 0
    engine_tok_s: float = 0.0  # Fireside's own ReplyStats.tokens_per_s, for reference


# ----- llama-bench: find or build ---------------------------------------------------------------


def cached_llama_bench(version: str | None = None) -> Path | None:
    """The llama-bench built for this llama-cpp-python (llama_tools.build_tool), if any."""
    return cached_tool("llama-bench", version)


def build_llama_bench(version: str | None = None, jobs: int = 2) -> Path:
    """Build llama-bench from the llama.cpp that llama-cpp-python vendors (llama_tools.build_tool)."""
    return build_tool("llama-bench", version, jobs)


def run_llama_bench(exe: Path, model: Path, threads: int, flash_attn: bool, tokens: int, depth: int) -> Run:
    """One llama-bench text-generation run (its own warm-up, then 1 repetition); its avg_ts."""
    cmd = [
        str(exe), "-m", str(model), "-t", str(threads), "-fa", "on" if flash_attn else "off",
        "-p", "0", "-n", str(tokens), "-d", str(depth), "-r", "1", "-o", "json",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"llama-bench failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    (result,) = json.loads(done.stdout)
    return Run(tokens=int(result["n_gen"]), tok_s=float(result["avg_ts"]))


# ----- Fireside and bare llama-cpp-python, each in a child process -----------------------------


def gen_rate(tokens: int, first: float, last: float) -> float:
    """Tokens/s over the generation phase: tokens after the first one, over first-to-last time."""
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


def read_chat_stream(stream: Iterator[Any]) -> tuple[str, float, float, str | None]:
    """Read a streamed chat reply: (text, time of the first text, of the last, finish reason)."""
    first = last = 0.0
    parts: list[str] = []
    finish = None
    for chunk in stream:
        choice = chunk["choices"][0]
        text = choice["delta"].get("content")
        if text:
            last = time.perf_counter()
            first = first or last
            parts.append(text)
        finish = choice.get("finish_reason") or finish
    return "".join(parts), first, last, finish


class FiresideRunner:
    """Fireside's full path: InferenceThread + Engine + coalesced Chunk events to a recording sink."""

    def __init__(self, model: Path, threads: int, flash_attn: bool) -> None:
        self._done = threading.Event()
        self._arrivals: list[float] = []
        self._final: Event | None = None
        self._thread = InferenceThread(self._sink)
        self._thread.start()
        self._thread.load(model, LoadOptions(CONTEXT_LENGTH, n_threads=threads, flash_attn=flash_attn))
        if not isinstance(self._wait(), Loaded):
            raise RuntimeError(f"Fireside could not load the model: {self._final}")

    def _sink(self, event: Event) -> None:
        if isinstance(event, Chunk):
            self._arrivals.append(time.perf_counter())
        elif isinstance(event, Loaded | LoadFailed | ReplyDone | ReplyFailed):
            self._final = event
            self._done.set()

    def _wait(self) -> Event | None:
        if not self._done.wait(600):
            raise RuntimeError("Fireside did not answer within 10 minutes")
        self._done.clear()
        return self._final

    def run(self, tokens: int) -> Run:
        self._arrivals.clear()
        params = SamplingParams(
            temperature=0.0, repeat_penalty=1.0, max_tokens=tokens, seed=1, context_length=CONTEXT_LENGTH
        )
        self._thread.generate(MESSAGES, params)
        final = self._wait()
        if not isinstance(final, ReplyDone):
            raise RuntimeError(f"Fireside's reply failed: {final}")
        n = final.stats.completion_tokens
        rate = gen_rate(n, self._arrivals[0], self._arrivals[-1])
        return Run(n, rate, final.text, final.stats.prompt_tokens, final.stats.tokens_per_s)

    def close(self) -> None:
        self._thread.shutdown()


class BareRunner:
    """llama-cpp-python's high-level streaming API, as a script using it directly would."""

    def __init__(self, model: Path, threads: int, flash_attn: bool) -> None:
        from llama_cpp import Llama

        self._llm = Llama(
            str(model), n_ctx=CONTEXT_LENGTH, n_batch=512, n_ubatch=512, n_threads=threads,
            n_threads_batch=threads, flash_attn=flash_attn, n_gpu_layers=-1, verbose=False,
        )  # fmt: skip

    def run(self, tokens: int) -> Run:
        stream: Iterator[Any] = self._llm.create_chat_completion(
            MESSAGES, stream=True, max_tokens=tokens, temperature=0.0, repeat_penalty=1.0, seed=1
        )  # type: ignore[assignment]
        text, first, last, finish = read_chat_stream(stream)
        # The stream carries no token count: "length" means exactly max_tokens, else count them.
        n = tokens if finish == "length" else len(self._llm.tokenize(text.encode(), add_bos=False))
        return Run(n, gen_rate(n, first, last), text)

    def close(self) -> None:
        self._llm.close()


def child_main(kind: str, model: Path, threads: int, flash_attn: bool) -> None:
    """The child process: load once, then one run per line read from stdin ("N"), a JSON line back."""
    runner = (FiresideRunner if kind == "fireside" else BareRunner)(model, threads, flash_attn)
    print(MARK, flush=True)
    for line in sys.stdin:
        print(MARK + json.dumps(asdict(runner.run(int(line)))), flush=True)
    runner.close()


class Child:
    """Parent side of a child process running one contender."""

    def __init__(self, kind: str, model: Path, threads: int, flash_attn: bool) -> None:
        cmd = [
            sys.executable, __file__, "--child", kind, "--model", str(model), "--threads", str(threads),
            "--flash-attn", "on" if flash_attn else "off",
        ]  # fmt: skip
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._reply()

    def _reply(self) -> str:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:  # anything else on stdout is llama.cpp's chatter
            if line.startswith(MARK):
                return line[len(MARK) :]
        raise RuntimeError(f"a benchmark child process ended (exit code {self._proc.wait()})")

    def run(self, tokens: int) -> Run:
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{tokens}\n")
        self._proc.stdin.flush()
        return Run(**json.loads(self._reply()))

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(30)


# ----- report -----------------------------------------------------------------------------------


def machine() -> str:
    """CPU model, cores, load, and the llama.cpp build's CPU features."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0))
    llama_cpp = import_llama_cpp()
    features = llama_cpp.llama_print_system_info().decode().strip()
    return (
        f"machine: {cpu}, {os.cpu_count()} logical CPUs ({usable} usable), "
        f"load average {os.getloadavg()[0]:.2f}\n"
        f"llama-cpp-python {llama_cpp.__version__} (Python {sys.version.split()[0]}); llama.cpp: {features}"
    )


def summarize(name: str, runs: list[Run]) -> tuple[str, float]:
    rates = [r.tok_s for r in runs]
    med = statistics.median(rates)
    counts = sorted({r.tokens for r in runs})
    row = (
        f"  {name:<26} {med:>9.1f} {min(rates):>9.1f} {max(rates):>9.1f} {len(runs):>5}   "
        f"{'/'.join(map(str, counts))}"
    )
    return row, med


def bench(args: argparse.Namespace, model: Path, exe: Path | None, flash_attn: bool) -> None:
    fireside = Child("fireside", model, args.threads, flash_attn)
    bare = Child("bare", model, args.threads, flash_attn)
    contenders: list[tuple[str, Callable[[], Run]]] = [
        ("fireside", lambda: fireside.run(args.tokens)),
        ("bare llama-cpp-python", lambda: bare.run(args.tokens)),
    ]
    try:
        warm = [run() for _, run in contenders]  # unrecorded warm-up; also learns the prompt length
        depth = warm[0].prompt_tokens
        if exe is not None:
            contenders.append(
                (f"llama-bench tg{args.tokens} @ d{depth}",
                 lambda: run_llama_bench(exe, model, args.threads, flash_attn, args.tokens, depth))
            )  # fmt: skip
        results: dict[str, list[Run]] = {name: [] for name, _ in contenders}
        for i in range(args.rounds):
            for name, run in contenders:
                results[name].append(run())
            print(f"  round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        fireside.close()
        bare.close()

    print(
        f"\nflash attention {'on' if flash_attn else 'off'} | threads {args.threads} | {args.tokens} tokens "
        f"| prompt {depth} tokens | {args.rounds} rounds | tokens/s"
    )
    print(f"  {'contender':<26} {'median':>9} {'min':>9} {'max':>9} {'runs':>5}   tokens made")
    medians: dict[str, float] = {}
    for name, runs in results.items():
        row, medians[name] = summarize(name, runs)
        print(row)
    engine_med = statistics.median(r.engine_tok_s for r in results["fireside"])
    print(f"  (Fireside's own ReplyStats.tokens_per_s, median: {engine_med:.1f})")
    f, b = medians["fireside"], medians["bare llama-cpp-python"]
    print(f"  fireside / bare        = {f / b:.3f}")
    if exe is not None:
        lb = next(v for k, v in medians.items() if k.startswith("llama-bench"))
        print(f"  fireside / llama-bench = {f / lb:.3f}")
    else:
        print("  fireside / llama-bench = n/a (llama-bench not available)")
    print(f"  fireside and bare wrote the same text: {'yes' if warm[0].text == warm[1].text else 'no'}")
    short = [n for n, runs in results.items() if any(r.tokens < args.tokens for r in runs)]
    if short:
        print(f"  WARNING: fewer than {args.tokens} tokens in some runs of: {', '.join(short)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (>= 5; default 7)")
    parser.add_argument("--tokens", type=int, default=256, help="tokens generated per run (default 256)")
    parser.add_argument("--flash-attn", choices=["on", "off", "both"], default="both")
    parser.add_argument("--threads", type=int, default=default_threads(), help="default: Fireside's choice")
    parser.add_argument("--model", type=Path, help="GGUF model (default: the cached starter model)")
    parser.add_argument("--llama-bench", type=Path, help="llama-bench binary (default: the cached build)")
    parser.add_argument(
        "--build-llama-bench", action="store_true", help=f"build llama-bench into {TOOLS_DIR} first"
    )
    parser.add_argument("--child", choices=["fireside", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.model, args.threads, args.flash_attn == "on")
        return
    if args.rounds < 5:
        parser.error("--rounds must be at least 5")
    if args.llama_bench is not None and not args.llama_bench.is_file():
        parser.error(f"--llama-bench: {args.llama_bench} does not exist")
    model = args.model or starter.fetch_to_cache()

    exe: Path | None = args.llama_bench
    if exe is None and args.build_llama_bench:
        exe = build_llama_bench()
    exe = exe or cached_llama_bench()
    print(machine())
    print(f"model: {model.name}")
    if exe is None:
        print(
            "llama-bench: not found; running Fireside and bare only. Build it with --build-llama-bench "
            f"(or build_llama_bench() in this file) into {TOOLS_DIR}, or pass --llama-bench PATH."
        )
    else:
        print(f"llama-bench: {exe} (built GGML_NATIVE=ON, like the installed llama-cpp-python)")
    print(
        "tokens/s = (completion tokens - 1) / (last text - first text) where the text arrives; "
        "llama-bench: avg_ts of -p 0 -n N -d <prompt tokens>."
    )
    for flash_attn in {"off": [False], "on": [True], "both": [False, True]}[args.flash_attn]:
        bench(args, model, exe, flash_attn)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
