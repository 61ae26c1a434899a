"""Chat messages and conversations as the chat session and the window hold them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.core.chat.tool_uses import ToolUse
from app.core.media.attachments import Attachment, with_images
from app.core.values.replies import ReplyStats
from app.core.values.sources import Source

#: Gives a message's content as the model gets it instead of its own (None: its own).
Expand = Callable[["Message"], Any]


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
    #: The tools a reply called, with the user's decisions and the results.
    tool_uses: list[ToolUse] = field(default_factory=list)
    #: Files the user attached (images, documents), kept in the attachments folder.
    attachments: list[Attachment] = field(default_factory=list)
    #: The passages of the conversation's documents this question was given (a reply: those its
    #: question was given, shown under it as its sources).
    sources: list[Source] = field(default_factory=list)

    @property
    def cut_off(self) -> bool:
        """An unfinished reply nobody is writing any more and no error explains: Fireside stopped (a
        crash, a power cut) while it was being written."""
        return self.incomplete and not self.streaming and self.error is None

    def as_chat(self, expand: Expand | None = None) -> dict[str, Any]:
        """The {"role", "content"} dict chat templates expect (content parts when it has images;
        `expand` may give the content instead: a user turn with its documents)."""
        content = expand(self) if expand is not None else None
        if content is None:
            content = with_images(self.content, self.attachments)
        return {"role": self.role.value, "content": content}

    def chat_turns(self, expand: Expand | None = None) -> list[dict[str, Any]]:
        """The message as the model gets it: one turn, or a reply's calls and a `tool` turn per result."""
        if not self.tool_uses:
            return [self.as_chat(expand)]
        calls = {
            "role": self.role.value,
            "content": self.content,
            "tool_calls": [u.call_dict() for u in self.tool_uses],
        }
        return [calls, *(use.result_message() for use in self.tool_uses)]


@dataclass(slots=True)
class Conversation:
    """An ordered list of messages."""

    messages: list[Message] = field(default_factory=list)

    def add(self, role: Role, content: str) -> Message:
        """Append a message and return it."""
        message = Message(role, content)
        self.messages.append(message)
        return message

    def prompt_messages(self, expand: Expand | None = None) -> list[dict[str, Any]]:
        """The messages to send to the model (a reply that called tools is its call turn and a `tool`
        turn per result).

        A reply that failed or stopped before its first token is left out together with the user
        turn it answered: many chat templates (Gemma, Mistral) refuse two user turns in a row.
        """
        return [turn for row in self._rows() for turn in self.messages[row].chat_turns(expand)]

    def prompt_rows(self) -> list[int]:
        """The index in `messages` of each message `prompt_messages` sends, in the same order (a row
        of calls appears once per turn it gives)."""
        return [row for row in self._rows() for _turn in self.messages[row].chat_turns()]

    def _rows(self) -> list[int]:
        rows: list[int] = []
        for row, message in enumerate(self.messages):
            if (
                message.role is Role.ASSISTANT
                and not message.tool_uses
                and (message.error or not message.content)
            ):
                if rows and self.messages[rows[-1]].role is Role.USER:
                    rows.pop()
                continue
            rows.append(row)
        return rows
