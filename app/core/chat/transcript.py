"""The messages of the conversation being shown, with the reply that streams into it (no Qt).

A `Transcript` is the one copy of what the chat shows. The chat session changes it; views follow it
through a `TranscriptListener`, told before and after each change (so a Qt model can bracket it with
begin/end calls, as Qt requires). Streamed text is kept as a list of pieces and joined only when
someone reads it: appending costs O(new text), however long the reply grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from app.core.chat.messages import Conversation, Expand, Message, Role
from app.core.chat.tool_uses import ToolUse
from app.core.media.attachments import Attachment
from app.core.values.replies import ReplyStats


class TranscriptListener(Protocol):
    """What a view of a transcript is told; the `*ing` calls come before a change, the others after."""

    def inserting(self, first: int, last: int) -> None:
        """Rows first..last are about to be added at the end."""

    def inserted(self) -> None:
        """The rows announced by `inserting` are there."""

    def removing(self, first: int, last: int) -> None:
        """Rows first..last (the end of the list) are about to go."""

    def removed(self) -> None:
        """The rows announced by `removing` are gone."""

    def resetting(self) -> None:
        """Every row is about to be replaced."""

    def reset(self) -> None:
        """The rows were replaced."""

    def appended(self, row: int, text: str) -> None:
        """`text` was streamed onto the end of row `row` (nothing else about it changed)."""

    def changed(self, first: int, last: int, paint_only: bool) -> None:
        """Rows first..last changed; with `paint_only`, only marks that do not alter their size."""


class Transcript:
    """An ordered list of messages; only its owner's thread may change or read it."""

    def __init__(self, messages: Iterable[Message] = ()) -> None:
        self._conversation = Conversation(list(messages))
        #: Streamed pieces of a message, joined when its text is read.
        self._parts: dict[int, list[str]] = {}
        self._listeners: list[TranscriptListener] = []

    # ----- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._conversation.messages)

    def message(self, row: int) -> Message:
        """The message at `row`, with its streamed pieces folded into its content."""
        message = self._conversation.messages[row]
        parts = self._parts.get(row)
        if parts:
            if len(parts) > 1:
                parts[:] = ["".join(parts)]
            message.content = parts[0]
        return message

    def peek(self, row: int) -> Message:
        """The message at `row` without folding streamed text (cheap: for its role, state and marks)."""
        return self._conversation.messages[row]

    def messages(self) -> list[Message]:
        """Every message, text folded."""
        for row in list(self._parts):
            self.message(row)
        return list(self._conversation.messages)

    def prompt_messages(self, expand: Expand | None = None) -> list[dict[str, Any]]:
        """The messages as chat templates take them (failed replies and their questions left out;
        `expand` gives a message's content, see Message.as_chat)."""
        self.messages()
        return self._conversation.prompt_messages(expand)

    def prompt_rows(self) -> list[int]:
        """The row of each message `prompt_messages` returns."""
        self.messages()
        return self._conversation.prompt_rows()

    # ----- listeners ------------------------------------------------------------------------

    def subscribe(self, listener: TranscriptListener) -> None:
        """Tell `listener` about every change from now on."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: TranscriptListener) -> None:
        """Stop telling `listener`."""
        self._listeners = [known for known in self._listeners if known is not listener]

    # ----- changing -------------------------------------------------------------------------

    def add(
        self, role: Role, content: str, *, streaming: bool = False, attachments: Sequence[Attachment] = ()
    ) -> int:
        """Append a message (a reply that will stream when `streaming`); returns its row."""
        row = len(self._conversation.messages)
        for listener in self._listeners:
            listener.inserting(row, row)
        message = Message(
            role, content, incomplete=streaming, streaming=streaming, attachments=list(attachments)
        )
        self._conversation.messages.append(message)
        if streaming:
            self._parts[row] = [content] if content else []
        for listener in self._listeners:
            listener.inserted()
        return row

    def append(self, row: int, text: str) -> None:
        """Add streamed text to a reply: the piece is kept and listeners told; nothing is joined here."""
        if not text:
            return
        self._parts.setdefault(row, [self._conversation.messages[row].content]).append(text)
        for listener in self._listeners:
            listener.appended(row, text)

    def finish(self, row: int, text: str, stats: ReplyStats | None, error: str | None = None) -> None:
        """Close a streaming reply with its final text, and its stats or error."""
        self._parts.pop(row, None)
        message = self._conversation.messages[row]
        message.content, message.stats, message.error = text, stats, error
        message.streaming, message.waiting = False, 0
        message.incomplete = error is not None  # as the store keeps it: a failed reply did not finish
        self._changed(row, row)

    def resume(self, row: int) -> None:
        """Make a reply stream again (Continue): new text is appended to what it has."""
        message = self._conversation.messages[row]
        message.incomplete, message.streaming, message.error = True, True, None
        self._parts[row] = [message.content]
        self._changed(row, row)

    def set_tool_uses(self, row: int, uses: list[ToolUse]) -> None:
        """The reply at `row` called these tools."""
        self._conversation.messages[row].tool_uses = uses
        self._changed(row, row)

    def tools_changed(self, row: int) -> None:
        """A call of the reply at `row` was decided, ran, or was unfolded."""
        self._changed(row, row)

    def set_waiting(self, row: int, ahead: int) -> None:
        """The reply at `row` waits behind `ahead` other requests (0: it is being generated)."""
        message = self._conversation.messages[row]
        if message.waiting != ahead:
            message.waiting = ahead
            self._changed(row, row)

    def load(self, messages: Iterable[Message]) -> None:
        """Show other messages (one reset, however many there are)."""
        for listener in self._listeners:
            listener.resetting()
        self._conversation = Conversation(list(messages))
        self._parts.clear()
        for listener in self._listeners:
            listener.reset()

    def clear(self) -> None:
        """Remove every message."""
        self.load(())

    def truncate(self, row: int) -> None:
        """Keep the rows before `row` (an edit or regeneration continues the conversation from there)."""
        count = len(self._conversation.messages)
        if row >= count:
            return
        for listener in self._listeners:
            listener.removing(row, count - 1)
        del self._conversation.messages[row:]
        for stale in [r for r in self._parts if r >= row]:
            del self._parts[stale]
        for listener in self._listeners:
            listener.removed()

    def set_versions(self, versions: dict[int, tuple[int, int]]) -> None:
        """Show "< 2/3 >" on rows with alternatives: {row: (version, count)}."""
        messages = self._conversation.messages
        for row, version in versions.items():
            if 0 <= row < len(messages) and messages[row].version != version:
                messages[row].version = version
                self._changed(row, row)

    def set_left_out(self, rows: set[int]) -> None:
        """Mark the rows the context policy left out of the latest prompt (and unmark the others)."""
        changed = []
        for row, message in enumerate(self._conversation.messages):
            if message.left_out != (row in rows):
                message.left_out = row in rows
                changed.append(row)
        if changed:  # one notice: thousands of rows can change at once
            self._changed(changed[0], changed[-1], paint_only=True)

    def _changed(self, first: int, last: int, paint_only: bool = False) -> None:
        for listener in self._listeners:
            listener.changed(first, last, paint_only)
