"""What the chat session tells its listeners (the window, a test): plain values, no Qt."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.inference.context_policy import ContextPolicy
from app.core.values.replies import ReplyStats


@dataclass(frozen=True, slots=True)
class Opened:
    """Another conversation is shown (None: a new, empty one); its settings are the session's now."""

    conversation_id: int | None
    model_key: str | None = None


@dataclass(frozen=True, slots=True)
class Saved:
    """The open conversation was created or changed in the store (the list of conversations moved)."""

    conversation_id: int


@dataclass(frozen=True, slots=True)
class ReplyStateChanged:
    """A reply started, began generating after waiting, or ended (`generating` False)."""

    generating: bool
    #: Requests ahead of it (API clients): it waits for them first.
    waiting: int = 0
    remote: bool = False


@dataclass(frozen=True, slots=True)
class Trimmed:
    """The context policy left out `dropped` earlier messages to fit the reply (`tokens` were sent)."""

    dropped: int
    tokens: int
    policy: ContextPolicy


@dataclass(frozen=True, slots=True)
class ReplyEnded:
    """A reply ended: with stats, or with an error (`message`, `code`); `row` is -1 when detached."""

    request_id: int
    conversation_id: int | None
    row: int
    text: str
    stats: ReplyStats | None
    remote: bool
    message: str = ""
    code: str = ""

    @property
    def failed(self) -> bool:
        """True when it ended with an error."""
        return self.stats is None


@dataclass(frozen=True, slots=True)
class StoreFailed:
    """The store could not save or read; chat goes on, and `message` says why."""

    message: str


@dataclass(frozen=True, slots=True)
class ToolsChanged:
    """A tool call of the shown conversation appeared, was decided, or got its result."""


@dataclass(frozen=True, slots=True)
class Warned:
    """Something the user should know about the reply that started (it goes on): `message` says what."""

    message: str


SessionEvent = Opened | Saved | ReplyStateChanged | Trimmed | ReplyEnded | StoreFailed | ToolsChanged | Warned
