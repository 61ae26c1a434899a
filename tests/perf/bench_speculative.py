"""Speculative decoding: tokens per second with guesses against without, on prompts whose reply
repeats the prompt with a small change and on free prompts, with n-gram lookup and with the starter
drafting for its F16 copy; Fireside's engine against llama.cpp's own server with the same settings.

What it measures
    Greedy replies of --tokens tokens, each read from an empty sequence, rounds interleaved:

    * Fireside's engine, in this process: the starter (Q4_1) without guesses and with n-gram lookup;
      its F16 copy (written with tests/f16_writer.py) without, with n-gram lookup, and with the
      starter as draft model (Auto);
    * llama.cpp's `llama-server` built from the vendored llama.cpp (tests/perf/llama_tools.py), one
      process per setting: --spec-type none; ngram-simple with a 3-token lookup and 8-token drafts
      (Fireside looks up 4, 3 then 2 tokens and drafts up to 8); draft-simple with the starter,
      --spec-draft-n-max 8, --spec-draft-p-min 0.75 (Fireside's P_MIN). Its own timings give the
      decode rate and the drafted / accepted counts.

    For each model, kind of prompt and setting: the median decode rate (tokens after the first one
    over the time after it), the median ratio of paired runs (one prompt, one round) to the same
    model without guesses, the tokens drafted and accepted, and whether every reply is the text
    written without guesses.

Run
    .venv/bin/python tests/perf/llama_tools.py llama-server      # once: build llama-server (~10 min)
    .venv/bin/python tests/perf/bench_speculative.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.inference.engine import Engine  # noqa: E402
from app.core.inference.options import LoadOptions, default_threads  # noqa: E402
from app.core.models import starter  # noqa: E402
from app.core.values.sampling import SamplingParams  # noqa: E402
from app.core.values.speculation import SpeculationMode  # noqa: E402
from tests.edit_prompts import RECORD as EDITED  # noqa: E402
from tests.f16_writer import write_f16_copy  # noqa: E402
from tests.perf.bench_batching import free_port  # noqa: E402
from tests.perf.llama_tools import cached_tool  # noqa: E402

RECORD = {**EDITED, "known_for": "the first computer program"}
PRETTY = json.dumps(RECORD, indent=2)
#: Replies that repeat the prompt with a small change (what n-gram lookup is for).
REPEAT = {
    "json-died": f'Print this JSON again with "died" set to 1853:\n```json\n{PRETTY}\n```',
    "json-country": f"Print this JSON again with the country changed to Scotland:\n```json\n{PRETTY}\n```",
    "json-spouse": f'Print this JSON again with "spouse" set to "William King-Noel":\n```json\n{PRETTY}\n```',
}
#: Replies of new words.
FREE = {
    "story": "Write a short story about a lighthouse keeper.",
    "rainbow": "Explain how a rainbow forms.",
    "bread": "Give me a recipe for bread, step by step.",
}
KINDS = {"repeat": REPEAT, "free": FREE}


@dataclass
class Cell:
    """The runs of one model, kind of prompt and setting."""

    rates: list[float] = field(default_factory=list)
    #: The same runs by (prompt, round): a ratio pairs each run with the base's of that prompt and round.
    paired: dict[tuple[str, int], float] = field(default_factory=dict)
    drafted: int = 0
    accepted: int = 0
    texts: dict[str, str] = field(default_factory=dict)  # by prompt (the last round's)


def engine_runs(
    model: Path, draft: Path | None, settings: list[str], rounds: int, tokens: int, threads: int
) -> dict[tuple[str, str], Cell]:
    """Fireside's engine: (kind, setting) -> runs."""
    engine = Engine()
    engine.load(model, LoadOptions(context_length=1024, n_threads=threads, n_parallel=1))
    cells: dict[tuple[str, str], Cell] = defaultdict(Cell)
    params = SamplingParams(temperature=0.0, max_tokens=tokens, context_length=1024)
    count = 0
    try:
        for round_no in range(rounds):
            for kind, prompts in KINDS.items():
                for name, prompt in prompts.items():
                    for setting in settings:
                        engine.speculation = SpeculationMode(setting if setting != "draft" else "auto")
                        engine.set_draft_model(draft if setting == "draft" else None)
                        parts: list[str] = []
                        count += 1
                        generation = engine.start(
                            [{"role": "user", "content": prompt}], params, parts.append,
                            threading.Event(), cache_key=f"bench-{count}",
                        )  # fmt: skip
                        while generation.stop is None:
                            engine.step((generation,))
                        stats = engine.finish(generation)
                        cell = cells[(kind, setting)]
                        cell.rates.append(stats.tokens_per_s)
                        cell.paired[(name, round_no)] = stats.tokens_per_s
                        cell.drafted += stats.drafted
                        cell.accepted += stats.accepted
                        cell.texts[name] = "".join(parts)
    finally:
        engine.set_draft_model(None)
        engine.unload()
    return dict(cells)


