"""Vision: time from Send with one image to the first token, against llama-cpp-python's own vision
path in the same run.

What it measures
    The starter model with a test projector (random weights, a CLIP encoder and an MLP projector of
    the starter's width written with the gguf package, --image-size / --patch: 336 / 14 gives 576
    image tokens, as LLaVA-1.5 does). A 640 x 480 PNG is asked about, --repeats times each:

    * fireside, image: Fireside's inference thread, from `generate` (Send) to the first streamed
      chunk, a fresh image each time (decode and scale, mtmd tokenize, encode, decode into the
      sequence, first token);
    * fireside, text: the same question without the image (what the image adds);
    * fireside, follow-up: the next question of the same conversation (the image is in the KV
      cache and is not read again);
    * reference: llama-cpp-python's Llava15ChatHandler (its own mtmd path) on the same model and
      projector, from create_chat_completion(stream=True) to its first chunk.

    The summary gives medians and Fireside's image TTFT as a ratio to the reference's.

Run
    .venv/bin/python tests/perf/bench_vision.py
    .venv/bin/python tests/perf/bench_vision.py --repeats 5 --image-size 224 --patch 14
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from app.core.inference.events import Chunk, Event, Loaded, LoadFailed, ReplyDone, ReplyFailed  # noqa: E402
from app.core.inference.options import LoadOptions, default_threads  # noqa: E402
from app.core.inference.thread import InferenceThread  # noqa: E402
from app.core.media.images import ImageSource, image_part  # noqa: E402
from app.core.models import starter  # noqa: E402
from app.core.system.binding import llama_cpp_version  # noqa: E402
from app.core.values.sampling import SamplingParams  # noqa: E402
from tests.projector_writer import write_projector  # noqa: E402

QUESTION = "Describe this picture in one sentence."
FOLLOW_UP = "What colour stands out most?"


def picture(seed: int) -> bytes:
    """A 640 x 480 PNG, different for every seed."""
    image = Image.effect_noise((640, 480), 40 + seed).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class Waiter:
    """Collects one request's first chunk time and its end."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.first: dict[int, float] = {}
        self.done: dict[int, Event] = {}
        self.loaded: Event | None = None

    def __call__(self, event: Event) -> None:
        with self.lock:
            if isinstance(event, Chunk):
                self.first.setdefault(event.request_id, time.perf_counter())
            elif isinstance(event, ReplyDone | ReplyFailed):
                self.done[event.request_id] = event
            elif isinstance(event, Loaded | LoadFailed):
                self.loaded = event
            self.lock.notify_all()

    def wait(self, predicate: Any, timeout: float = 300) -> None:
        with self.lock:
            assert self.lock.wait_for(predicate, timeout), "timed out"


def fireside(model: Path, projector: Path, repeats: int, threads: int) -> dict[str, list[float]]:
    waiter = Waiter()
    worker = InferenceThread(waiter, coalesce_s=0.0)
    worker.start()
    worker.load(model, LoadOptions(context_length=4096, n_threads=threads, n_parallel=1, projector=projector))
    waiter.wait(lambda: waiter.loaded is not None)
    assert isinstance(waiter.loaded, Loaded), waiter.loaded
    params = SamplingParams(temperature=0.0, max_tokens=8, context_length=4096)
    times: dict[str, list[float]] = {"image": [], "text": [], "follow-up": []}

    def ttft(messages: list[dict[str, Any]], key: str | None) -> tuple[float, str]:
        sent = time.perf_counter()
        rid = worker.generate(messages, params, cache_key=key)
        waiter.wait(lambda: rid in waiter.done)
        done = waiter.done[rid]
        assert isinstance(done, ReplyDone), done
        return waiter.first[rid] - sent, done.text

    for i in range(repeats):
        source = ImageSource(picture(i), f"picture{i}.png")
        asked = [{"role": "user", "content": [image_part(source), {"type": "text", "text": QUESTION}]}]
        seconds, answer = ttft(asked, f"bench:{i}")
        times["image"].append(seconds)
        follow = [*asked, {"role": "assistant", "content": answer}, {"role": "user", "content": FOLLOW_UP}]
        times["follow-up"].append(ttft(follow, f"bench:{i}")[0])
        times["text"].append(ttft([{"role": "user", "content": f"{QUESTION} ({i})"}], f"text:{i}")[0])
    worker.shutdown()
    return times


def reference(model: Path, projector: Path, repeats: int, threads: int) -> list[float]:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Llava15ChatHandler

    handler = Llava15ChatHandler(clip_model_path=str(projector), verbose=False)
    llm = Llama(str(model), chat_handler=handler, n_ctx=4096, n_threads=threads, verbose=False)
    times = []
    for i in range(repeats):
        url = "data:image/png;base64," + base64.b64encode(picture(100 + i)).decode()
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": QUESTION},
                ],
            }
        ]
        sent = time.perf_counter()
        stream = llm.create_chat_completion(messages=messages, max_tokens=8, temperature=0.0, stream=True)
        for chunk in stream:
            if chunk["choices"][0]["delta"].get("content"):
                times.append(time.perf_counter() - sent)
                break
        for _ in stream:
            pass
    llm.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--image-size", type=int, default=336)
    parser.add_argument("--patch", type=int, default=14)
    args = parser.parse_args()
    model = starter.cached_path()
    with tempfile.TemporaryDirectory() as folder:
        projector = Path(folder) / "mmproj-bench-f16.gguf"
        tokens = write_projector(projector, image_size=args.image_size, patch_size=args.patch)
        ours = fireside(model, projector, args.repeats, args.threads)
        theirs = reference(model, projector, args.repeats, args.threads)
    print(f"llama-cpp-python {llama_cpp_version()} · {args.threads} threads · starter model + test projector")
    print(f"image {args.image_size}px / patch {args.patch}: {tokens} image tokens · {args.repeats} repeats\n")
    print(f"{'':30} {'median TTFT':>12} {'min':>8} {'max':>8}")
    rows = {f"fireside, {k}": v for k, v in ours.items()} | {"reference (llama-cpp-python)": theirs}
    for name, values in rows.items():
        middle, low, high = (statistics.median(values) * 1000, min(values) * 1000, max(values) * 1000)
        print(f"{name:30} {middle:10.0f} ms {low:6.0f} ms {high:6.0f} ms")
    ratio = statistics.median(ours["image"]) / statistics.median(theirs)
    added = statistics.median(ours["image"]) - statistics.median(ours["text"])
    print(f"\nfireside image TTFT / reference: {ratio:.2f}x · the image adds {added * 1000:.0f} ms")
    follow = statistics.median(ours["follow-up"]) * 1000
    print(f"follow-up on the same image: {follow:.0f} ms (the image is not read again)")


if __name__ == "__main__":
    main()
