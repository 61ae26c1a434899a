"""Many streams at once: `fireside serve` vs llama.cpp's own `llama-server`, with 1, 4 and 8 clients.

What it measures
    Both servers run as child processes on 127.0.0.1 with the same model (the starter, unless
    --model), threads, per-sequence context and number of sequences (`fireside serve --parallel N`,
    `llama-server -np N -c N*CONTEXT`, continuous batching on both). For each count of clients, every
    client streams one chat completion at the same moment (greedy, up to --tokens tokens, each its
    own prompt, so no prefix is shared) through the official `openai` client, and the run measures:

    * aggregate completion tokens/s: all clients' content deltas over the time from the first
      request to the last delta (both servers send one delta per token);
    * time to first token per client (request sent -> first content delta): p50 and p95;
    * greedy agreement: each prompt's text with N clients at once against its text alone (one client),
      on Fireside: batching must not change what a reply says.

    Optionally (--before DIR) also the Fireside of another checkout (e.g. the tree before continuous
    batching), run the same way but without --parallel (which it may not know).
    Contenders run round-robin, --rounds times per client count, after one unrecorded warm-up each;
    the table gives medians.

Run
    .venv/bin/python tests/perf/llama_tools.py llama-server      # once: build llama-server (~10 min)
    .venv/bin/python tests/perf/bench_batching.py                  # 1, 4 and 8 clients, 3 rounds
    .venv/bin/python tests/perf/bench_batching.py --clients 1 4 8 --rounds 3 --before /work/base

The machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from app.core.inference.options import default_threads  # noqa: E402
from app.core.models import starter  # noqa: E402
from tests.perf.bench_server import free_port, wait_ready  # noqa: E402
from tests.perf.llama_tools import cached_tool  # noqa: E402
from tests.unit.api.served import MODEL  # noqa: E402

TOPICS = [
    "a lighthouse keeper and a storm",
    "a dragon who bakes bread",
    "the history of Rome",
    "how a bicycle works",
    "a journey to the moon",
    "the life of a honeybee",
    "a city under the sea",
    "a robot learning to paint",
    "the first winter of a fox",
    "a lost map and a treasure",
    "a violin that plays by itself",
    "a library that never closes",
]


@dataclass
class Run:
    """One round with `clients` streams at once."""

    tokens: int
    wall_s: float
    ttfts: list[float]
    texts: list[str] = field(default_factory=list)

    @property
    def tok_s(self) -> float:
        """Aggregate completion tokens per second."""
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


def prompt(i: int) -> list[dict[str, str]]:
    """Client i's request (each its own topic: no shared prefix beyond the template)."""
    topic = TOPICS[i % len(TOPICS)]
    return [{"role": "user", "content": f"Write a long, detailed story about {topic}. Use many paragraphs."}]


def one_round(base_url: str, clients: int, tokens: int, offset: int = 0) -> Run:
    """`clients` streaming requests sent at once; their tokens, time and times to first token."""
    barrier = threading.Barrier(clients + 1)
    results: list[tuple[int, float, float, str] | BaseException] = [ValueError("not run")] * clients

    def client(i: int) -> None:
        api = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=600)
        barrier.wait()
        sent = time.perf_counter()
        first = 0.0
        pieces: list[str] = []
        try:
            stream = api.chat.completions.create(
                model=MODEL, messages=prompt(i + offset), max_tokens=tokens, temperature=0, stream=True
            )  # type: ignore[call-overload]
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    if not first:
                        first = time.perf_counter()
                    pieces.append(chunk.choices[0].delta.content)
            results[i] = (len(pieces), first - sent if first else 0.0, time.perf_counter(), "".join(pieces))
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise SystemExit(f"a client failed: {failed[0]!r}")
    done = [r for r in results if not isinstance(r, BaseException)]
    return Run(
        tokens=sum(r[0] for r in done),
        wall_s=max(r[2] for r in done) - started,
        ttfts=[r[1] for r in done],
        texts=[r[3] for r in done],
    )