def server_runs(
    exe: Path, model: Path, extra: list[str], rounds: int, tokens: int, threads: int
) -> dict[str, Cell]:
    """llama-server with `extra` flags: kind -> runs (its own timings)."""
    port = free_port()
    command = [
        str(exe), "-m", str(model), "--port", str(port), "-c", "1024", "-np", "1", "-t", str(threads),
        "-tb", str(threads), "--no-webui", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells: dict[str, Cell] = defaultdict(Cell)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"llama-server did not start: {' '.join(command)}")
            time.sleep(0.2)
        for round_no in range(rounds):
            for kind, prompts in KINDS.items():
                for name, prompt in prompts.items():
                    body = {
                        "messages": [{"role": "user", "content": prompt}], "max_tokens": tokens,
                        "temperature": 0, "cache_prompt": False,
                    }  # fmt: skip
                    reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=300)
                    reply.raise_for_status()
                    data = reply.json()
                    timings = data.get("timings", {})
                    cell = cells[kind]
                    cell.rates.append(float(timings.get("predicted_per_second", 0.0)))
                    cell.paired[(name, round_no)] = cell.rates[-1]
                    cell.drafted += int(timings.get("draft_n", 0))
                    cell.accepted += int(timings.get("draft_n_accepted", 0))
                    cell.texts[name] = data["choices"][0]["message"]["content"]
    finally:
        process.terminate()
        process.wait(30)
    return dict(cells)


def row(label: str, cell: Cell, base: Cell | None) -> str:
    """One line of the table."""
    rate = statistics.median(cell.rates) if cell.rates else 0.0
    # The median of the ratios of paired runs (one prompt, one round): prompts differ in speed.
    pairs = [cell.paired[key] / base.paired[key] for key in cell.paired if base and base.paired.get(key)]
    ratio = f"{statistics.median(pairs):.2f}x" if pairs else "1.00x"
    accepted = f"{cell.accepted}/{cell.drafted} ({cell.accepted / cell.drafted:.0%})" if cell.drafted else "-"
    same = (
        "" if base is None or cell is base else ("same text" if cell.texts == base.texts else "TEXT DIFFERS")
    )
    return f"  {label:<44} {rate:7.1f} tok/s  {ratio:>6}  accepted {accepted:<16} {same}"


def main() -> None:
    layout = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=layout)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--llama-server", type=Path, default=None)
    parser.add_argument("--no-server", action="store_true", help="Fireside's engine only")
    args = parser.parse_args()
    model = starter.cached_path()
    exe = None if args.no_server else (args.llama_server or cached_tool("llama-server"))
    with tempfile.TemporaryDirectory() as folder:
        f16 = write_f16_copy(Path(folder) / "SmolLM2-135M-Instruct.F16.gguf", model)
        what = f"{args.tokens} tokens, {args.rounds} rounds, {args.threads} threads"
        print(f"Speculative decoding, greedy, {what}")
        print(f"  models: {model.name} and its F16 copy ({f16.stat().st_size / 1e6:.0f} MB)\n")
        ours = {
            "Q4_1": engine_runs(model, None, ["off", "ngram"], args.rounds, args.tokens, args.threads),
            "F16": engine_runs(f16, model, ["off", "ngram", "draft"], args.rounds, args.tokens, args.threads),
        }
        theirs: dict[str, dict[str, dict[str, Cell]]] = {}
        if exe is not None:
            ngram = [
                "--spec-type",
                "ngram-simple",
                "--spec-ngram-simple-size-n",
                "3",
                "--spec-ngram-simple-size-m",
                "8",
            ]
            drafting = ["--spec-type", "draft-simple", "-md", str(model), "--spec-draft-n-max", "8",
                        "--spec-draft-p-min", "0.75"]  # fmt: skip
            contenders = (
                ("Q4_1", model, {"off": [], "ngram": ngram}),
                ("F16", f16, {"off": [], "ngram": ngram, "draft": drafting}),
            )
            for name, target, settings in contenders:
                theirs[name] = {
                    setting: server_runs(exe, target, flags, args.rounds, args.tokens, args.threads)
                    for setting, flags in settings.items()
                }
        labels = {"off": "no guesses", "ngram": "n-gram lookup", "draft": "starter drafting"}
        for name, cells in ours.items():
            for kind in KINDS:
                print(f"{name}, {kind} prompts ({', '.join(KINDS[kind])})")
                base = cells[(kind, "off")]
                for setting in ("off", "ngram", "draft"):
                    if (kind, setting) in cells:
                        print(row(f"Fireside, {labels[setting]}", cells[(kind, setting)], base))
                if name in theirs:
                    server_base = theirs[name]["off"][kind]
                    for setting, kinds in theirs[name].items():
                        print(row(f"llama-server, {labels[setting]}", kinds[kind], server_base))
                print()
        if exe is None and not args.no_server:
            print("llama-server not built: .venv/bin/python tests/perf/llama_tools.py llama-server")


if __name__ == "__main__":
    main()
