"""Log probabilities of a reply's tokens, as OpenAI's `logprobs` reports them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TokenChoice:
    """A token, its bytes (a token may hold part of a character) and its log probability."""

    text: str
    raw: bytes
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The token a reply wrote, and the likeliest tokens at its place (most likely first)."""

    chosen: TokenChoice
    top: tuple[TokenChoice, ...] = ()
