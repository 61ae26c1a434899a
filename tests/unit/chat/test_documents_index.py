"""Documents in a conversation's database: passages kept with their pages, found by their words
(FTS5) and by meaning (the starter model's mean-pooled embeddings, the real engine), fused; the
retrieval test runs on real text: each question finds the page that answers it in the top 3."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.core.chat.indexing import IndexingStopped, index_document
from app.core.chat.retrieval import Retriever, numbered_sources, passages_prompt
from app.core.chat.store import Store
from app.core.inference.engine import Engine
from app.core.inference.options import LoadOptions
from app.core.media.attachments import AttachmentError
from app.core.values.sources import Source
from tests.documents_text import PAGES, QUESTIONS
from tests.pdf_writer import write_pdf

EMBEDDER = "starter-mean"


@pytest.fixture(scope="module")
def embed(starter_model: Path) -> Iterator[object]:
    """The starter model's embeddings (mean-pooled token states), on the real engine."""
    engine = Engine()
    engine.load(starter_model, LoadOptions(context_length=512))
    yield lambda texts: engine.embed(list(texts)).vectors
    engine.unload()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "conversations.db")
    yield s
    s.close()


def attach_pdf(store: Store, tmp_path: Path, pages: list[str], name: str = "facts.pdf") -> object:
    return store.attachment_folder.add_document(write_pdf(tmp_path / name, pages))


def test_a_document_is_kept_as_passages_with_pages_and_vectors(
    store: Store, tmp_path: Path, embed: object
) -> None:
    attachment = attach_pdf(store, tmp_path, PAGES)
    assert attachment.kind == "document" and attachment.media_type == "application/pdf"
    assert attachment.width == len(PAGES) and attachment.height > 3000  # pages, characters
    cid = store.create_conversation(title="facts")
    seen: list[tuple[str, int, int]] = []
    indexed = index_document(
        store, store.attachment_folder, cid, attachment, embed, EMBEDDER, lambda *p: seen.append(p)
    )
    assert indexed.passages >= len(PAGES) and indexed.embedded == indexed.passages
    assert seen[-1] == ("Indexing", indexed.passages, indexed.passages)
    (document,) = store.documents(cid)
    assert (document.name, document.pages, document.kind) == ("facts.pdf", len(PAGES), "pdf")
    assert "Marta Olsen" in store.document_text(document.id)
    ids, matrix = store.vectors(cid, EMBEDDER)
    assert len(ids) == indexed.passages and matrix.shape == (indexed.passages, 576)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    # Attached again to the same conversation: kept once, nothing embedded twice.
    again = index_document(store, store.attachment_folder, cid, attachment, embed, EMBEDDER)
    assert again.document_id == document.id and again.embedded == 0
    # Deleted with its conversation.
    store.delete_conversation(cid)
    store.purge_deleted()
    assert store.documents(cid) == [] and store.keyword_hits(cid, "bakery") == []


def test_questions_find_the_page_that_answers_them_in_the_top_3(
    store: Store, tmp_path: Path, embed: object
) -> None:
    attachment = attach_pdf(store, tmp_path, PAGES)
    cid = store.create_conversation(title="facts")
    index_document(store, store.attachment_folder, cid, attachment, embed, EMBEDDER)
    retriever = Retriever(store)
    misses = []
    for question, page in QUESTIONS:
        vector = embed([question])[0]  # type: ignore[operator]
        found = retriever.search(cid, question, vector, EMBEDDER, k=3)
        if page not in [p.page for p in found]:
            misses.append((question, page, [p.page for p in found]))
    assert not misses, misses
    # Words alone (no embedding yet) still find exact names.
    words = retriever.search(cid, "Stradivari Cremona", None, EMBEDDER, k=3)
    assert words and words[0].page == 4


def test_sources_are_numbered_and_go_into_the_question(store: Store, tmp_path: Path, embed: object) -> None:
    attachment = attach_pdf(store, tmp_path, PAGES)
    cid = store.create_conversation(title="facts")
    index_document(store, store.attachment_folder, cid, attachment, embed, EMBEDDER)
    found = Retriever(store).search(cid, "lighthouse lens and the bakery", None, EMBEDDER, k=2)
    sources = numbered_sources(found)
    assert [s.number for s in sources] == [1, 2] and sources[0].page == 5
    assert Source.from_dict(sources[0].to_dict()) == sources[0] and Source.from_dict({"x": 1}) is None
    assert len(sources[0].snippet) <= 160 and sources[0].snippet.endswith("…")
    prompt = passages_prompt(sources, "Who invented the lens?")
    assert prompt.startswith("Passages from the attached documents") and "[1] facts.pdf, page 5:" in prompt
    assert prompt.endswith("Question: Who invented the lens?")


def test_indexing_can_be_stopped_and_a_bad_document_is_refused_when_attached(
    store: Store, tmp_path: Path, embed: object
) -> None:
    attachment = attach_pdf(store, tmp_path, PAGES * 3, "long.pdf")
    cid = store.create_conversation(title="stop")
    stop = threading.Event()
    calls = []

    def slow(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        stop.set()  # the window closes during the first batch
        return embed(texts)  # type: ignore[operator,no-any-return]

    with pytest.raises(IndexingStopped):
        index_document(store, store.attachment_folder, cid, attachment, slow, EMBEDDER, stop=stop)
    assert len(calls) == 1
    # What was kept is kept: the passages are searchable by their words, and the rest is embedded later.
    assert store.keyword_hits(cid, "glacier")
    resumed = index_document(store, store.attachment_folder, cid, attachment, embed, EMBEDDER)
    assert resumed.embedded == resumed.passages - calls[0]
    encrypted = tmp_path / "locked.pdf"
    from tests.pdf_writer import write_encrypted_pdf

    write_encrypted_pdf(encrypted, PAGES[:2])
    with pytest.raises(AttachmentError, match="protected by a password"):
        store.attachment_folder.add_document(encrypted)
