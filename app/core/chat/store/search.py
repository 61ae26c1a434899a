"""Full-text search over titles and messages (SQLite FTS5), each hit with the text around it."""

from __future__ import annotations

import re
import sqlite3

from app.core.chat.store.database import Database
from app.core.chat.store.errors import explain
from app.core.chat.store.records import SearchHit


class Search(Database):
    """Search across every conversation not in the bin."""

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Conversations whose title or messages contain every word of `text` (prefixes match), the
        most recently active first, each with the matching text around the hit.

        The message index is read newest first and stops as soon as `limit` conversations are found,
        so a common word costs no more than a rare one."""
        words = [w for w in text.replace('"', " ").split() if w]
        if not words:
            return []
        match = " ".join(f'"{w}"*' for w in words)
        like = "%" + "%".join(words) + "%"
        with self._lock:
            try:
                titled = self._db.execute(
                    "SELECT id, title FROM conversations WHERE deleted_at IS NULL AND title LIKE ? "
                    "ORDER BY updated_at DESC LIMIT ?",
                    (like, limit),
                ).fetchall()
                found = self._newest_matches(match, limit)
                marks = ",".join("?" * len(found))
                contents = dict(
                    self._db.execute(
                        f"SELECT id, content FROM messages WHERE id IN ({marks})", (*found.values(),)
                    )
                )
                titles = dict(
                    self._db.execute(f"SELECT id, title FROM conversations WHERE id IN ({marks})", (*found,))
                )
            except sqlite3.Error as exc:
                raise explain(exc, self.path) from exc
        hits = [
            SearchHit(
                int(cid), title, snippet(contents[found[cid]], words) if cid in found else "", found.get(cid)
            )
            for cid, title in titled
        ]
        seen = {h.conversation_id for h in hits}
        hits += [
            SearchHit(cid, titles.get(cid, ""), snippet(contents.get(mid, ""), words), mid)
            for cid, mid in found.items()
            if cid not in seen
        ]
        return hits[:limit]

    def _newest_matches(self, match: str, limit: int) -> dict[int, int]:
        """Up to `limit` conversations with a message matching `match`: conversation -> newest such message.

        FTS5 walks its index in rowid order by itself; a join inside the query would make SQLite collect
        and sort every match first (seconds for a common word over 200,000 messages)."""
        found: dict[int, int] = {}
        owner = (
            "SELECT m.conversation_id, c.deleted_at FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?"
        )
        matches = self._db.execute(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC", (match,)
        )
        for (message_id,) in matches:
            conversation_id, deleted = self._db.execute(owner, (message_id,)).fetchone()
            if deleted is None:
                found.setdefault(conversation_id, message_id)
                if len(found) >= limit:
                    break
        return found


def snippet(text: str, words: list[str], width: int = 60) -> str:
    """The text around the earliest matching word, the match in [brackets]. (FTS5's own snippet()
    re-runs the whole query for each row: half a second over a large history.)"""
    lowered = text.lower()
    best: tuple[int, int] | None = None
    for word in words:
        at = re.search(r"(?<!\w)" + re.escape(word.lower()), lowered)
        if at is not None and (best is None or at.start() < best[0]):
            end = at.end()
            while end < len(text) and text[end].isalnum():
                end += 1  # the rest of the word the prefix matched
            best = (at.start(), end)
    if best is None:
        return text[: 2 * width].replace("\n", " ").strip()
    start, end = best
    left, right = max(0, start - width), min(len(text), end + width)
    before = ("…" if left else "") + text[left:start]
    after = text[end:right] + ("…" if right < len(text) else "")
    return (before + "[" + text[start:end] + "]" + after).replace("\n", " ")
