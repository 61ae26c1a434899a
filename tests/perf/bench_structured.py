"""Structured output's cost: tokens/s with a JSON-schema grammar, with JSON mode, and without.

What it measures
    The inference thread (as the API server drives it) with the starter model generates replies to
    one prompt that asks for JSON, `--rounds` times each way, interleaved: free text, JSON mode
    (`response_format: json_object`'s grammar) and a JSON schema (an array of objects with bounded
    strings and an integer). Each reply's tokens/s is llama.cpp's decode speed over its reply (the
    engine's own measure, without the prompt); the table shows the medians and the ratio to free
    text (target: >= 0.8x), and how often the grammar refused the freely drawn token.

Run
    .venv/bin/python tests/perf/bench_structured.py [--rounds 5] [--tokens 160]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.api.structured import ResponseFormat  # noqa: E402
from app.core.inference.events import Event, Loaded, LoadFailed, ReplyDone, ReplyFailed  # noqa: E402
from app.core.inference.options import LoadOptions  # noqa: E402
from app.core.inference.thread import InferenceThread  # noqa: E402
from app.core.models import starter  # noqa: E402
from app.core.values.sampling import SamplingParams  # noqa: E402

PROMPT = [
    {
        "role": "user",
        "content": "List twenty animals as JSON: an array of objects, each with its name, where it lives "
        "and how many legs it has.",
    }
]
SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 30},
            "habitat": {"type": "string", "maxLength": 40},
            "legs": {"type": "integer"},
        },
        "required": ["name", "habitat", "legs"],
        "additionalProperties": False,
    },
}
CASES = {
    "free text": None,
    "JSON mode": ResponseFormat(type="json_object").grammar(),
    "JSON schema": ResponseFormat.model_validate(
        {"type": "json_schema", "json_schema": {"name": "animals", "schema": SCHEMA}}
    ).grammar(),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=160, help="max tokens per reply")
    args = parser.parse_args()
    done = threading.Event()
    events: list[Event] = []

    def sink(event: Event) -> None:
        if isinstance(event, Loaded | LoadFailed | ReplyDone | ReplyFailed):
            events.append(event)
            done.set()

    worker = InferenceThread(sink)
    worker.start()
    worker.load(starter.fetch_to_cache(), LoadOptions(context_length=2048))
    assert done.wait(120) and isinstance(events[-1], Loaded), events
    rates: dict[str, list[float]] = {name: [] for name in CASES}
    tokens: dict[str, list[int]] = {name: [] for name in CASES}
    params = SamplingParams(temperature=0.7, max_tokens=args.tokens, context_length=2048)
    for round_ in range(args.rounds):
        order = list(CASES) if round_ % 2 == 0 else list(CASES)[::-1]
        for name in order:
            done.clear()
            worker.generate(PROMPT, params.with_changes(seed=round_ + 1), grammar=CASES[name])
            assert done.wait(300)
            event = events[-1]
            assert isinstance(event, ReplyDone), event
            rates[name].append(event.stats.tokens_per_s)
            tokens[name].append(event.stats.completion_tokens)
    worker.shutdown()
    free = statistics.median(rates["free text"])
    print(f"{'case':<14}{'tok/s (median)':>16}{'tokens (median)':>17}{'vs free':>10}")
    for name in CASES:
        rate = statistics.median(rates[name])
        print(f"{name:<14}{rate:>16.1f}{statistics.median(tokens[name]):>17.0f}{rate / free:>9.2f}x")
    worst = min(statistics.median(rates[n]) for n in CASES if n != "free text") / free
    print(json.dumps({"rates": rates, "tokens": tokens}))
    print(f"target: grammar >= 0.8x free text: {'met' if worst >= 0.8 else 'MISSED'} ({worst:.2f}x)")
    return 0 if worst >= 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
