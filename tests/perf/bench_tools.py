"""Tool calling's speed: time to the first tool call, `fireside serve` vs llama.cpp's `llama-server`.

What it measures
    Both servers run as child processes on 127.0.0.1 with the same model (the starter, unless
    --model), context length and threads. The official openai client streams the same request from
    each, round-robin, after one unrecorded warm-up each: a question, one function with a schema
    (a bounded city name and an enum), `tool_choice: "required"`, temperature 0. Per round:

    * time to the first tool call: from sending the request to the first `delta.tool_calls` chunk
      (each round's question starts with its own number, so the prompt is read in full each time);
    * time to the whole call: to the chunk with `finish_reason`;
    * whether the call's arguments parse as JSON of the schema.

    As a reference inside Fireside, the same question without tools: time to the first token.
    The table gives medians, and Fireside's ratio over llama-server (speed: > 1 is faster).
    llama-server (with --jinja, its tool-calling mode) is built from the llama.cpp that
    llama-cpp-python vendors (tests/perf/llama_tools.py); without it, only Fireside is measured.

Run
    .venv/bin/python tests/perf/bench_tools.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from app.core.inference.options import default_threads  # noqa: E402
from app.core.models import starter  # noqa: E402
from tests.perf.bench_server import free_port, start_fireside, wait_ready  # noqa: E402
from tests.perf.llama_tools import cached_tool  # noqa: E402
from tests.unit.api.served import MODEL  # noqa: E402

QUESTION = "What is the weather like in Paris today?"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 40},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


def start_llama_server(
    binary: Path, model: Path, port: int, n_ctx: int, threads: int
) -> subprocess.Popen[bytes]:
    """llama.cpp's server with the same settings, its Jinja templates (and tool calling) on."""
    command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", str(n_ctx)]
    command += ["-t", str(threads), "-tb", str(threads), "--jinja", "-np", "1"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def valid(arguments: str) -> bool:
    """The arguments follow TOOL's schema."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return False
    return (
        isinstance(value, dict)
        and set(value) == {"city", "unit"}
        and isinstance(value["city"], str)
        and len(value["city"]) <= 40
        and value["unit"] in ("celsius", "fahrenheit")
    )


def call_round(client: openai.OpenAI, round_no: int) -> tuple[float | None, float, bool]:
    """(s to the first tool-call chunk or None when no call came, s to the end, the arguments are
    valid) for one request."""
    started = time.perf_counter()
    first = 0.0
    arguments = ""
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"Question {round_no}. {QUESTION}"}],
        tools=[TOOL],  # type: ignore[list-item]
        tool_choice="required",
        temperature=0,
        max_tokens=120,
        stream=True,
    )
    for chunk in stream:
        if not chunk.choices:
            continue
        for piece in chunk.choices[0].delta.tool_calls or []:
            first = first or time.perf_counter()
            if piece.index == 0 and piece.function is not None:
                arguments += piece.function.arguments or ""
    return (first - started) if first else None, time.perf_counter() - started, valid(arguments)


def text_round(client: openai.OpenAI, round_no: int) -> float:
    """s to the first content token of the same question without tools."""
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"Question {round_no}. {QUESTION}"}],
        temperature=0,
        max_tokens=8,
        stream=True,
    )
    first = 0.0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or time.perf_counter()
    return first - started


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args()
    model = args.model or starter.install()
    threads = default_threads()
    data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "fireside-bench-tools"
    servers = {}
    port = free_port()
    servers["fireside"] = (start_fireside(model, port, args.n_ctx, data_dir), port)
    binary = cached_tool("llama-server")
    if binary is not None:
        port = free_port()
        servers["llama-server"] = (start_llama_server(binary, model, port, args.n_ctx, threads), port)
    else:
        print("llama-server is not built (tests/perf/llama_tools.py llama-server): Fireside alone.")
    calls: dict[str, list[tuple[float | None, float, bool]]] = {name: [] for name in servers}
    texts: list[float] = []
    try:
        clients = {}
        for name, (process, port) in servers.items():
            base = f"http://127.0.0.1:{port}/v1"
            wait_ready(base, process)
            clients[name] = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=600)
            call_round(clients[name], 0)  # warm-up
        text_round(clients["fireside"], 0)
        for round_no in range(1, args.rounds + 1):
            order = list(clients) if round_no % 2 else list(reversed(clients))
            for name in order:
                calls[name].append(call_round(clients[name], round_no))
            texts.append(text_round(clients["fireside"], round_no + 1000))
    finally:
        for process, _port in servers.values():
            process.terminate()
            process.wait(30)
    print(f"\nTool calling, {model.name}, {threads} threads, {args.rounds} rounds (medians)\n")
    print(f"{'server':<14}{'first call chunk s':>20}{'reply s':>10}{'valid calls':>13}")
    firsts: dict[str, float] = {}
    for name, rows in calls.items():
        seen = [r[0] for r in rows if r[0] is not None]
        if seen:
            firsts[name] = statistics.median(seen)
        shown = f"{firsts[name]:.3f}" if name in firsts else "no call"
        whole = statistics.median(r[1] for r in rows)
        print(f"{name:<14}{shown:>20}{whole:>10.3f}{sum(r[2] for r in rows):>9}/{len(rows)}")
    print(f"{'fireside, first token without tools':<44}{statistics.median(texts):>8.3f} s")
    if "llama-server" in firsts and "fireside" in firsts:
        ratio = firsts["llama-server"] / firsts["fireside"]
        print(f"\nspeed ratio, fireside over llama-server (first call chunk): {ratio:.2f}x")
    elif "llama-server" in calls:
        print("\nllama-server answered without a tool call (tool_choice ignored): no ratio to give.")


if __name__ == "__main__":
    main()
