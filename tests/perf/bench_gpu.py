"""GPU offload: Fireside with Auto GPU layers vs bare llama-cpp-python with every layer on the GPU, and both
on the CPU only; tokens/s, time to first token, and the memory estimate against what llama.cpp allocated.

What it measures
    * fireside (Auto): `InferenceThread` -> `Engine` loaded with n_gpu_layers = Auto (the layer choice
      `offload.choose_gpu_layers` makes from the GPU's free memory), then `stream_chat`;
    * bare (all layers): llama-cpp-python's `Llama(n_gpu_layers=-1)`, `create_chat_completion(stream=True)`;
    * the same two with n_gpu_layers = 0 (CPU only), fewer tokens (the CPU is far slower).
    Same model, context, flash attention, greedy sampling and max_tokens everywhere. tokens/s is the
    generation phase, (tokens - 1) / (last text - first text), taken where the text arrives; time to first
    token runs from the request to the first text. Each contender runs in its own child process (two
    llama.cpp contexts in one process slow each other down), round-robin, after one warm-up run each.

Also printed: the hardware llama.cpp reports (backend, devices, free memory), the layers Auto chose, and
Fireside's GPU estimate next to the GPU buffers llama.cpp allocated (from its log), as JSON too (--json).

Run
    .venv/bin/python tests/perf/bench_gpu.py                          # the starter model
    python3 tests/perf/bench_gpu.py --model big.gguf --tokens 256 --cpu-tokens 32 --rounds 3 --json out.json

No GPU (a CPU-only build): the "GPU" rows run on the CPU too and the table says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.inference.events import Chunk, Event, Loaded, LoadFailed, ReplyDone, ReplyFailed  # noqa: E402
from app.core.inference.options import AUTO_LAYERS, LoadedModel, LoadOptions, default_threads  # noqa: E402
from app.core.inference.thread import InferenceThread  # noqa: E402
from app.core.system import hardware  # noqa: E402
from app.core.values.sampling import SamplingParams  # noqa: E402
from tests.perf.bench_stream import gen_rate, read_chat_stream  # noqa: E402

MARK = "FIRESIDE_BENCH_GPU "
MESSAGES = [
    {
        "role": "user",
        "content": "Write a long, detailed essay about the history of Rome. Cover every century.",
    }
]


@dataclass(frozen=True, slots=True)
class Run:
    """One measured generation."""

    tokens: int
    tok_s: float
    ttft_s: float


class FiresideRunner:
    """Fireside's path: the inference thread and engine, as the window and `--selftest` use them."""

    def __init__(self, model: Path, ctx: int, layers: int, flash: bool, threads: int) -> None:
        self._done = threading.Event()
        self._arrivals: list[float] = []
        self._final: Event | None = None
        self._thread = InferenceThread(self._sink)
        self._thread.start()
        self.ctx = ctx
        self._thread.load(model, LoadOptions(ctx, n_threads=threads, n_gpu_layers=layers, flash_attn=flash))
        final = self._wait()
        if not isinstance(final, Loaded):
            raise RuntimeError(f"Fireside could not load the model: {final}")
        self.loaded: LoadedModel = final.model

    def _sink(self, event: Event) -> None:
        if isinstance(event, Chunk):
            self._arrivals.append(time.perf_counter())
        elif isinstance(event, Loaded | LoadFailed | ReplyDone | ReplyFailed):
            self._final = event
            self._done.set()

    def _wait(self) -> Event | None:
        if not self._done.wait(900):
            raise RuntimeError("Fireside did not answer within 15 minutes")
        self._done.clear()
        return self._final

    def run(self, tokens: int) -> Run:
        self._arrivals.clear()
        params = SamplingParams(
            temperature=0.0, repeat_penalty=1.0, max_tokens=tokens, seed=1, context_length=self.ctx
        )
        started = time.perf_counter()
        self._thread.generate(MESSAGES, params)
        final = self._wait()
        if not isinstance(final, ReplyDone):
            raise RuntimeError(f"Fireside's reply failed: {final}")
        n = final.stats.completion_tokens
        return Run(n, gen_rate(n, self._arrivals[0], self._arrivals[-1]), self._arrivals[0] - started)

    def info(self) -> dict[str, Any]:
        m = self.loaded
        return {
            "n_gpu_layers": m.n_gpu_layers, "max_gpu_layers": m.max_gpu_layers, "backend": m.backend,
            "estimated_gpu_bytes": m.estimated_gpu_bytes, "gpu_memory_bytes": m.gpu_memory_bytes,
            "memory_bytes": m.memory_bytes, "buffers": m.buffers, "load_s": round(m.load_s, 3),
            "offload_note": m.offload_note,
        }  # fmt: skip

    def close(self) -> None:
        self._thread.shutdown()


