"""What a conversation's documents add to its prompts.

A document short enough goes into the prompt whole, in the turn it was attached to (so it stays in
the KV cache like any text). A longer one is searched: each question is given the passages that
answer it best (retrieval.py), numbered, and the reply shows them as its sources; the passages a
question got are kept with it, so the conversation's later prompts repeat the very same text and its
cached start stays valid. Everything here that reads files, the database or the inference thread
runs on a worker (`prepare`, `embed_pending`); building a prompt only reads what is cached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.chat.indexing import Embed, Progress, embed_document, index_document
from app.core.chat.messages import Message, Role
from app.core.chat.retrieval import TOP_PASSAGES, Retriever, numbered_sources, passages_prompt
from app.core.chat.store import Store, StoredDocument
from app.core.media.attachments import Attachment, AttachmentFolder, with_images
from app.core.media.chunking import TARGET_CHARS
from app.core.values.sources import Source

#: A document goes into the prompt whole when it takes at most this share of the context window.
WHOLE_SHARE = 0.5
#: Characters per token, to judge that without the tokenizer (English prose: about 4; code: 3).
CHARS_PER_TOKEN = 3.5


def draft_tokens(attachments: Sequence[Attachment], context_length: int) -> int:
    """About how many tokens the documents attached to a draft will add to its turn (for the
    context meter, before their text is read into the prompt): a document that fits goes in whole,
    a longer one brings its best passages."""
    chars = 0
    for attachment in attachments:
        if attachment.kind != "document":
            continue
        size = attachment.height  # a document's characters of text
        whole = size / CHARS_PER_TOKEN <= WHOLE_SHARE * context_length
        chars += size if whole else min(size, TOP_PASSAGES * TARGET_CHARS)
    return round(chars / CHARS_PER_TOKEN)


@dataclass(slots=True)
class Embedder:
    """Who embeds now: a name (its vectors are only compared with its own) and the function."""

    name: str
    embed: Embed


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a question gets from the documents: the passages found for it (none when every
    document goes in whole)."""

    sources: list[Source] = field(default_factory=list)


class DocumentContext:
    """The documents of the conversations in one store, for the chat session."""

    def __init__(self, store: Callable[[], Store | None], folder: AttachmentFolder) -> None:
        self._store = store
        self.folder = folder
        #: Set by the window while a local model is loaded (None: words only, no vectors).
        self.embedder: Embedder | None = None
        self._texts: dict[str, str] = {}  # a whole document's text, by sha256
        self._lock = threading.Lock()
        self._retriever: Retriever | None = None

    def fits_whole(self, chars: int, context_length: int) -> bool:
        """Whether a document of `chars` characters goes into the prompt whole."""
        return chars / CHARS_PER_TOKEN <= WHOLE_SHARE * context_length

    def involved(self, conversation_id: int | None, attachments: Sequence[Attachment]) -> bool:
        """Whether sending in this conversation needs the documents' work first (a document was
        attached, or the conversation has documents to search)."""
        if any(a.kind == "document" for a in attachments):
            return True
        store = self._store()
        return bool(conversation_id is not None and store is not None and store.documents(conversation_id))

    def prepare(
        self,
        conversation_id: int,
        question: str,
        attachments: Sequence[Attachment],
        context_length: int,
        stop: threading.Event | None = None,
    ) -> Prepared:
        """Index the conversation's documents not indexed yet (read and cut: fast), then find the
        passages for `question` in those too long to send whole (on a worker: it reads the
        database and may ask the inference thread for the question's embedding)."""
        store = self._store()
        if store is None:
            return Prepared()
        for attachment in attachments:
            if attachment.kind == "document":
                index_document(store, self.folder, conversation_id, attachment, None, "", stop=stop)
        documents = store.documents(conversation_id)
        for document in documents:
            if self.fits_whole(document.chars, context_length):
                self._remember_text(store, document)
        if all(self.fits_whole(d.chars, context_length) for d in documents):
            return Prepared()
        embedder = self.embedder
        vector: np.ndarray | None = None
        if embedder is not None:
            try:
                vector = embedder.embed([question])[0]
            except Exception:  # no model to embed with now: the words still find passages
                vector = None
        found = self.retriever(store).search(
            conversation_id, question, vector, embedder.name if embedder is not None else ""
        )
        return Prepared(numbered_sources(found))

    def embed_pending(
        self, conversation_id: int, progress: Progress | None = None, stop: threading.Event | None = None
    ) -> int:
        """Embed the passages of the conversation's documents that lack a vector from the current
        embedder (on a worker); how many were embedded."""
        store, embedder = self._store(), self.embedder
        if store is None or embedder is None:
            return 0
        done = 0
        for document in store.documents(conversation_id):
            done += embed_document(store, document.id, embedder.embed, embedder.name, progress, stop).embedded
        if done:
            self.retriever(store).forget(conversation_id)
        return done

    def retriever(self, store: Store) -> Retriever:
        """The retriever of `store` (one, keeping the vectors it read)."""
        with self._lock:
            if self._retriever is None or self._retriever.store is not store:
                self._retriever = Retriever(store)
            return self._retriever

    def _remember_text(self, store: Store, document: StoredDocument) -> None:
        with self._lock:
            if document.sha256 in self._texts:
                return
        text = store.document_text(document.id)
        with self._lock:
            self._texts[document.sha256] = text

    def content(self, message: Message) -> Any:
        """A message's content as the model gets it: a user turn with its whole documents before its
        text, or with the passages it was given; its images as image parts."""
        if message.role is not Role.USER:
            return None
        text = message.content
        if message.sources:
            text = passages_prompt(message.sources, text)
        else:
            with self._lock:
                whole = [
                    (a.name, self._texts[a.sha256])
                    for a in message.attachments
                    if a.kind == "document" and a.sha256 in self._texts
                ]
            if whole:
                blocks = [f'<document name="{name}">\n{body}\n</document>' for name, body in whole]
                text = "\n\n".join(blocks) + (f"\n\n{text}" if text else "")
        return with_images(text, message.attachments, self.folder)


def document_attachments(messages: Sequence[Message]) -> list[Attachment]:
    """Every document attached anywhere in `messages` (each once)."""
    seen: dict[str, Attachment] = {}
    for message in messages:
        for attachment in message.attachments:
            if attachment.kind == "document":
                seen.setdefault(attachment.sha256, attachment)
    return list(seen.values())
