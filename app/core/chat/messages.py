"""Chat messages and conversations as the chat session and the window hold them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from app.core.values.replies import ReplyStats


class Role(StrEnum):
    """Who wrote a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(slots=True)
class Message:
    """One chat message; an assistant message may carry the stats of the reply that wrote it."""

    role: Role
    content: str
    stats: ReplyStats | None = None
    #: An assistant reply that did not finish: still streaming, failed, or cut off (as stored).
    incomplete: bool = False
    error: str | None = None
    #: (this version, how many) when the message has alternatives (edits, regenerations).
    version: tuple[int, int] | None = None
    #: The context policy left this message out of the latest reply's prompt (shown, never saved).
    left_out: bool = False
    #: The reply is being generated now (shown, never saved).
    streaming: bool = False
    #: While streaming: how many other requests (API clients) go first; 0 once it is generated.
    waiting: int = 0

    @property
    def cut_off(self) -> bool:
        """An unfinished reply nobody is writing any more and no error explains: Fireside stopped (a
        crash, a power cut) while it was being written."""
        return self.incomplete and not self.streaming and self.error is None

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
