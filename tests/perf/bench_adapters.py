"""LoRA adapters: the time to switch adapters between two replies (no reload of the base model), and
tokens per second with an adapter against without.

What it measures
    The starter model with a test adapter (random rank-8 weights for q and v in every layer, written
    with the gguf package, tests/lora_writer.py) on Fireside's engine:

    * switch: applying the adapter set of the next reply (llama_set_adapters_lora: the base model
      stays loaded), alternating adapter / none, --switches times: median and worst;
    * tokens/s: greedy replies of --tokens tokens, with the adapter (scale 1) and without,
      interleaved, --rounds each: medians and their ratio.

Run
    .venv/bin/python tests/perf/bench_adapters.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.inference.adapters import adapter_set  # noqa: E402
from app.core.inference.engine import Engine  # noqa: E402
from app.core.inference.options import LoadOptions, default_threads  # noqa: E402
from app.core.models import starter  # noqa: E402
from app.core.values.sampling import SamplingParams  # noqa: E402
from tests.lora_writer import write_lora  # noqa: E402

QUESTION = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]


def main() -> None:
    layout = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=layout)
    parser.add_argument("--switches", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    model = starter.cached_path()
    engine = Engine()
    engine.load(model, LoadOptions(context_length=2048, n_threads=args.threads, n_parallel=1))
    with tempfile.TemporaryDirectory() as folder:
        lora = write_lora(Path(folder) / "bench-lora.gguf", model)
        chosen = adapter_set([(lora, 1.0)])
        adapters = engine._adapters
        ctx = engine._ctx
        assert adapters is not None
        adapters.load(chosen)
        switches = []
        for i in range(args.switches):
            started = time.perf_counter()
            adapters.apply(ctx, chosen if i % 2 == 0 else ())
            switches.append(time.perf_counter() - started)
        params = SamplingParams(temperature=0.0, max_tokens=args.tokens, context_length=2048)
        rates: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(args.rounds):
            for name, use in (("without", ()), ("with", [(lora, 1.0)])):
                generation = engine.start(QUESTION, params, lambda _t: None, threading.Event(), adapters=use)
                while generation.stop is None:
                    engine.step([generation])
                rates[name].append(engine.finish(generation).tokens_per_s)
    engine.unload()
    median, worst = statistics.median(switches) * 1000, max(switches) * 1000
    print(f"llama.cpp via llama-cpp-python · {args.threads} threads · starter model + rank-8 test adapter\n")
    print(f"adapter switch (no reload): median {median:.2f} ms, worst {worst:.2f} ms over {args.switches}")
    print("  (target: under 50 ms)")
    without, with_ = statistics.median(rates["without"]), statistics.median(rates["with"])
    print(f"tokens/s without an adapter: {without:.1f} · with it: {with_:.1f} · ratio {with_ / without:.2f}x")


if __name__ == "__main__":
    main()
