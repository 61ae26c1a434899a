"""Follow-up latency: time to first token of the 21st message of a chat, KV cache warm vs cold.

What it measures
    A 20-turn conversation is built by really chatting with Fireside's `Engine` (greedy replies of at
    most --reply-tokens tokens). Then, --repeats times, alternately:

    * follow-up: the 21st user message goes to that engine, whose KV cache still holds the whole
      conversation (it keeps the cache between turns and evaluates only what is new);
    * cold: a freshly loaded engine (new context, nothing cached) gets the same 21 messages, so it
      evaluates the whole conversation as one prompt.

    TTFT is `ReplyStats.ttft_s`: from `stream_chat()` being called (template, tokenizing, prompt
    evaluation) to the first token sampled. The table shows each repetition with the prompt's tokens
    and how many of them were evaluated; the summary gives the medians and cold / follow-up (target
    >= 5x).

How it measures
    Before each follow-up measurement the engine's cache is put back to where it was after turn 20:
    turn 20 is asked again (its prompt is cached up to the last token) and regenerates the same greedy
    reply, exactly as the original turn did. The 21st reply is cut at one token (only its TTFT counts).

Run
    .venv/bin/python tests/perf/bench_followup.py               # 7 repetitions
    .venv/bin/python tests/perf/bench_followup.py --repeats 5 --threads 2 --flash-attn on
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.inference.engine import Engine  # noqa: E402
from app.core.inference.options import LoadOptions, default_threads  # noqa: E402
from app.core.models import starter  # noqa: E402
from app.core.system.binding import llama_cpp_version  # noqa: E402
from app.core.values.replies import ReplyStats  # noqa: E402
from app.core.values.sampling import SamplingParams  # noqa: E402

TARGET_RATIO = 5.0
QUESTIONS = [
    "Hi! Can you help me plan a small vegetable garden?",
    "Which vegetables are easiest for a beginner?",
    "How much sun do tomatoes need?",
    "What soil should I use for raised beds?",
    "How often should I water them in summer?",
    "Is it better to water in the morning or the evening?",
    "What can I plant next to tomatoes?",
    "How do I keep slugs away without chemicals?",
    "When should I plant garlic?",
    "Can I grow carrots in containers?",
    "What is a good way to make compost at home?",
    "How long does compost take to be ready?",
    "Should I use mulch? Which kind?",
    "How do I know when zucchini is ready to pick?",
    "What herbs grow well together?",
    "How do I save seeds from my tomatoes?",
    "What should I do with the garden in autumn?",
    "Which plants can survive a light frost?",
    "How do I protect the beds over winter?",
    "Can you summarise a simple yearly plan for me?",
    "Thanks! One last thing: what is the single most important tip for a first garden?",
]


def load(model: Path, args: argparse.Namespace) -> Engine:
    engine = Engine()
    engine.load(model, LoadOptions(args.ctx, n_threads=args.threads, flash_attn=args.flash_attn))
    return engine


def reply(engine: Engine, messages: list[dict[str, str]], params: SamplingParams) -> tuple[str, ReplyStats]:
    parts: list[str] = []
    stats = engine.stream_chat(messages, params, parts.append, threading.Event())
    return "".join(parts), stats


def cell(stats: ReplyStats, width: int) -> str:
    """TTFT, prompt tokens and tokens evaluated, as table cells."""
    ms = f"{stats.ttft_s * 1000:.1f} ms"
    return f"{ms:>{width + 3}} {stats.prompt_tokens:>7} {stats.prompt_tokens_evaluated:>9}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="measurements of each kind (>= 5; default 7)")
    parser.add_argument("--turns", type=int, default=20, help="turns before the measured one (default 20)")
    parser.add_argument("--reply-tokens", type=int, default=40, help="max tokens per reply (default 40)")
    parser.add_argument("--threads", type=int, default=default_threads(), help="default: Fireside's choice")
    parser.add_argument("--ctx", type=int, default=4096, help="context length (default 4096)")
    parser.add_argument(
        "--flash-attn", choices=["auto", "on", "off"], default="auto", help="default: auto, as the app"
    )
    parser.add_argument("--model", type=Path, help="GGUF model (default: the cached starter model)")
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")
    if not 1 <= args.turns < len(QUESTIONS):
        parser.error(f"--turns must be between 1 and {len(QUESTIONS) - 1}")
    args.flash_attn = {"auto": None, "on": True, "off": False}[args.flash_attn]
    model = args.model or starter.fetch_to_cache()
    greedy = SamplingParams(temperature=0.0, max_tokens=args.reply_tokens, seed=1, context_length=args.ctx)
    first_token = greedy.with_changes(max_tokens=1)

    with open("/proc/cpuinfo", encoding="utf-8") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    fa = {None: "auto", True: "on", False: "off"}[args.flash_attn]
    print(f"machine: {cpu}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"llama-cpp-python {llama_cpp_version()} | model {model.name} | threads {args.threads} | "
          f"flash attention {fa} | context {args.ctx}")  # fmt: skip

    warm = load(model, args)
    messages: list[dict[str, str]] = []
    started = time.perf_counter()
    for question in QUESTIONS[: args.turns]:
        messages.append({"role": "user", "content": question})
        text, _ = reply(warm, messages, greedy)
        messages.append({"role": "assistant", "content": text})
    built_s = time.perf_counter() - started
    turn_n = messages[:-1]  # ends with the last built turn's user message
    follow = [*messages, {"role": "user", "content": QUESTIONS[args.turns]}]
    print(
        f"{args.turns}-turn conversation built in {built_s:.1f} s (greedy replies, <= {args.reply_tokens} "
        f"tokens each); measured: turn {args.turns + 1}, {warm.count_tokens(follow)} tokens in all"
    )

    rows: list[tuple[ReplyStats, ReplyStats]] = []
    print(f"\n{'rep':>3}  {'follow-up TTFT':>14} {'prompt':>7} {'evaluated':>9}   "
          f"{'cold TTFT':>10} {'prompt':>7} {'evaluated':>9}")  # fmt: skip
    for i in range(args.repeats):
        reply(warm, turn_n, greedy)  # back to the cache state right after the last built turn
        _, hot = reply(warm, follow, first_token)
        cold_engine = load(model, args)
        try:
            _, cold = reply(cold_engine, follow, first_token)
        finally:
            cold_engine.unload()
        rows.append((hot, cold))
        print(f"{i + 1:>3}  {cell(hot, 11)}   {cell(cold, 7)}")
    warm.unload()

    hot_med = statistics.median(h.ttft_s for h, _ in rows)
    cold_med = statistics.median(c.ttft_s for _, c in rows)
    ratio = cold_med / hot_med
    print(f"\nmedian TTFT: follow-up {hot_med * 1000:.1f} ms, cold {cold_med * 1000:.1f} ms")
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"cold / follow-up = {ratio:.1f}x (target >= {TARGET_RATIO:g}x: {verdict})")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
