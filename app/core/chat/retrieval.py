"""Finding the passages of a conversation's documents that answer a question, and the sources a
reply shows for them.

Two searches, fused: FTS5's bm25 over the passages' words (exact names, numbers, rare terms) and
cosine similarity of embeddings (meaning, other words for the same thing). Each gives its best
RANK_DEPTH passages; reciprocal rank fusion (1 / (K + rank), summed) orders their union, so a
passage both find comes first and neither search's scale has to be trusted. The vectors of a
conversation are read from the database once and kept (as one normalised matrix) until its
documents change: a question then costs one matrix-vector product.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from app.core.chat.store.documents import DocumentIndex, StoredPassage
from app.core.values.sources import Source

#: How many passages each search contributes, and reciprocal rank fusion's constant (the usual 60).
RANK_DEPTH = 20
RRF_K = 60
#: The passages a reply gets (about 1,100 characters each).
TOP_PASSAGES = 4


class Retriever:
    """Searches the documents of conversations kept in one store (thread-safe)."""

    def __init__(self, store: DocumentIndex) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._vectors: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}

    def forget(self, conversation_id: int) -> None:
        """The conversation's documents or vectors changed: read them again next time."""
        with self._lock:
            for key in [k for k in self._vectors if k[0] == conversation_id]:
                del self._vectors[key]

    def search(
        self,
        conversation_id: int,
        question: str,
        vector: np.ndarray | None,
        embedder: str,
        k: int = TOP_PASSAGES,
    ) -> list[StoredPassage]:
        """The `k` passages that answer `question` best (its embedding `vector` from `embedder`;
        None: words only), best first."""
        ranked: list[list[int]] = [self.store.keyword_hits(conversation_id, question, RANK_DEPTH)]
        if vector is not None:
            ranked.append(self._nearest(conversation_id, vector, embedder))
        scores: dict[int, float] = {}
        for ranking in ranked:
            for rank, passage_id in enumerate(ranking):
                scores[passage_id] = scores.get(passage_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(scores, key=lambda pid: (-scores[pid], pid))[:k]
        found = self.store.passages_by_id(best)
        return [found[pid] for pid in best if pid in found]

    def _nearest(self, conversation_id: int, vector: np.ndarray, embedder: str) -> list[int]:
        ids, matrix = self._matrix(conversation_id, embedder)
        if not len(ids) or matrix.shape[1] != len(vector):
            return []
        query = np.asarray(vector, np.float32)
        norm = float(np.linalg.norm(query))
        scores = matrix @ (query / norm if norm > 0 else query)
        depth = min(RANK_DEPTH, len(ids))
        top = np.argpartition(-scores, depth - 1)[:depth]
        return [int(ids[i]) for i in top[np.argsort(-scores[top], kind="stable")]]

    def _matrix(self, conversation_id: int, embedder: str) -> tuple[np.ndarray, np.ndarray]:
        key = (conversation_id, embedder)
        with self._lock:
            held = self._vectors.get(key)
        if held is not None:
            return held
        ids, matrix = self.store.vectors(conversation_id, embedder)
        if len(ids):
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix = matrix / np.where(norms > 0, norms, 1.0)
        with self._lock:
            self._vectors[key] = (ids, matrix)
        return ids, matrix


def numbered_sources(passages: Sequence[StoredPassage]) -> list[Source]:
    """The passages as a reply's sources, numbered from 1 in the order given."""
    return [Source(i, p.id, p.name, p.page, p.text) for i, p in enumerate(passages, start=1)]


def passages_prompt(sources: Sequence[Source], question: str) -> str:
    """The user's turn as the model gets it: the numbered passages, then the question."""
    blocks = [f"[{s.number}] {s.name}, page {s.page}:\n{s.text}" for s in sources]
    return (
        "Passages from the attached documents (cite them by number, like [1]):\n\n"
        + "\n\n".join(blocks)
        + f"\n\nQuestion: {question}"
    )
