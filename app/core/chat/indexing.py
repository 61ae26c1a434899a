"""A document attached to a conversation, made searchable: its text read and cut into passages
(kept in the conversation database, searchable by their words at once), then embedded a few
passages at a time (searchable by meaning as the vectors arrive). Runs off the GUI thread; each step
reports its progress and can be stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from app.core.chat.store import Store
from app.core.inference.events import Embedded, Event, EventSink
from app.core.media.attachments import Attachment, AttachmentFolder
from app.core.media.chunking import chunk_pages
from app.core.media.documents import DocumentError, read_document

#: Passages embedded per request to the inference thread (a chat reply waits at most for one).
EMBED_BATCH = 8

#: Embeds texts: one vector (length 1) per text, in order.
Embed = Callable[[Sequence[str]], np.ndarray]
#: Told (what is being done, done, total) as indexing goes.
Progress = Callable[[str, int, int], None]


class IndexingStopped(Exception):
    """Indexing was stopped (the window closes, or the conversation went)."""


@dataclass(frozen=True, slots=True)
class Indexed:
    """A document made searchable: its id in the store, and how many passages it has."""

    document_id: int
    passages: int
    embedded: int


def index_document(
    store: Store,
    folder: AttachmentFolder,
    conversation_id: int,
    attachment: Attachment,
    embed: Embed | None,
    embedder: str,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Indexed:
    """Read, cut, keep and embed one attached document (DocumentError when it cannot be read;
    IndexingStopped when `stop` is set). A document indexed before is only embedded where its
    passages lack a vector from `embedder`; without `embed` it is only kept."""
    stop = stop or threading.Event()
    existing = next((d for d in store.documents(conversation_id) if d.sha256 == attachment.sha256), None)
    if existing is not None:
        document_id, count = existing.id, None
    else:

        def read(done: int, total: int) -> bool:
            if progress is not None:
                progress("Reading", done, total)
            return not stop.is_set()

        try:
            text = read_document(folder.path(attachment), read, attachment.name)
        except DocumentError:
            if stop.is_set():
                raise IndexingStopped from None
            raise
        passages = chunk_pages(text.pages)
        document_id, count = (
            store.add_document(
                conversation_id, attachment.sha256, attachment.name, text.kind, len(text.pages), passages
            ),
            len(passages),
        )
    if embed is None:
        return Indexed(document_id, count if count is not None else store.passage_count(document_id), 0)
    return embed_document(store, document_id, embed, embedder, progress, stop)


def embed_document(
    store: Store,
    document_id: int,
    embed: Embed,
    embedder: str,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Indexed:
    """Embed the passages of a kept document that lack a vector from `embedder`, a batch at a time
    (IndexingStopped when `stop` is set: what was embedded is kept)."""
    pending = store.passages(document_id, missing_vectors=True, embedder=embedder)
    total = store.passage_count(document_id)
    embedded = 0
    for start in range(0, len(pending), EMBED_BATCH):
        if stop is not None and stop.is_set():
            raise IndexingStopped
        batch = pending[start : start + EMBED_BATCH]
        vectors = embed([p.text for p in batch])
        store.set_vectors([(p.id, v) for p, v in zip(batch, vectors, strict=True)], embedder)
        embedded += len(batch)
        if progress is not None:
            progress("Indexing", total - len(pending) + embedded, total)
    return Indexed(document_id, total, embedded)


class EmbeddingUnavailable(RuntimeError):
    """The inference thread could not embed (no model, or it failed): the message says why."""


def thread_embedder(
    worker: EmbedWorker, timeout: float = 120.0, going: Callable[[], bool] = lambda: True
) -> Embed:
    """An Embed that asks the inference thread and waits for its answer (call it from a worker
    thread, never the GUI thread: the reply in progress goes on between the requests). It gives up
    as soon as `going()` is False (the window closes: the inference thread may answer no more)."""

    def embed(texts: Sequence[str]) -> np.ndarray:
        answered = threading.Event()
        box: list[Event] = []

        def sink(event: Event) -> None:
            box.append(event)
            answered.set()

        worker.embed(list(texts), sink)
        waited = 0.0
        while not answered.wait(0.25):
            waited += 0.25
            if not going():
                raise IndexingStopped
            if waited >= timeout:
                raise EmbeddingUnavailable("The model took too long to embed the passages.")
        event = box[0]
        if isinstance(event, Embedded):
            return event.embeddings.vectors
        raise EmbeddingUnavailable(getattr(event, "message", "The passages could not be embedded."))

    return embed


class EmbedWorker(Protocol):
    """What thread_embedder needs of the inference thread (InferenceThread has it)."""

    def embed(self, inputs: Sequence[str | Sequence[int]], sink: EventSink | None = None) -> int:
        """Queue embedding `inputs`; the answer goes to `sink`."""
