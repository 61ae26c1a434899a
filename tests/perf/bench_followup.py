"""Follow-up latency: time to first token of the 21st message of a chat, from every kind of cache.

What it measures
    A 20-turn conversation is built by really chatting with Fireside's `Engine` (greedy replies of at
    most --reply-tokens tokens, --parallel sequences, the conversation's disk cache in a temporary
    folder). Then, --repeats times, the 21st user message is sent:

    * warm: straight away; its sequence still holds the whole conversation;
    * switched: after another conversation was answered (as when the user looks at another chat
      and comes back; it took another sequence, so the first stays in memory);
    * evicted: after --parallel other conversations were answered, so the first one's sequence was
      given away (saved to the disk cache first) and comes back from disk;
    * restart: by a freshly loaded engine on the same disk cache (as after quitting and reopening
      Fireside): the conversation's state comes back from disk;
    * cold: by a freshly loaded engine without a disk cache: the whole conversation is read.

    TTFT is `ReplyStats.ttft_s`: from the reply's start (template, tokenizing, choosing a sequence,
    reading a state from disk, prompt evaluation) to the first token sampled. The summary gives the
    medians and their ratios to warm (targets: switched <= 1.5x, restart <= 2x, cold >= 5x).

How it measures
    Before each round the conversation's cache is put back to where it was after turn 20: turn 20 is
    asked again (its prompt is cached up to the last token) and regenerates the same greedy reply,
    exactly as the original turn did. Measured replies are cut at one token (only TTFT counts).

Run
    .venv/bin/python tests/perf/bench_followup.py               # 7 repetitions
    .venv/bin/python tests/perf/bench_followup.py --repeats 5 --threads 2 --flash-attn on
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.inference.engine import Engine  # noqa: E402
from app.core.inference.kv_disk import KvDiskCache  # noqa: E402
from app.core.inference.options import LoadOptions, default_threads  # noqa: E402
from app.core.models import starter  # noqa: E402
from app.core.system.binding import llama_cpp_version  # noqa: E402
from app.core.values.replies import ReplyStats  # noqa: E402
from app.core.values.sampling import SamplingParams  # noqa: E402

#: Targets, as ratios to the warm follow-up's TTFT (issues 3 and 17).
TARGET_COLD = 5.0
TARGET_SWITCHED = 1.5
TARGET_RESTART = 2.0
#: The conversation measured, and the others that come between (their cache keys).
KEY = "conversation:bench"
OTHER = "What is the capital of France? Answer in one word."
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


def load(model: Path, args: argparse.Namespace, cache: Path | None = None) -> Engine:
    """An engine on `model` (with the disk cache in `cache`, when given)."""
    engine = Engine(kv_cache=KvDiskCache(cache, 2_000_000_000) if cache is not None else None)
    options = LoadOptions(
        args.ctx, n_threads=args.threads, flash_attn=args.flash_attn, n_parallel=args.parallel
    )
    engine.load(model, options)
    return engine


def reply(
    engine: Engine, messages: list[dict[str, str]], params: SamplingParams, key: str | None = KEY
) -> tuple[str, ReplyStats]:
    """One reply, generated alone, in the sequence of conversation `key`."""
    parts: list[str] = []
    generation = engine.start(messages, params, parts.append, threading.Event(), cache_key=key)
    while generation.stop is None:
        engine.step((generation,))
    return "".join(parts), engine.finish(generation)


def cell(stats: ReplyStats) -> str:
    """TTFT and the prompt tokens read (of all), as a table cell."""
    ms = f"{stats.ttft_s * 1000:.1f} ms"
    read = f"{stats.prompt_tokens_evaluated}/{stats.prompt_tokens}"
    return f"{ms:>10} {read:>9}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="measurements of each kind (>= 5; default 7)")
    parser.add_argument("--turns", type=int, default=20, help="turns before the measured one (default 20)")
    parser.add_argument("--reply-tokens", type=int, default=40, help="max tokens per reply (default 40)")
    parser.add_argument("--threads", type=int, default=default_threads(), help="default: Fireside's choice")
    parser.add_argument("--ctx", type=int, default=4096, help="context length (default 4096)")
    parser.add_argument("--parallel", type=int, default=4, help="sequences (default 4, Auto's usual)")
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

    with tempfile.TemporaryDirectory(prefix="fireside-followup-") as folder:
        cache = Path(folder)
        warm = load(model, args, cache)
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
            f"{args.turns}-turn conversation built in {built_s:.1f} s (greedy replies, <= "
            f"{args.reply_tokens} tokens each; {args.parallel} sequences); measured: turn "
            f"{args.turns + 1}, {warm.count_tokens(follow)} tokens in all"
        )
        kinds = ("warm", "switched", "evicted", "restart", "cold")
        rows: dict[str, list[ReplyStats]] = {kind: [] for kind in kinds}
        print("\n" + f"{'rep':>3}" + "".join(f"  {kind + ' TTFT':>10} {'read':>9}" for kind in kinds))
        for i in range(args.repeats):
            reply(warm, turn_n, greedy)  # back to the cache state right after the last built turn
            rows["warm"].append(reply(warm, follow, first_token)[1])
            reply(warm, turn_n, greedy)
            reply(warm, [{"role": "user", "content": OTHER}], first_token, key="conversation:other")
            rows["switched"].append(reply(warm, follow, first_token)[1])
            reply(warm, turn_n, greedy)
            for n in range(args.parallel):  # every sequence goes to another conversation
                other = [{"role": "user", "content": f"{OTHER} ({n})"}]
                reply(warm, other, first_token, key=f"conversation:other-{n}")
            rows["evicted"].append(reply(warm, follow, first_token)[1])
            restarted = load(model, args, cache)  # reads what the evicted sequence left on disk
            try:
                rows["restart"].append(reply(restarted, follow, first_token)[1])
            finally:
                restarted.unload()
            cold_engine = load(model, args)
            try:
                rows["cold"].append(reply(cold_engine, follow, first_token, key=None)[1])
            finally:
                cold_engine.unload()
            print(f"{i + 1:>3}" + "".join(f"  {cell(rows[kind][-1])}" for kind in kinds))
        warm.unload()

    med = {kind: statistics.median(r.ttft_s for r in found) for kind, found in rows.items()}
    print("\nmedian TTFT: " + ", ".join(f"{kind} {med[kind] * 1000:.1f} ms" for kind in kinds))
    for kind, target, better in (
        ("switched", TARGET_SWITCHED, "<="),
        ("evicted", None, ""),
        ("restart", TARGET_RESTART, "<="),
        ("cold", TARGET_COLD, ">="),
    ):
        ratio = med[kind] / med["warm"]
        line = f"{kind} / warm = {ratio:.2f}x"
        if target is not None:
            met = ratio <= target if better == "<=" else ratio >= target
            line += f" (target {better} {target:g}x: {'met' if met else 'NOT met'})"
        print(line)
    restored = [r.history_from_cache for r in rows["restart"]]
    print(f"history from cache after a restart: {min(restored):,}-{max(restored):,} tokens")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
