"""Command line: launch the window, or run `--selftest` / `--version` without importing Qt."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from app import __version__
from app.core import paths


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by tests)."""
    parser = argparse.ArgumentParser(
        prog="fireside", description="Run large language models on your own computer."
    )
    parser.add_argument("--version", action="version", version=f"fireside {__version__}")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep every file Fireside writes under DIR (default: the user data folder)",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="GGUF model to load (default: the starter model, or the last one used)",
    )
    parser.add_argument(
        "--selftest",
        action="store_true",
        help="without opening a window, load a model, stream a short reply and print a JSON report",
    )
    parser.add_argument("--json", action="store_true", help="with --selftest: print only the JSON object")
    parser.add_argument("--prompt", default="Say hello in one short sentence.", help=argparse.SUPPRESS)
    parser.add_argument("--max-tokens", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument(
        "--gpu-layers",
        type=int,
        default=None,
        metavar="N",
        help="with --selftest: layers on the GPU (default: Auto, as many as fit; 0: CPU only)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    return parser


def selftest(
    model: str | None, prompt: str, max_tokens: int, gpu_layers: int | None = None
) -> dict[str, Any]:
    """Load a model and stream one reply through the same inference thread the window uses."""
    from app.core import hardware, starter
    from app.core.engine import AUTO_LAYERS, LoadOptions, gpu_offload_supported, llama_cpp_version
    from app.core.inference import (
        Chunk,
        Event,
        InferenceThread,
        Loaded,
        LoadFailed,
        ReplyDone,
        ReplyFailed,
    )
    from app.core.sampling import SamplingParams

    report: dict[str, Any] = {"ok": False, "model": None}
    path = Path(model) if model else starter.install()
    report["model"] = str(path)
    report["llama_cpp_version"] = llama_cpp_version()
    report["gpu_offload_supported"] = gpu_offload_supported()
    found = hardware.detect()
    report["backend"] = found.backend
    report["devices"] = [
        {"name": d.description or d.name, "total_bytes": d.total_bytes, "free_bytes": d.free_bytes}
        for d in found.devices
    ]
    report["cpu_threads"] = found.cpu_threads
    report["ram_total_bytes"] = found.ram_total

    done = threading.Event()
    events: list[Event] = []
    chunks = 0

    def sink(event: Event) -> None:
        nonlocal chunks
        if isinstance(event, Chunk):
            chunks += 1
        elif isinstance(event, Loaded | LoadFailed | ReplyDone | ReplyFailed):
            events.append(event)
            done.set()

    worker = InferenceThread(sink)
    worker.start()
    try:
        started = time.perf_counter()
        worker.load(path, LoadOptions(n_gpu_layers=AUTO_LAYERS if gpu_layers is None else gpu_layers))
        done.wait(120)
        last = events[-1] if events else None
        if not isinstance(last, Loaded):
            report["error"] = last.message if isinstance(last, LoadFailed) else "loading timed out"
            return report
        report["load_s"] = round(time.perf_counter() - started, 3)
        loaded = last.model
        report["context_length"] = loaded.context_length
        report["n_threads"] = loaded.n_threads
        report["n_gpu_layers"] = loaded.n_gpu_layers
        report["max_gpu_layers"] = loaded.max_gpu_layers
        report["estimated_gpu_bytes"] = loaded.estimated_gpu_bytes
        report["gpu_memory_bytes"] = loaded.gpu_memory_bytes  # what llama.cpp allocated on GPUs
        report["kv_type"] = loaded.kv_type
        if loaded.offload_note:
            report["offload_note"] = loaded.offload_note
        done.clear()
        params = SamplingParams(temperature=0.0, seed=42, max_tokens=max_tokens)
        worker.generate([{"role": "user", "content": prompt}], params)
        done.wait(300)
        last = events[-1]
        if not isinstance(last, ReplyDone):
            report["error"] = last.message if isinstance(last, ReplyFailed) else "generation timed out"
            return report
        stats = last.stats
        report.update(
            ok=stats.completion_tokens > 0,
            ttft_s=round(stats.ttft_s, 4),
            tokens_per_s=round(stats.tokens_per_s, 2),
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            stop_reason=stats.stop_reason.value,
            chunks=chunks,
            reply=last.text,
        )
        if not report["ok"]:
            report["error"] = "the model produced no tokens"
        return report
    finally:
        worker.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Entry point of `fireside` and `python -m app`."""
    args = build_parser().parse_args(argv)
    if args.data_dir:
        paths.set_data_dir(args.data_dir)
    from app.core import logs

    logs.setup(verbose=args.verbose)  # rotating files in the user's log folder (or DATA_DIR/logs)
    if args.selftest:
        return _run_selftest(args)
    from app.ui.application import run  # Qt is imported only for the window

    return run(model=args.model)


def _run_selftest(args: argparse.Namespace) -> int:
    try:
        report = selftest(args.model, args.prompt, args.max_tokens, args.gpu_layers)
    except Exception as exc:  # any failure is one line and a non-zero exit
        report = {"ok": False, "model": args.model, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(report, indent=None if args.json else 2))
    if not report["ok"]:
        print(f"selftest failed: {report.get('error', 'unknown error')}", file=sys.stderr)
        return 1
    return 0