def start_fireside(
    root: Path, model: Path, port: int, context: int, parallel: int | None, data: Path
) -> subprocess.Popen[bytes]:
    """`fireside serve` of the checkout at `root` (its own Python path)."""
    command = [
        sys.executable,
        "-m",
        "app",
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
        "--context-length",
        str(context),
        "--data-dir",
        str(data),
    ]
    if parallel is not None:
        command += ["--parallel", str(parallel)]
    return subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_llama_server(
    exe: Path, model: Path, port: int, context: int, parallel: int, threads: int
) -> subprocess.Popen[bytes]:
    """llama.cpp's server with `parallel` slots of `context` tokens each, continuous batching on."""
    command = [
        str(exe),
        "-m",
        str(model),
        "--port",
        str(port),
        "-np",
        str(parallel),
        "-c",
        str(context * parallel),
        "-t",
        str(threads),
        "-tb",
        str(threads),
        "--cont-batching",
        "--no-webui",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def times(before: float, now: float) -> str:
    """'3.1x faster' or '1.4x slower': how `now` compares with `before` (both durations)."""
    if before <= 0 or now <= 0:
        return "n/a"
    return f"{before / now:.1f}x faster" if now <= before else f"{now / before:.1f}x slower"


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--parallel", type=int, default=None, help="sequences (default: the most clients)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--context", type=int, default=1024, help="tokens per sequence")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--llama-server", type=Path, default=None)
    parser.add_argument("--before", type=Path, default=None, help="another checkout's Fireside too")
    args = parser.parse_args()
    model = args.model or starter.cached_path()
    parallel = args.parallel or max(args.clients)
    threads = default_threads()
    exe = args.llama_server or cached_tool("llama-server")
    if exe is None:
        print("llama-server not built: run tests/perf/llama_tools.py llama-server first", file=sys.stderr)
        return 2
    contenders: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    with tempfile.TemporaryDirectory(prefix="fireside-bench-") as tmp:
        try:
            for name, start in (
                (
                    "fireside",
                    lambda port: start_fireside(ROOT, model, port, args.context, parallel, Path(tmp) / "a"),
                ),
                (
                    "llama-server",
                    lambda port: start_llama_server(exe, model, port, args.context, parallel, threads),
                ),
                *(
                    (
                        (
                            "before",
                            lambda port: start_fireside(
                                args.before, model, port, args.context, None, Path(tmp) / "b"
                            ),
                        ),
                    )
                    if args.before
                    else ()
                ),
            ):
                port = free_port()
                process = start(port)
                url = f"http://127.0.0.1:{port}/v1"
                wait_ready(url, process)
                contenders[name] = (process, url)
            print(
                f"model {model.name}, {threads} threads, {parallel} sequences of {args.context} tokens, "
                f"{args.tokens} tokens per client, {args.rounds} rounds, round-robin"
            )
            for _name, (_process, url) in contenders.items():
                one_round(url, 1, 16)  # warm-up, unrecorded
            # Each prompt's greedy text on Fireside alone, to compare with the same prompt in a batch.
            fireside_url = contenders["fireside"][1]
            alone = {
                i: one_round(fireside_url, 1, args.tokens, offset=i).texts[0]
                for i in range(max(args.clients))
            }
            table = []
            for clients in args.clients:
                runs: dict[str, list[Run]] = {name: [] for name in contenders}
                for _ in range(args.rounds):
                    for name, (_process, url) in contenders.items():
                        runs[name].append(one_round(url, clients, args.tokens))
                agree = [text == alone.get(i) for run in runs["fireside"] for i, text in enumerate(run.texts)]
                for name, found in runs.items():
                    ttfts = [t for run in found for t in run.ttfts]
                    table.append(
                        (
                            clients,
                            name,
                            statistics.median(r.tok_s for r in found),
                            statistics.median(ttfts),
                            p95(ttfts),
                            f"{sum(agree)}/{len(agree)}" if name == "fireside" else "",
                        )
                    )
            heading = f"{'clients':>7}  {'server':<13} {'agg tok/s':>9} {'TTFT p50':>9} {'TTFT p95':>9}"
            print(f"\n{heading}  greedy same as alone")
            for clients, name, tok_s, p50, p95_, same in table:
                print(f"{clients:>7}  {name:<13} {tok_s:>9.1f} {p50:>8.3f}s {p95_:>8.3f}s  {same}")
            print()
            for clients in args.clients:
                rows = {name: row for row in table if row[0] == clients for name in [row[1]]}
                fire, ref = rows["fireside"], rows["llama-server"]
                ttft = fire[4] / ref[4] if ref[4] else float("nan")
                line = (
                    f"{clients} clients: fireside/llama-server tok/s {fire[2] / ref[2]:.2f}x, "
                    f"TTFT p95 {ttft:.2f}x; greedy same as alone: {fire[5]}"
                )
                if "before" in rows:
                    before = rows["before"]
                    speed = fire[2] / before[2]
                    line += f"; vs before: tok/s {speed:.2f}x, TTFT p95 {times(before[4], fire[4])}"
                print(line)
        finally:
            for process, _url in contenders.values():
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
