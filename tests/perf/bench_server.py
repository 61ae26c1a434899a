"""API server speed: `fireside serve` vs llama-cpp-python's own server, read by the official openai client.

What it measures
    Both servers run as child processes on 127.0.0.1 with the same model (the starter, unless
    --model), context length, thread count and sampling (temperature 0, repeat penalty 1). One
    `openai` client streams the same chat request from each, round-robin, after one unrecorded
    warm-up request each:

    * time to first token: from sending the request to the first content delta (the prompt is
      evaluated in full each round: each round's prompt starts with its own number);
    * tokens/s: (content deltas - 1) / (time of the last delta - time of the first), as the client
      sees them; both servers send one delta per token.

    The table gives medians with min and max, and Fireside's ratios over llama_cpp.server (targets:
    tokens/s >= 1.0; time to first token at most equal, i.e. speed ratio >= 1.0).

Run
    .venv/bin/python tests/perf/bench_server.py                   # 7 rounds of 256 tokens
    .venv/bin/python tests/perf/bench_server.py --rounds 3 --tokens 128

The machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import openai  # noqa: E402

from app.core.inference.options import default_threads  # noqa: E402
from app.core.models import starter  # noqa: E402
from tests.unit.api.served import MODEL  # noqa: E402

PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm. Use many paragraphs."


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait until GET /models answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(base_url + "/models", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{base_url} did not start")


def start_fireside(model: Path, port: int, n_ctx: int, data_dir: Path) -> subprocess.Popen[bytes]:
    """`fireside serve` (the same code the window's server runs)."""
    command = [sys.executable, "-m", "app", "serve", "--model", str(model), "--port", str(port)]
    command += ["--context-length", str(n_ctx), "--data-dir", str(data_dir)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_llama_cpp(model: Path, port: int, n_ctx: int, threads: int) -> subprocess.Popen[bytes]:
    """llama-cpp-python's OpenAI-compatible server with the same settings."""
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
    command += ["--n_threads_batch", str(threads), "--verbose", "False"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_run(client: openai.OpenAI, round_no: int, tokens: int) -> tuple[float, float, int]:
    """(time to first token s, tokens/s, deltas) for one streamed reply."""
    started = time.perf_counter()
    first = last = 0.0
    deltas = 0
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"Request {round_no}. {PROMPT}"}],
        temperature=0,
        max_tokens=tokens,
        stream=True,
        extra_body={"repeat_penalty": 1.0, "top_k": 40, "min_p": 0.05},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            first = first or last
            deltas += 1
    rate = (deltas - 1) / (last - first) if deltas > 1 and last > first else 0.0
    return first - started, rate, deltas


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args()
    model = args.model or starter.install()
    threads = default_threads()
    data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "fireside-bench-server"
    servers = {}
    fire_port, llama_port = free_port(), free_port()
    servers["fireside"] = (start_fireside(model, fire_port, args.n_ctx, data_dir), fire_port)
    servers["llama_cpp.server"] = (start_llama_cpp(model, llama_port, args.n_ctx, threads), llama_port)
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in servers}
    try:
        clients = {}
        for name, (process, port) in servers.items():
            base = f"http://127.0.0.1:{port}/v1"
            wait_ready(base, process)
            clients[name] = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=600)
            one_run(clients[name], 0, 16)  # warm-up
        for round_no in range(1, args.rounds + 1):
            order = list(clients) if round_no % 2 else list(reversed(clients))
            for name in order:
                results[name].append(one_run(clients[name], round_no, args.tokens))
    finally:
        for process, _port in servers.values():
            process.terminate()
            process.wait(30)

    setup = f"{threads} threads, n_ctx {args.n_ctx}, {args.tokens} tokens, {args.rounds} rounds"
    print(f"\nModel {model.name}, {setup}")
    print(f"{'server':<18} {'TTFT median (min–max)':>26} {'tok/s median (min–max)':>28} {'deltas':>7}")
    medians = {}
    for name, runs in results.items():
        ttft = [r[0] * 1000 for r in runs]
        rate = [r[1] for r in runs]
        medians[name] = (statistics.median(ttft), statistics.median(rate))
        print(
            f"{name:<18} {medians[name][0]:>9.1f} ms ({min(ttft):.1f}–{max(ttft):.1f}) "
            f"{medians[name][1]:>12.1f} ({min(rate):.1f}–{max(rate):.1f}) "
            f"{statistics.median(r[2] for r in runs):>7.0f}"
        )
    fire, llama = medians["fireside"], medians["llama_cpp.server"]
    print(f"\ntokens/s ratio fireside / llama_cpp.server: {fire[1] / llama[1]:.3f}  (target >= 1.0)")
    ttft_ratio = llama[0] / fire[0]
    print(f"time to first token, llama_cpp.server / fireside: {ttft_ratio:.3f}  (>= 1.0: Fireside first)")


if __name__ == "__main__":
    main()
