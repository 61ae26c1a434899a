"""Command line: launch the window, `fireside serve` (the API server without a window), or run
`--selftest` / `--version`; only the window imports Qt."""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

from app import __version__
from app.core.platform import paths


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by tests)."""
    parser = argparse.ArgumentParser(
        prog="fireside",
        usage="fireside [options]\n       fireside serve [serve options]",
        description="Run large language models on your own computer. Without options: open the window.",
        epilog="fireside serve, the API server without a window:\n" + _serve_summary(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument(
        "--json",
        action="store_true",
        help="with --selftest: the report as one line of JSON (default: indented)",
    )
    parser.add_argument(
        "--prompt",
        metavar="TEXT",
        default="Say hello in one short sentence.",
        help="with --selftest: what to ask (default: a one-sentence hello)",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=32,
        metavar="N",
        help="with --selftest: tokens to generate (default 32)",
    )
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
    from app.core.inference.events import Chunk, Event, Loaded, LoadFailed, ReplyDone, ReplyFailed
    from app.core.inference.options import AUTO_LAYERS, LoadOptions
    from app.core.inference.thread import InferenceThread
    from app.core.models import starter
    from app.core.system import hardware
    from app.core.system.binding import gpu_offload_supported, llama_cpp_version
    from app.core.values.sampling import SamplingParams

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


def _serve_summary() -> str:
    """`fireside serve`'s description and options, indented, for the main help's epilog."""
    text = build_serve_parser().format_help()
    return "\n".join(f"  {line}" if line else line for line in text.splitlines())


def build_serve_parser() -> argparse.ArgumentParser:
    """The parser of `fireside serve`."""
    from app.core.api.config import DEFAULT_HOST, DEFAULT_IDLE_UNLOAD_S, DEFAULT_PORT

    parser = argparse.ArgumentParser(
        prog="fireside serve",
        description="Serve a model over an OpenAI-compatible API without opening a window. Stop with Ctrl+C.",
    )
    parser.add_argument(
        "--model", metavar="PATH", help="GGUF model (default: the last one used, or the starter)"
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="require this key from clients (required for a non-loopback --host; "
        "FIRESIDE_API_KEY in the environment keeps it out of the process list)",
    )
    parser.add_argument(
        "--context-length", type=int, default=4096, metavar="N", help="context window in tokens"
    )
    parser.add_argument(
        "--gpu-layers",
        type=int,
        default=None,
        metavar="N",
        help="layers on the GPU (default: as many as fit)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=0,
        metavar="N",
        help="replies generated at once, each with a context of its own (default: Auto, up to 4 as "
        "memory allows)",
    )
    parser.add_argument(
        "--speculative",
        choices=("auto", "off", "ngram"),
        default="auto",
        help="guess replies ahead and check the guesses in one decode (the same text, faster when "
        "a reply repeats what it was given): auto (default) uses n-gram lookup over the "
        "conversation, and the --draft-model too when given; ngram only the lookup; off neither",
    )
    parser.add_argument(
        "--draft-model",
        metavar="PATH",
        help="a smaller GGUF model of the same vocabulary (the same family) that guesses for the "
        "model; it pays off on a GPU, where a guess of several tokens costs about one",
    )
    parser.add_argument(
        "--memory-budget",
        metavar="SIZE",
        default=None,
        help="memory all loaded models may take together, e.g. 12GB or 800MB (default: the server "
        "panel's setting, Auto: three quarters of RAM and GPU memory); a request naming another "
        "installed model loads it just in time, first unloading idle ones if it would not fit",
    )
    parser.add_argument(
        "--idle-unload",
        type=int,
        default=None,
        metavar="SECONDS",
        help="unload a model loaded for requests after this long unused (0: never; default: the "
        f"server panel's setting, {DEFAULT_IDLE_UNLOAD_S} s); a request's `ttl` sets it per model. "
        "The --model stays loaded",
    )
    parser.add_argument(
        "--fetch-images",
        action="store_true",
        help="fetch images that requests give by http(s) address (network traffic Fireside makes "
        "on a client's behalf; off: only images sent inside the request are read)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="keep every file Fireside writes under DIR")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    return parser


def parse_size(text: str) -> int:
    """Bytes from "12GB", "12G", "800MB", "1.5GiB" or "auto" (0). Raises ValueError with words."""
    units = {
        "k": 10**3,
        "m": 10**6,
        "g": 10**9,
        "t": 10**12,
        "ki": 2**10,
        "mi": 2**20,
        "gi": 2**30,
        "ti": 2**40,
    }
    value = text.strip().lower()
    if value == "auto":
        return 0
    number = value.rstrip("bi").rstrip("kmgt")
    unit = value[len(number) :].removesuffix("b")
    try:
        size = float(number)
    except ValueError:
        size = -1.0
    if size == 0 and unit in (*units, ""):
        return 0  # "0", "0GB": Auto, as the server panel's 0 is
    if unit not in units or not math.isfinite(size) or size <= 0 or size * units[unit] < 1 << 20:
        raise ValueError(
            f"“{text}” is not a size: give a number and a unit, such as 12GB or 800MB (1MB at least), or auto"
        )
    return int(size * units[unit])


def main(argv: list[str] | None = None) -> int:
    """Entry point of `fireside` and `python -m app`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return _serve(build_serve_parser().parse_args(argv[1:]))
    args = build_parser().parse_args(argv)
    if args.data_dir:
        paths.set_data_dir(args.data_dir)
    from app.core.platform import logs

    logs.setup(verbose=args.verbose)  # rotating files in the user's log folder (or DATA_DIR/logs)
    if args.selftest:
        return _run_selftest(args)
    from app.ui.shell.application import run  # Qt is imported only for the window

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


