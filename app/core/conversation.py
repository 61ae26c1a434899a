"""Conversation values shared by the engine, the inference thread and the UI."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
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


class Role(StrEnum):
    """Who wrote a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


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

    def summary(self) -> str:
        """One line for under the reply: '0.12 s to first token · 104.5 tok/s · ...'."""
        # A remote server that reports no usage leaves the prompt uncounted: say nothing rather than 0.
        prompt = f"{self.prompt_tokens} prompt + " if self.prompt_tokens else ""
        return (
            f"{self.ttft_s:.2f} s to first token · {self.tokens_per_s:.1f} tok/s · "
            f"{prompt}{self.completion_tokens} completion tokens · {self.stop_reason.label}"
        )


@dataclass(slots=True)
class Message:
    """One chat message; an assistant message may carry the stats of the reply that wrote it."""

    role: Role
    content: str
    stats: ReplyStats | None = None
    #: An assistant reply that is still streaming, or that failed before it finished.
    incomplete: bool = False
    error: str | None = None
    #: (this version, how many) when the message has alternatives (edits, regenerations).
    version: tuple[int, int] | None = None
    #: The context policy left this message out of the latest reply's prompt (shown, never saved).
    left_out: bool = False

    def as_chat(self) -> dict[str, str]:
        """The {"role", "content"} dict chat templates expect."""
        return {"role": self.role.value, "content": self.content}


@dataclass(slots=True)
class Conversation:
    """An ordered list of messages."""

    messages: list[Message] = field(default_factory=list)

    def add(self, role: Role, content: str) -> Message:
        """Append a message and return it."""
        message = Message(role, content)
        self.messages.append(message)
        return message

    def prompt_messages(self) -> list[dict[str, str]]:
        """The messages to send to the model.

        A reply that failed or stopped before its first token is left out together with the user
        turn it answered: many chat templates (Gemma, Mistral) refuse two user turns in a row.
        """
        return [self.messages[row].as_chat() for row in self.prompt_rows()]

    def prompt_rows(self) -> list[int]:
        """The index in `messages` of each message `prompt_messages` sends, in the same order."""
        rows: list[int] = []
        for row, message in enumerate(self.messages):
            if message.role is Role.ASSISTANT and (message.error or not message.content):
                if rows and self.messages[rows[-1]].role is Role.USER:
                    rows.pop()
                continue
            rows.append(row)
        return rows
