"""Text that is not Unicode made safe: a lone UTF-16 surrogate, which neither tokenizer nor SQLite takes."""

from __future__ import annotations

from typing import Any


def clean_text(text: str) -> str:
    """`text` with every lone UTF-16 surrogate replaced by U+FFFD (pasted or decoded text can hold
    one; it is not Unicode, so neither the model's tokenizer nor SQLite can take it)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16 a well-formed pair becomes its character again and a lone half becomes U+FFFD.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def clean_json(value: Any) -> Any:
    """Parsed JSON with clean_text applied to every string in it, keys included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    if isinstance(value, dict):
        return {clean_text(str(key)): clean_json(item) for key, item in value.items()}
    return value
