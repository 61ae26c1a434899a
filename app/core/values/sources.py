"""The passages a reply was given from the conversation's documents, as the reply shows them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.core.values.stored_json import json_list

#: A source's snippet under a reply, in characters.
SNIPPET_CHARS = 160


@dataclass(frozen=True, slots=True)
class Source:
    """A passage a reply was given, as shown under it: its number, file, page and text."""

    number: int
    passage_id: int
    name: str
    page: int
    text: str

    @property
    def snippet(self) -> str:
        """The passage's start, on one line."""
        flat = " ".join(self.text.split())
        return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"

    def to_dict(self) -> dict[str, Any]:
        """As stored with the reply (JSON)."""
        return {
            "number": self.number,
            "passage_id": self.passage_id,
            "name": self.name,
            "page": self.page,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Source | None:
        """One stored by to_dict (None for anything else)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                int(data["number"]),
                int(data["passage_id"]),
                str(data["name"]),
                int(data["page"]),
                str(data["text"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def sources_to_json(sources: Iterable[Source]) -> str | None:
    """As the messages table keeps them (None for none)."""
    items = [s.to_dict() for s in sources]
    return json.dumps(items) if items else None


def sources_from_json(text: str | None) -> list[Source]:
    """What sources_to_json wrote (a damaged value gives none, never an error)."""
    return [s for s in map(Source.from_dict, json_list(text)) if s is not None]
