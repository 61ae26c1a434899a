"""How a reply ended and what it measured: shared by the engine, remote engines, the chat and the API."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StopReason(StrEnum):
    """Why a reply ended."""

    END_OF_TURN = "end_of_turn"
    MAX_TOKENS = "max_tokens"
    USER = "stopped_by_user"
    CONTEXT_FULL = "context_full"

    @property
    def label(self) -> str:
        """Words shown under a reply."""
        return {
            StopReason.END_OF_TURN: "end of turn",
            StopReason.MAX_TOKENS: "max tokens reached",
            StopReason.USER: "stopped by user",
            StopReason.CONTEXT_FULL: "context full",
        }[self]


@dataclass(frozen=True, slots=True)
class ReplyStats:
    """Measurements of one finished reply."""

    ttft_s: float
    tokens_per_s: float
    prompt_tokens: int
    prompt_tokens_evaluated: int
    completion_tokens: int
    stop_reason: StopReason
    seed: int
    context_used: int
    context_length: int
    #: Prompt tokens whose KV cache came back from the disk cache (a conversation reopened after a
    #: restart, or after its sequence went to another reply) instead of being read again.
    history_from_cache: int = 0
    #: Speculative decoding: tokens guessed ahead, and of them those the model kept (0, 0: none).
    drafted: int = 0
    accepted: int = 0

    def summary(self) -> str:
        """One line for under the reply: '0.12 s to first token · 104.5 tok/s · ...'."""
        # A remote server that reports no usage leaves the prompt uncounted: say nothing rather than 0.
        prompt = f"{self.prompt_tokens} prompt + " if self.prompt_tokens else ""
        cached = (
            f" · history from cache: {self.history_from_cache:,} tokens" if self.history_from_cache else ""
        )
        drafted = (
            f" · drafted {self.drafted:,}, accepted {self.accepted:,} ({self.accepted / self.drafted:.0%})"
            if self.drafted
            else ""
        )
        return (
            f"{self.ttft_s:.2f} s to first token · {self.tokens_per_s:.1f} tok/s · "
            f"{prompt}{self.completion_tokens} completion tokens · {self.stop_reason.label}{cached}{drafted}"
        )
