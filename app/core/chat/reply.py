"""The reply being generated: where it goes, its state, and what the chat session needs of the inference
thread and of a runner for blocking reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.core.remote.client import RemoteTarget
from app.core.tools.calls import ToolSpec
from app.core.values.sampling import SamplingParams


class Generator(Protocol):
    """What the session needs of the inference thread (InferenceThread has it all)."""

    def generate(
        self,
        messages: list[dict[str, Any]],
        params: SamplingParams,
        policy: str | None = None,
        continue_last: bool = False,
        *,
        remote: RemoteTarget | None = None,
        cache_key: str | None = None,
        grammar: str | None = None,
        tools: list[ToolSpec] | None = None,
        grammar_triggers: tuple[str, ...] = (),
        adapters: Sequence[tuple[str, float]] = (),
    ) -> int:
        """Queue a reply; its events carry the returned request id."""

    def cancel(self, request_id: int) -> None:
        """Stop a reply before its next token."""

    def ahead(self, request_id: int) -> int:
        """How many replies must end before reply `request_id` can start (0: at once)."""


#: Runs `work` (a blocking read), then `done` with its result or `failed` with its exception (the
#: window's BackgroundTasks.run, which does it on a worker and answers on the GUI thread).
Runner = Callable[[Callable[[], Any], Callable[[Any], None], Callable[[BaseException], None]], object]


def run_now(
    work: Callable[[], Any], done: Callable[[Any], None], failed: Callable[[BaseException], None]
) -> None:
    """The default Runner: at once, on the caller's thread."""
    try:
        result = work()
    except Exception as exc:
        failed(exc)
        return
    done(result)


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where a reply is generated: the local model (remote None) or a remote engine's model; a local
    model's chat template tells how it calls tools."""

    model_key: str | None
    remote: RemoteTarget | None = None
    chat_template: str | None = None


@dataclass(slots=True)
class ActiveReply:
    """The reply being generated."""

    request_id: int
    #: Its row in the transcript, or -1 once another conversation is shown (it finishes in the store).
    row: int
    conversation_id: int | None
    message_id: int | None
    model_key: str | None
    remote: bool
    #: The text a continued reply already had (the engine reports only what it adds).
    prefix: str = ""
    #: The row of each message of the prompt it answers (to mark what the context policy left out).
    prompt_rows: list[int] = field(default_factory=list)
    saved_length: int = 0
    saved_at: float = 0.0
    #: Where it is generated (its tool calls' results go back there).
    target: ReplyTarget | None = None
    #: The tools it was offered, by name (its text is read for calls to them).
    tool_names: frozenset[str] = frozenset()