def _serve(args: argparse.Namespace) -> int:
    """`fireside serve`: load the model, serve it until Ctrl+C or SIGTERM, then stop cleanly."""
    import os
    import signal

    if args.data_dir:
        paths.set_data_dir(args.data_dir)
    from dataclasses import replace

    from app.core.api.config import MAX_IDLE_UNLOAD_S, ServerConfig
    from app.core.api.request_log import RequestLog
    from app.core.api.server import LocalServer, ServerError
    from app.core.inference.events import Event, Loaded, LoadFailed
    from app.core.inference.options import LoadOptions
    from app.core.inference.thread import InferenceThread
    from app.core.models import starter
    from app.core.platform import logs
    from app.core.settings import MAX_PARALLEL, Settings, sources_from_settings
    from app.core.values.sampling import RANGES

    logs.setup(verbose=args.verbose)
    api_key = args.api_key or os.environ.get("FIRESIDE_API_KEY") or None
    settings = Settings.load()
    try:
        budget = (
            settings.api_server.memory_budget
            if args.memory_budget is None
            else parse_size(args.memory_budget)
        )
    except ValueError as exc:
        print(f"fireside serve: --memory-budget: {exc}", file=sys.stderr)
        return 2
    idle = settings.api_server.idle_unload_s if args.idle_unload is None else args.idle_unload
    if not 0 <= idle <= MAX_IDLE_UNLOAD_S:
        print(
            f"fireside serve: --idle-unload must be 0 (never) to {MAX_IDLE_UNLOAD_S} seconds", file=sys.stderr
        )
        return 2
    config = ServerConfig(
        args.host,
        args.port,
        api_key,
        allow_network=True,  # --host is the explicit choice
        fetch_images=args.fetch_images,
        memory_budget=budget,
        idle_unload_s=idle,
        aliases=settings.api_server.aliases,
    )
    context = RANGES["context_length"]
    if not context.minimum <= args.context_length <= context.maximum:
        print(f"fireside serve: --context-length must be {context.describe()}", file=sys.stderr)
        return 2
    if not 0 <= args.parallel <= MAX_PARALLEL:
        print(f"fireside serve: --parallel must be 0 (Auto) to {MAX_PARALLEL}", file=sys.stderr)
        return 2
    if args.draft_model and not Path(args.draft_model).is_file():
        print(f"fireside serve: --draft-model {args.draft_model}: no such file", file=sys.stderr)
        return 2
    if args.draft_model and args.speculative != "auto":
        print(
            f"fireside serve: --draft-model needs --speculative auto (not {args.speculative})",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        path = Path(args.model) if args.model else Path(settings.last_model or starter.install())
    except Exception as exc:
        print(f"fireside serve: no model to serve ({exc}). Use --model PATH.", file=sys.stderr)
        return 1
    outcome: list[Event] = []
    ready = threading.Event()

    def sink(event: Event) -> None:
        if isinstance(event, Loaded | LoadFailed):
            outcome.append(event)
            ready.set()

    worker = InferenceThread(sink)
    worker.start()
    worker.set_speculation(args.speculative, args.draft_model)  # before the load: it opens with the model

    def options(model: Path) -> LoadOptions:
        """How a model loads: the command line's choices over the window's settings for it."""
        chosen = replace(settings.load_options(str(model), args.context_length), n_parallel=args.parallel)
        return chosen if args.gpu_layers is None else replace(chosen, n_gpu_layers=args.gpu_layers)

    sources = sources_from_settings(
        lambda: settings, options=options, speculation=lambda: (args.speculative, args.draft_model)
    )
    server = LocalServer(worker, config, sources=sources)
    try:
        worker.load(path, options(path))
        while not ready.wait(0.1):
            if stop.is_set():
                return 130
        if isinstance(outcome[0], LoadFailed):
            print(f"fireside serve: {outcome[0].message}", file=sys.stderr)
            return 1

        def show(entry: RequestLog) -> None:
            if entry.state == "done":
                print(entry.line(), flush=True)

        server.add_listener(show)
        try:
            server.start()
        except ServerError as exc:
            print(f"fireside serve: {exc}", file=sys.stderr)
            return 2
        auth = "an API key is required" if api_key else "no API key"
        parallel = outcome[0].model.n_parallel if isinstance(outcome[0], Loaded) else 1
        from app.core.values.units import rough_size

        idle_words = f"unloaded after {idle} s unused" if idle else "kept until the server stops"
        print(
            f"Fireside is serving {path.stem} at {server.address} ({auth}), {parallel} replies at once. "
            f"Other installed models and aliases load when a request names them (memory budget "
            f"{rough_size(server.pool.budget_bytes())}{' (Auto)' if not budget else ''}, {idle_words}). "
            "Ctrl+C stops.",
            flush=True,
        )
        loaded = outcome[0].model if isinstance(outcome[0], Loaded) else None
        if loaded is not None and loaded.draft_note:
            print(f"fireside serve: {loaded.draft_note}", file=sys.stderr, flush=True)
        elif loaded is not None and loaded.draft_model is not None:
            print(f"Drafting with {loaded.draft_model.name}.", flush=True)
        while not stop.wait(0.2):
            if not server.running:
                print("fireside serve: the server stopped unexpectedly; see the log.", file=sys.stderr)
                return 1
        print("Stopping…", flush=True)
        return 0
    finally:
        server.stop()
        worker.shutdown()
