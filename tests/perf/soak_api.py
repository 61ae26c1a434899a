"""API soak: thousands of requests from 16 clients, a fifth misbehaving, while the window streams.

What it does
    The real `MainWindow` (offscreen) loads the starter model with 17 sequences and serves the API
    from its own inference thread (as the app does when the server is on). Another process runs
    the load of tests/soak_load.py: first a reference (each of 24 prompts of different lengths asked
    alone, greedy), then `--requests` requests from `--clients` concurrent clients, one in five of
    which disconnects after its first token, sends its body slowly, or never reads its reply.
    Every well-behaved reply is checked for its own prompt (prompt token count) and its text.

    Meanwhile the window streams replies of its own, one after another, and a 5 ms GUI-thread timer
    measures the largest gap and the 99th percentile of gaps (bench_gui.py's method).

    It reports the server process's RSS when the load starts (after the reference pass) and at the
    end, the peak RSS during the load, the TCP connections open to the server at the start and once
    the clients are gone, and the sequences still generating after the load (must be 0).

Run
    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/perf/soak_api.py                  # 3000 requests
    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/perf/soak_api.py --requests 500   # a quick look

The exit status is 1 when a reply was lost, wrong or mixed, connections or sequences stayed open,
or RSS grew by more than --rss-growth-mb (default 100) from start to end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

KEY = "soak-key"


def run_load(address: str, total: int, clients: int, max_tokens: int) -> None:
    """The client process: print JSON lines for progress, then the report."""
    from tests.soak_load import soak
    from tests.unit.api.served import MODEL

    print(json.dumps({"phase": "started"}), flush=True)
    report = asyncio.run(soak(address, KEY, MODEL, total=total, concurrency=clients, max_tokens=max_tokens))
    print(
        json.dumps(
            {
                "phase": "done",
                "summary": report.summary(),
                "requests": report.requests,
                "by_kind": dict(report.by_kind),
                "correct": report.correct,
                "same_text": report.same_text,
                "mixed": report.mixed[:20],
                "errors": report.errors[:20],
                "n_mixed": len(report.mixed),
                "n_errors": len(report.errors),
                "seconds": report.seconds,
            }
        ),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the soak with the window streaming; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=8, help="reply length of the API requests")
    parser.add_argument("--rss-growth-mb", type=float, default=100.0)
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the client process: the server's address
    args = parser.parse_args(argv)
    if args.load:
        run_load(args.load, args.requests, args.clients, args.max_tokens)
        return 0

    import tempfile

    from app.core.api.config import ServerConfig
    from app.core.api.server import LocalServer
    from app.core.models import starter
    from app.core.platform import paths
    from app.core.settings import Settings
    from app.ui.shell.application import create_app
    from app.ui.shell.main_window import MainWindow
    from tests.perf import bench_gui
    from tests.soak_load import established

    if not starter.is_verified(starter.cached_path()):
        print(f"starter model missing from {starter.cached_path()}", file=sys.stderr)
        return 2
    bench_gui.instrument()
    with tempfile.TemporaryDirectory(prefix="fireside-soak-") as tmp:
        paths.set_data_dir(Path(tmp) / "data")
        create_app()
        window = MainWindow(settings=Settings(parallel=args.clients + 1))
        window.resize(1100, 720)
        window.show()
        window.start()
        bench_gui.wait_loaded(window, 120)
        assert window.loaded is not None
        window.sampling.input("max_tokens").setValue(64)
        window.sampling.input("temperature").setValue(0.0)
        window.session.transcript.prompt_messages = bench_gui.only_last_user_message(window)  # type: ignore[method-assign]
        server = LocalServer(window.bridge.worker, ServerConfig(port=0, api_key=KEY))
        server.start()
        port = server.port
        connections_before = established(port)
        command = [sys.executable, str(Path(__file__).resolve()), "--load", server.address]
        command += ["--requests", str(args.requests), "--clients", str(args.clients)]
        command += ["--max-tokens", str(args.max_tokens)]
        clients = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        lines: list[dict[str, object]] = []

        def read() -> None:
            assert clients.stdout is not None
            for line in clients.stdout:
                lines.append(json.loads(line))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        while not lines and clients.poll() is None:
            bench_gui.spin(50)
        rss_start = bench_gui.rss_mb()
        rss_peak = rss_start
        print(
            f"{args.requests} requests from {args.clients} clients (1 in 5 misbehaving), "
            f"max_tokens {args.max_tokens}; window streaming 64-token replies meanwhile; "
            f"{window.loaded.n_parallel} sequences, {window.loaded.n_threads} llama.cpp threads, "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        gaps: list[float] = []
        replies = 0
        while clients.poll() is None:
            result = bench_gui.stream_once(window, 0, 300)
            replies += 1
            gaps.append(result.gap_max)
            rss_peak = max(rss_peak, result.rss_mb)
            print(
                f"  window reply {replies}: gap max {result.gap_max:.1f} ms, p99 {result.gap_p99:.1f} ms, "
                f"{result.tokens_per_s:.1f} tok/s, RSS {result.rss_mb:.0f} MB",
                flush=True,
            )
        reader.join(10)
        deadline = time.monotonic() + 30
        while (window.bridge.worker.replies_running() or established(port)) and time.monotonic() < deadline:
            bench_gui.spin(100)
        running_after = window.bridge.worker.replies_running()
        connections_after = established(port)
        rss_end = bench_gui.rss_mb()
        server.stop()
        window.close()
        bench_gui.spin(50)
        paths.set_data_dir(None)
    done = next((line for line in lines if line.get("phase") == "done"), None)
    if done is None:
        print(f"the client process ended without a report (exit {clients.returncode})", file=sys.stderr)
        return 1
    print()
    print(done["summary"])
    for problem in itertools.chain(done["mixed"], done["errors"]):  # type: ignore[call-overload]
        print("  ", problem)
    print()
    print("| metric | start | end |")
    print("|---|---|---|")
    print(f"| server RSS (MB) | {rss_start:.0f} | {rss_end:.0f} (peak {rss_peak:.0f}) |")
    print(f"| open connections to the server | {connections_before} | {connections_after} |")
    print(f"| sequences still generating | - | {running_after} |")
    worst = max(gaps, default=0.0)
    print(f"\nwindow: {replies} replies streamed meanwhile, largest GUI-thread gap {worst:.1f} ms")
    missed = []
    if done["n_mixed"] or done["n_errors"]:
        missed.append("replies lost, wrong or mixed")
    well_behaved = done["by_kind"].get("plain", 0) + done["by_kind"].get("slow_body", 0)  # type: ignore[union-attr]
    if done["correct"] != well_behaved:
        missed.append(f"{done['correct']} of {well_behaved} well-behaved replies correct")
    if connections_after or running_after:
        missed.append("connections or sequences left open")
    if rss_end - rss_start > args.rss_growth_mb:
        missed.append(f"RSS grew by {rss_end - rss_start:.0f} MB")
    print("all held" if not missed else "MISSED: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
