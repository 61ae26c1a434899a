"""Documents: indexing speed for a 300-page PDF, retrieval latency at 10,000 passages, and the GUI's
longest gap while a document is indexed.

What it measures
    * reading: a 300-page PDF (real prose, tests/documents_text.py, 52 lines a page) read page by
      page, cut into passages and kept in a conversation database with FTS5: pages per second, with
      pypdf's text extraction of the same file as the reference (the pure-Python reader);
    * embedding: its first --embed passages embedded with the starter model (mean pooling) on the
      engine, in Fireside's batches: passages per second (and what the whole book would take);
    * retrieval: a question against 10,000 passages (FTS5 bm25 + cosine over 576-wide vectors,
      fused): milliseconds per question, median and worst of --questions (target < 50 ms);
    * GUI gap: the real window indexes the 300-page PDF (attach: read and checked; send a question:
      cut, kept, searched; then --gui-seconds of background embedding) while a 5 ms timer runs on
      the GUI thread: its longest gap (target < 50 ms).

Run
    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/perf/bench_documents.py
    .venv/bin/python tests/perf/bench_documents.py --pages 100 --questions 50 --no-gui
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from app.core.chat.indexing import EMBED_BATCH, index_document  # noqa: E402
from app.core.chat.retrieval import Retriever  # noqa: E402
from app.core.chat.store import Store  # noqa: E402
from app.core.inference.engine import Engine  # noqa: E402
from app.core.inference.options import LoadOptions, default_threads  # noqa: E402
from app.core.media.chunking import Passage  # noqa: E402
from app.core.models import starter  # noqa: E402
from tests.documents_text import PAGES, QUESTIONS  # noqa: E402
from tests.pdf_writer import write_pdf  # noqa: E402


def long_pages(count: int) -> list[str]:
    """`count` pages of prose (the ten subjects, each page a full one)."""
    return [" ".join([PAGES[i % len(PAGES)]] * 4) for i in range(count)]


def reading(folder: Path, pages: int) -> tuple[float, float, int, Path]:
    pdf = write_pdf(folder / "book.pdf", long_pages(pages))
    store = Store(folder / "read.db")
    cid = store.create_conversation(title="bench")
    started = time.perf_counter()
    attachment = store.attachment_folder.add_document(pdf)
    indexed = index_document(store, store.attachment_folder, cid, attachment, None, "")
    ours = time.perf_counter() - started
    from pypdf import PdfReader

    started = time.perf_counter()
    reader = PdfReader(str(pdf))
    for page in reader.pages:
        page.extract_text()
    reference = time.perf_counter() - started
    store.close()
    return pages / ours, pages / reference, indexed.passages, pdf


def embedding(folder: Path, pdf: Path, threads: int, count: int) -> tuple[float, int, int]:
    """Passages per second embedding the first `count` passages, how many, and the book's total."""
    engine = Engine()
    engine.load(starter.cached_path(), LoadOptions(context_length=512, n_threads=threads))
    store = Store(folder / "embed.db")
    cid = store.create_conversation(title="bench")
    attachment = store.attachment_folder.add_document(pdf)
    index_document(store, store.attachment_folder, cid, attachment, None, "")
    (document,) = store.documents(cid)
    passages = store.passages(document.id)[:count]
    started = time.perf_counter()
    for start in range(0, len(passages), EMBED_BATCH):
        batch = passages[start : start + EMBED_BATCH]
        engine.embed([p.text for p in batch])
    seconds = time.perf_counter() - started
    total = len(store.passages(document.id))
    engine.unload()
    store.close()
    return len(passages) / seconds, len(passages), total


