"""Keeps the open conversation in the store as it happens, for the chat session: every write in one
place, and a failed write is told to the session's listeners (StoreFailed), never raised: chat goes on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from app.core.chat.events import SessionEvent, StoreFailed
from app.core.chat.store import Store, StoreError
from app.core.chat.tool_uses import ToolUse, uses_to_json
from app.core.media.attachments import Attachment, attachments_to_json
from app.core.values.replies import ReplyStats
from app.core.values.sources import Source, sources_to_json


class Keeper:
    """The session's door to the conversation store (which may not be open yet, or at all)."""

    def __init__(self, tell: Callable[[SessionEvent], None], store: Store | None = None) -> None:
        self.store = store
        self._tell = tell

    def _safe(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except StoreError as exc:
            self._tell(StoreFailed(exc.message))
            return None

    def create(
        self, title: str, model_key: str | None, system_prompt: str, sampling: dict[str, Any], policy: str
    ) -> int | None:
        """A new conversation; its id, or None when it could not be stored."""
        if self.store is None:
            return None
        return self._safe(
            self.store.create_conversation,
            title=title,
            model=model_key,
            system_prompt=system_prompt,
            sampling=sampling,
            context_policy=policy,
        )

    def add(
        self,
        conversation_id: int,
        role: str,
        text: str,
        parent: int | None,
        *,
        incomplete: bool = False,
        attachments: Sequence[Attachment] = (),
    ) -> int | None:
        """A new message under `parent` (with the files attached to it); its id, or None."""
        if self.store is None:
            return None
        return self._safe(
            self.store.add_message, conversation_id, role, text, parent, incomplete=incomplete,
            attachments=attachments_to_json(attachments),
        )  # fmt: skip

    def text(self, message_id: int, text: str) -> None:
        """A streaming reply's text so far."""
        if self.store is not None:
            self._safe(self.store.update_message, message_id, content=text)

    def unfinished(self, message_id: int) -> None:
        """A reply is being written again (Continue)."""
        if self.store is not None:
            self._safe(self.store.update_message, message_id, incomplete=True)

    def finished(
        self, message_id: int, text: str, stats: ReplyStats | None, model_key: str | None, error: str | None
    ) -> None:
        """A reply's final text with its stats, or its error (which leaves it marked incomplete)."""
        if self.store is None:
            return
        self._safe(
            self.store.update_message,
            message_id,
            content=text,
            incomplete=error is not None,
            # Which model answered, with the figures: a conversation can change models between replies.
            stats={**asdict(stats), "model": model_key} if stats is not None else None,
            error=error,
        )

    def tool_calls(self, message_id: int, uses: list[ToolUse]) -> None:
        """A reply's tool calls, with the user's decisions and the results so far."""
        if self.store is not None:
            self._safe(self.store.update_message, message_id, tool_calls=uses_to_json(uses))

    def sources(self, message_id: int, sources: Sequence[Source]) -> None:
        """The passages of documents a question was given."""
        if self.store is not None:
            self._safe(self.store.update_message, message_id, sources=sources_to_json(sources) or "[]")

    def settings(self, conversation_id: int, changes: dict[str, Any]) -> None:
        """A conversation's system prompt, sampling, context policy or model."""
        if self.store is not None:
            self._safe(self.store.update_conversation, conversation_id, **changes)

    def versions(self, message_ids: list[int]) -> dict[int, tuple[int, int]]:
        """(version, count) of each message with alternatives."""
        return (self._safe(self.store.versions, message_ids) if self.store is not None else None) or {}

    def siblings(self, message_id: int) -> list[int]:
        """The versions of a message, oldest first."""
        return (self._safe(self.store.siblings, message_id) if self.store is not None else None) or []

    def switch_branch(self, message_id: int) -> None:
        """Show the branch through `message_id` from now on."""
        if self.store is not None:
            self._safe(self.store.switch_branch, message_id)

    def delete(self, message_id: int) -> None:
        """Delete a message and everything below it."""
        if self.store is not None:
            self._safe(self.store.delete_message, message_id)
