"""Sizes and counts as people read them: 98.4 MB, 135M parameters."""

from __future__ import annotations


def format_size(n_bytes: int) -> str:
    """Human-readable size in decimal units, as download sites show them (98.4 MB)."""
    value = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def rough_size(n_bytes: int) -> str:
    """A memory size for a sentence, whole megabytes below a gigabyte: "1.2 GB", "310 MB"."""
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{max(1, round(n_bytes / 1e6))} MB"


def format_params(count: int) -> str:
    """Parameter count as people say it: 135M, 7.2B."""
    if count >= 1_000_000_000:
        return f"{count / 1e9:.1f}B"
    if count >= 1_000_000:
        return f"{count / 1e6:.0f}M"
    return f"{count / 1e3:.0f}K"
