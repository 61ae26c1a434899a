"""Documents attached to a conversation, as passages: each with its page, its words in FTS5 and its
embedding as a vector, in the conversation database itself (deleted with the conversation)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.core.chat.store.database import Database
from app.core.media.chunking import Passage
from app.core.values.text import clean_text

#: A vector is stored as little-endian float32.
VECTOR_TYPE = np.dtype("<f4")
_WORD = re.compile(r"\w+", re.UNICODE)
#: Words too common to find a passage by (in English, the documents' usual language): left out of
#: the word search, which then ranks only the passages holding the question's telling words (and
#: scores a few hundred rows, not every one: 27 ms became 4 ms at 10,000 passages).
_COMMON = (
    "a about above after again all am an and any are as at be because been before being below between "
    "both but by can could did do does doing down during each few for from further had has have having "
    "he her here hers herself him himself his how i if in into is it its itself just me more most my "
    "myself no nor not now of off on once only or other our ours out over own same she should so some "
    "such than that the their theirs them then there these they this those through to too under until "
    "up very was we were what when where which while who whom why will with would you your yours"
)
STOPWORDS = frozenset(_COMMON.split())


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document of a conversation: its file (by sha256), name, kind and size."""

    id: int
    conversation_id: int
    sha256: str
    name: str
    kind: str
    pages: int
    chars: int


@dataclass(frozen=True, slots=True)
class StoredPassage:
    """One passage of a document, with where it is."""

    id: int
    document_id: int
    name: str
    page: int
    text: str


class DocumentIndex(Database):
    """The documents table and their passages (FTS5 over their words, vectors beside them)."""

    def add_document(
        self,
        conversation_id: int,
        sha256: str,
        name: str,
        kind: str,
        pages: int,
        passages: Sequence[Passage],
    ) -> int:
        """Keep a document's passages for a conversation (in one transaction); its id. The same file
        attached again to the same conversation is kept once: the id of the one already there."""
        with self._tx() as db:
            found = db.execute(
                "SELECT id FROM documents WHERE conversation_id = ? AND sha256 = ?", (conversation_id, sha256)
            ).fetchone()
            if found is not None:
                return int(found[0])
            chars = sum(len(p.text) for p in passages)
            cursor = db.execute(
                "INSERT INTO documents(conversation_id, sha256, name, kind, pages, chars, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, sha256, clean_text(name), kind, pages, chars, time.time()),
            )
            document_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO chunks(document_id, position, page, text) VALUES (?, ?, ?, ?)",
                [(document_id, i, p.page, clean_text(p.text)) for i, p in enumerate(passages)],
            )
            return document_id

    def documents(self, conversation_id: int) -> list[StoredDocument]:
        """The conversation's documents, in the order they were attached."""
        rows = self._query(
            "SELECT id, conversation_id, sha256, name, kind, pages, chars FROM documents "
            "WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        return [StoredDocument(*tuple(row)) for row in rows]

    def document_text(self, document_id: int) -> str:
        """A document's whole text (its passages joined, in order)."""
        rows = self._query("SELECT text FROM chunks WHERE document_id = ? ORDER BY position", (document_id,))
        return "\n\n".join(row[0] for row in rows)

    def passages(
        self, document_id: int, missing_vectors: bool = False, embedder: str = ""
    ) -> list[StoredPassage]:
        """A document's passages in order (only those without a vector from `embedder`, when asked)."""
        where = " AND (vector IS NULL OR embedder IS NOT ?)" if missing_vectors else ""
        args: tuple[object, ...] = (document_id, embedder) if missing_vectors else (document_id,)
        rows = self._query(
            "SELECT c.id, c.document_id, d.name, c.page, c.text FROM chunks c JOIN documents d ON d.id = "
            f"c.document_id WHERE c.document_id = ?{where} ORDER BY c.position",
            args,
        )
        return [StoredPassage(*tuple(row)) for row in rows]

    def passage_count(self, document_id: int) -> int:
        """How many passages a document has."""
        return int(self._query("SELECT COUNT(*) FROM chunks WHERE document_id = ?", (document_id,))[0][0])

    def set_vectors(self, vectors: Sequence[tuple[int, np.ndarray]], embedder: str) -> None:
        """Keep each passage's embedding (by passage id), as `embedder` made it."""
        with self._tx() as db:
            db.executemany(
                "UPDATE chunks SET vector = ?, embedder = ? WHERE id = ?",
                [(np.asarray(v, VECTOR_TYPE).tobytes(), embedder, pid) for pid, v in vectors],
            )

    def vectors(self, conversation_id: int, embedder: str) -> tuple[np.ndarray, np.ndarray]:
        """The ids of the conversation's passages with a vector from `embedder`, and the vectors as
        one matrix (a row each)."""
        rows = self._query(
            "SELECT c.id, c.vector FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE d.conversation_id = ? AND c.embedder = ? AND c.vector IS NOT NULL ORDER BY c.id",
            (conversation_id, embedder),
        )
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.fromiter((row[0] for row in rows), np.int64, len(rows))
        matrix = np.vstack([np.frombuffer(row[1], VECTOR_TYPE) for row in rows])
        return ids, matrix.astype(np.float32)

    def keyword_hits(self, conversation_id: int, question: str, limit: int = 20) -> list[int]:
        """The conversation's passages matching the question's words best (FTS5's bm25), best first."""
        found = [w for w in _WORD.findall(question.lower()) if len(w) > 1]
        words = [w for w in found if w not in STOPWORDS][:32] or found[:32]
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
        rows = self._query(
            "SELECT c.id FROM chunks_fts f JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = "
            "c.document_id WHERE chunks_fts MATCH ? AND d.conversation_id = ? "
            "ORDER BY bm25(chunks_fts) LIMIT ?",
            (match, conversation_id, limit),
        )
        return [int(row[0]) for row in rows]

    def passages_by_id(self, ids: Sequence[int]) -> dict[int, StoredPassage]:
        """Passages by their ids (those still there)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(
            "SELECT c.id, c.document_id, d.name, c.page, c.text FROM chunks c JOIN documents d ON d.id = "
            f"c.document_id WHERE c.id IN ({marks})",
            tuple(ids),
        )
        return {int(row[0]): StoredPassage(*tuple(row)) for row in rows}
