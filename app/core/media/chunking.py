"""A document's text cut into passages for retrieval: a few paragraphs each, never across a page (so
a source names its page), cut at paragraph, then sentence, then word boundaries."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: A passage holds about this many characters (some 250-300 tokens: room for four in a prompt).
TARGET_CHARS = 1100
#: A passage shorter than this is merged with the next one on its page.
MIN_CHARS = 200
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Passage:
    """One passage of a document: the page it is on (1-based) and its text."""

    page: int
    text: str


def chunk_pages(pages: Sequence[str], target: int = TARGET_CHARS) -> list[Passage]:
    """Passages of about `target` characters, page by page, in reading order."""
    passages: list[Passage] = []
    for number, page in enumerate(pages, start=1):
        passages.extend(Passage(number, text) for text in _chunk(page, target))
    return passages


def _chunk(text: str, target: int) -> list[str]:
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    pieces: list[str] = []
    for paragraph in (p for p in paragraphs if p):
        pieces.extend(_split(paragraph, target) if len(paragraph) > target else [paragraph])
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > target and len(current) >= MIN_CHARS:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n{piece}" if current else piece
    if current:
        if chunks and len(current) < MIN_CHARS and len(chunks[-1]) + len(current) <= 2 * target:
            chunks[-1] = f"{chunks[-1]}\n{current}"
        else:
            chunks.append(current)
    return chunks


def _split(paragraph: str, target: int) -> list[str]:
    """A long paragraph as sentences packed up to `target` (a sentence longer than that, by words)."""
    parts: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        parts.extend([sentence] if len(sentence) <= target else _by_words(sentence, target))
    return _pack(parts, target)


def _by_words(text: str, target: int) -> list[str]:
    """A long sentence as words packed up to `target` (an unbroken "word", a base64 blob or a URL,
    cut into pieces of `target`)."""
    words: list[str] = []
    for word in text.split(" "):
        while len(word) > target:
            words.append(word[:target])
            word = word[target:]
        if word:
            words.append(word)
    return _pack(words, target)


def _pack(pieces: Iterable[str], target: int) -> list[str]:
    """`pieces` joined by spaces into runs of at most `target` characters (a longer piece alone)."""
    out: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > target:
            out.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    if current:
        out.append(current)
    return out