class BareRunner:
    """llama-cpp-python's high-level streaming API, as a script using it directly would."""

    def __init__(self, model: Path, ctx: int, layers: int, flash: bool, threads: int) -> None:
        from llama_cpp import Llama

        self._llm = Llama(
            str(model), n_ctx=ctx, n_batch=512, n_ubatch=512, n_threads=threads, n_threads_batch=threads,
            flash_attn=flash, n_gpu_layers=-1 if layers == AUTO_LAYERS else layers, verbose=False,
        )  # fmt: skip

    def run(self, tokens: int) -> Run:
        started = time.perf_counter()
        stream: Iterator[Any] = self._llm.create_chat_completion(
            MESSAGES, stream=True, max_tokens=tokens, temperature=0.0, repeat_penalty=1.0, seed=1
        )  # type: ignore[assignment]
        text, first, last, finish = read_chat_stream(stream)
        n = tokens if finish == "length" else len(self._llm.tokenize(text.encode(), add_bos=False))
        return Run(n, gen_rate(n, first, last), first - started)

    def info(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self._llm.close()


def child_main(args: argparse.Namespace) -> None:
    """Child process: load once, then one run per line read from stdin ("N"), a JSON line back."""
    kind = FiresideRunner if args.child == "fireside" else BareRunner
    runner = kind(Path(args.model), args.ctx, args.layers, args.flash_attn == "on", args.threads)
    print(MARK + json.dumps(runner.info()), flush=True)
    for line in sys.stdin:
        print(MARK + json.dumps(asdict(runner.run(int(line)))), flush=True)
    runner.close()


class Child:
    """Parent side of one contender's process."""

    def __init__(self, kind: str, args: argparse.Namespace, layers: int) -> None:
        cmd = [
            sys.executable, __file__, "--child", kind, "--model", str(args.model), "--ctx", str(args.ctx),
            "--layers", str(layers), "--flash-attn", args.flash_attn, "--threads", str(args.threads),
        ]  # fmt: skip
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info: dict[str, Any] = json.loads(self._reply())

    def _reply(self) -> str:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
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
        self._proc.wait(60)


def measure(args: argparse.Namespace, layers: int, tokens: int, rounds: int) -> dict[str, Any]:
    """Fireside and bare at one layer setting, round-robin; medians."""
    fireside = Child("fireside", args, layers)
    bare = Child("bare", args, layers)
    runs: dict[str, list[Run]] = {"fireside": [], "bare": []}
    try:
        fireside.run(tokens), bare.run(tokens)  # warm-up
        for _ in range(rounds):
            runs["fireside"].append(fireside.run(tokens))
            runs["bare"].append(bare.run(tokens))
    finally:
        fireside.close()
        bare.close()

    def med(kind: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs[kind])

    return {
        "fireside": fireside.info,
        "tokens": sorted({r.tokens for r in runs["fireside"] + runs["bare"]}),
        "fireside_tok_s": med("fireside", "tok_s"), "bare_tok_s": med("bare", "tok_s"),
        "fireside_ttft_s": med("fireside", "ttft_s"), "bare_ttft_s": med("bare", "ttft_s"),
        "runs": {k: [asdict(r) for r in v] for k, v in runs.items()},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--cpu-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu-rounds", type=int, default=2)
    parser.add_argument("--flash-attn", choices=["on", "off"], default="on")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--layers", type=int, default=AUTO_LAYERS, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["fireside", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    if args.model is None:
        from app.core.models import starter

        args.model = starter.fetch_to_cache()
    if args.child:
        child_main(args)
        return
    found = hardware.detect()
    print(f"hardware: {json.dumps(found.to_json())}", flush=True)
    gpu = measure(args, AUTO_LAYERS, args.tokens, args.rounds)
    cpu = None if args.skip_cpu else measure(args, 0, args.cpu_tokens, args.cpu_rounds)
    info = gpu["fireside"]
    model = f"model: {args.model.name}, context {args.ctx}, flash attention {args.flash_attn}"
    print(f"\n{model}, {args.threads} threads")
    layers = f"{info['n_gpu_layers']} of {info['max_gpu_layers']} layers ({info['backend']})"
    print(f"Auto chose {layers}; load {info['load_s']} s")
    if info.get("gpu_memory_bytes"):
        ratio = info["estimated_gpu_bytes"] / info["gpu_memory_bytes"]
        print(
            f"GPU memory: estimated {info['estimated_gpu_bytes'] / 2**20:.0f} MiB, llama.cpp allocated "
            f"{info['gpu_memory_bytes'] / 2**20:.0f} MiB (estimate / allocated = {ratio:.2f})"
        )
    for name, what, size in info["buffers"]:
        print(f"    {name:<12} {what:<8} {size / 2**20:9.1f} MiB")
    print(f"\n  {'':<34} {'tok/s':>8} {'TTFT ms':>8}")
    rows = [("fireside, Auto layers", gpu, "fireside"), ("bare llama-cpp-python, all layers", gpu, "bare")]
    if cpu is not None:
        rows += [("fireside, CPU only", cpu, "fireside"), ("bare llama-cpp-python, CPU only", cpu, "bare")]
    for label, result, kind in rows:
        print(f"  {label:<34} {result[f'{kind}_tok_s']:>8.1f} {1000 * result[f'{kind}_ttft_s']:>8.1f}")
    speed = gpu["fireside_tok_s"] / gpu["bare_tok_s"]
    print(f"\n  ratio fireside / bare (GPU): tokens/s {speed:.3f}  (target >= 0.98)")
    ttft = gpu["bare_ttft_s"] / gpu["fireside_ttft_s"]
    print(f"  ratio TTFT bare / fireside (GPU): {ttft:.3f}  (> 1: Fireside faster)")
    if cpu is not None:
        print(
            f"  GPU speed-up over CPU only (fireside): {gpu['fireside_tok_s'] / cpu['fireside_tok_s']:.1f}x"
        )
        print(f"  ratio fireside / bare (CPU): tokens/s {cpu['fireside_tok_s'] / cpu['bare_tok_s']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"hardware": found.to_json(), "gpu": gpu, "cpu": cpu}, indent=1))


if __name__ == "__main__":
    main()