def retrieval(folder: Path, passages: int, questions: int) -> list[float]:
    rng = np.random.default_rng(0)
    store = Store(folder / "search.db")
    cid = store.create_conversation(title="bench")
    texts = [f"{PAGES[i % len(PAGES)]} (copy {i})" for i in range(passages)]
    document_id = store.add_document(
        cid, "0" * 64, "big.pdf", "pdf", passages // 3, [Passage(i // 3 + 1, t) for i, t in enumerate(texts)]
    )
    ids = [p.id for p in store.passages(document_id)]
    vectors = rng.standard_normal((passages, 576)).astype(np.float32)
    store.set_vectors(list(zip(ids, vectors, strict=True)), "bench")
    retriever = Retriever(store)
    retriever.search(cid, "warm up", vectors[0], "bench")  # reads the vectors once
    times = []
    for i in range(questions):
        question = QUESTIONS[i % len(QUESTIONS)][0]
        query = rng.standard_normal(576).astype(np.float32)
        started = time.perf_counter()
        found = retriever.search(cid, question, query, "bench")
        times.append(time.perf_counter() - started)
        assert len(found) == 4
    store.close()
    return times


def gui_gap(pdf: Path, embed_seconds: float) -> tuple[float, float]:
    """The window indexes `pdf` (and embeds it for `embed_seconds`); the longest gap of a 5 ms timer
    meanwhile, and how long it watched."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.core.settings import Settings
    from app.core.values.sampling import SamplingParams
    from app.ui.shell.application import create_app
    from app.ui.shell.main_window import MainWindow

    with tempfile.TemporaryDirectory() as data:
        os.environ["FIRESIDE_DATA_DIR"] = data
        app = create_app()
        starter.install(Path(data) / "models")
        window = MainWindow(settings=Settings())
        window.show()
        window.start()
        deadline = time.monotonic() + 120
        while window.loaded is None and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        window.sampling.set_params(SamplingParams(temperature=0, max_tokens=4, context_length=2048))
        clock, gaps = QElapsedTimer(), [0.0]
        clock.start()
        last = [clock.elapsed()]

        def tick() -> None:
            now = clock.elapsed()
            gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(tick)
        timer.start()
        started = time.perf_counter()
        window.attachments.attach_paths([pdf])
        while window.attachments.busy:
            app.processEvents()
        window.composer.setPlainText("Who invented the Fresnel lens?")
        window.chat.send()
        while window.is_generating and time.perf_counter() - started < 300:
            app.processEvents()
            time.sleep(0.001)
        until = time.perf_counter() + embed_seconds  # the passages are being embedded meanwhile
        while time.perf_counter() < until:
            app.processEvents()
            time.sleep(0.001)
        took = time.perf_counter() - started
        timer.stop()
        window.close()
        QApplication.processEvents()
    return max(gaps[2:]) if len(gaps) > 2 else 0.0, took


def main() -> None:
    layout = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=layout)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--embed", type=int, default=64, help="passages embedded for the rate")
    parser.add_argument("--gui-seconds", type=float, default=20.0, help="of background embedding watched")
    parser.add_argument("--no-gui", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        ours, reference, passages, pdf = reading(where, args.pages)
        per_second, embedded, total = embedding(where, pdf, args.threads, args.embed)
        times = retrieval(where, args.passages, args.questions)
        print(f"{args.pages}-page PDF ({passages:,} passages) · {args.threads} threads\n")
        print(f"reading + cutting + FTS5:     {ours:8.0f} pages/s")
        print(
            f"  reference, pypdf's text extraction alone: {reference:.0f} pages/s ({ours / reference:.1f}x)"
        )
        print(f"embedding (starter, mean):    {per_second:8.1f} passages/s (the first {embedded}; all")
        print(f"  {total:,} would take {total / per_second:.0f} s, in the background)")
        median, worst = statistics.median(times) * 1000, max(times) * 1000
        print(f"retrieval at {args.passages:,} passages: {median:6.1f} ms median, {worst:.1f} ms worst")
        print("  (target: under 50 ms a question)")
        if not args.no_gui:
            gap, took = gui_gap(pdf, args.gui_seconds)
            print(f"GUI's longest gap while indexing: {gap:.0f} ms over {took:.1f} s (target < 50 ms)")


if __name__ == "__main__":
    main()
