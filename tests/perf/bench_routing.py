"""Any model by name: time to the first token when a request names a model that is not loaded (a
just-in-time load) against one already loaded, in `fireside serve` and in llama.cpp's own server in
router mode (`llama-server --models-dir`, which loads each model in a child process on request).

What it measures
    Each round starts each server afresh (nothing of the F16 copy in memory but the page cache):

    * Fireside: `fireside serve --model <starter>` with the starter's F16 copy (tests/f16_writer.py)
      in its models folder; a request to the starter (loaded), then to the F16 copy (loaded just in
      time), then to the F16 copy again (now loaded);
    * llama-server --models-dir with both files: the starter (loaded by its first request, untimed
      warm-up), then the F16 copy just in time, then again.

    Each request is streamed, greedy, a short question and 8 tokens; the time to first token is from
    sending it to the first piece of text. Medians over the rounds, and the ratio JIT / loaded.

Run
    .venv/bin/python tests/perf/llama_tools.py llama-server      # once: build llama-server (~10 min)
    .venv/bin/python tests/perf/bench_routing.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import openai  # noqa: E402

from app.core.inference.options import default_threads  # noqa: E402
from app.core.models import starter  # noqa: E402
from tests.f16_writer import write_f16_copy  # noqa: E402
from tests.perf.bench_server import free_port, wait_ready  # noqa: E402
from tests.perf.llama_tools import cached_tool  # noqa: E402

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
N_CTX = 1024


def ttft(client: openai.OpenAI, model: str) -> float:
    """Seconds from sending a streamed request for `model` to its first piece of text."""
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=model,
        messages=QUESTION,
        max_tokens=8,
        temperature=0,
        stream=True,  # type: ignore[arg-type]
    )
    first = 0.0
    for chunk in stream:
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    return first


def model_id(base: str, stem: str) -> str:
    """The name a server lists for the model file `stem` (llama-server may keep the .gguf)."""
    ids = [m["id"] for m in httpx.get(base + "/models", timeout=10).json()["data"]]
    return next(i for i in ids if i.removesuffix(".gguf") == stem)


def fireside_round(models: Path, first: Path, other: Path, data: Path) -> tuple[float, float, float]:
    port = free_port()
    command = [sys.executable, "-m", "app", "serve", "--model", str(first), "--port", str(port)]
    command += ["--context-length", str(N_CTX), "--parallel", "1", "--data-dir", str(data)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(base, process)
        client = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=300)
        ttft(client, first.stem)  # warm-up: the first reply of a process pays for its own start-up
        loaded = ttft(client, first.stem)
        jit = ttft(client, other.stem)
        warm = ttft(client, other.stem)
        return loaded, jit, warm
    finally:
        process.terminate()
        process.wait(30)


def llama_round(server: Path, models: Path, first: Path, other: Path) -> tuple[float, float, float]:
    port = free_port()
    command = [str(server), "--models-dir", str(models), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-c", str(N_CTX), "-t", str(default_threads()), "-np", "1", "--models-max", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(base, process)
        client = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=300)
        name, other_name = model_id(base, first.stem), model_id(base, other.stem)
        ttft(client, name)  # its first load, untimed (Fireside's --model is loaded before serving)
        loaded = ttft(client, name)
        jit = ttft(client, other_name)
        warm = ttft(client, other_name)
        return loaded, jit, warm
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = cached_tool("llama-server")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        models = data / "models"
        models.mkdir(parents=True)
        first = starter.fetch_to_cache()
        (models / first.name).symlink_to(first)
        other = write_f16_copy(models / "SmolLM2-135M-Instruct.F16.gguf", first)
        results: dict[str, list[tuple[float, float, float]]] = {"fireside": [], "llama-server": []}
        for round_no in range(args.rounds):
            results["fireside"].append(fireside_round(models, first, other, data))
            if server is not None:
                results["llama-server"].append(llama_round(server, models, first, other))
            print(f"round {round_no + 1}: {results}", file=sys.stderr)
    threads = default_threads()
    print(f"\nTime to first token, {args.rounds} rounds, {threads} threads, context {N_CTX} (medians, s)")
    print(f"{'server':<14}{'loaded':>10}{'JIT load':>10}{'then':>10}{'JIT / loaded':>14}")
    for name, rows in results.items():
        if not rows:
            print(f"{name:<14} (not built: tests/perf/llama_tools.py llama-server)")
            continue
        loaded, jit, warm = (statistics.median(r[i] for r in rows) for i in range(3))
        print(f"{name:<14}{loaded:>10.3f}{jit:>10.3f}{warm:>10.3f}{jit / loaded:>13.1f}x")


if __name__ == "__main__":
    main()
