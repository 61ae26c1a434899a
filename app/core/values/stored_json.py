"""JSON kept in a database's text column, read back without ever raising."""

from __future__ import annotations

import json
from typing import Any


def json_list(text: str | None) -> list[Any]:
    """The items of a JSON list kept in a text column (a damaged or missing value gives none)."""
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return data if isinstance(data, list) else []
