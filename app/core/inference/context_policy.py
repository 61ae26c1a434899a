"""What to send when a conversation outgrows the context window, and what the user is told was left out.

Policies: "stop" (refuse with a clear message), "drop_oldest" (leave out the oldest turns, never the
system prompt or the new message), "keep_first_last" (keep the first exchange, which usually sets the
task, and the latest turns; leave out the middle). Tokens are counted with the loaded model's own
tokenizer and chat template (`count`), so the decision matches what llama.cpp will see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Chat = list[dict[str, str]]


class ContextPolicy(StrEnum):
    """What to do when a conversation outgrows the context window (stored by its value)."""

    STOP = "stop"
    DROP_OLDEST = "drop_oldest"
    KEEP_FIRST_LAST = "keep_first_last"

    @property
    def label(self) -> str:
        """The choice as the window offers it."""
        return {
            ContextPolicy.STOP: "Stop and tell me",
            ContextPolicy.DROP_OLDEST: "Leave out the oldest turns",
            ContextPolicy.KEEP_FIRST_LAST: "Keep the first and latest turns",
        }[self]

    @classmethod
    def read(cls, value: object) -> ContextPolicy:
        """The policy `value` names; anything else (a file from another version) is STOP."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.STOP


class ContextFull(Exception):
    """The next message cannot be sent under the chosen policy."""

    def __init__(self, needed: int, budget: int, message: str) -> None:
        super().__init__(message)
        self.needed = needed
        self.budget = budget
        self.message = message


@dataclass(frozen=True, slots=True)
class Fitted:
    """The messages to send, and which of the conversation's turns (indices into `turns`) were left out."""

    messages: Chat
    dropped: list[int]
    tokens: int


def _exchanges(turns: Chat) -> list[list[int]]:
    """Turn indices grouped into exchanges: a user message and the replies after it."""
    groups: list[list[int]] = []
    for i, turn in enumerate(turns):
        if turn["role"] == "user" or not groups:
            groups.append([i])
        else:
            groups[-1].append(i)
    return groups


def fit_messages(
    system: str, turns: Chat, count: Callable[[Chat], int], budget: int, policy: ContextPolicy | str
) -> Fitted:
    """Choose what to send: `turns` end with the new user message; `budget` is the context length
    minus the room kept for the reply. Raises ContextFull when nothing acceptable fits."""
    policy = ContextPolicy(policy)  # a stored value, or the enum itself

    def build(drop: set[int]) -> Chat:
        head = [{"role": "system", "content": system}] if system else []
        return head + [t for i, t in enumerate(turns) if i not in drop]

    needed = count(build(set()))
    if needed <= budget:
        return Fitted(build(set()), [], needed)
    if policy is ContextPolicy.STOP:
        raise ContextFull(
            needed, budget,
            f"This conversation needs {needed:,} tokens but {budget:,} fit (the context length minus "
            "room for the reply). Start a new conversation, raise the context length, or choose a "
            "context policy that leaves out earlier turns.",
        )  # fmt: skip
    groups = _exchanges(turns)
    # The last exchange holds the new message: it is always sent. keep_first_last also keeps the first.
    first = 1 if policy is ContextPolicy.KEEP_FIRST_LAST and len(groups) > 2 else 0
    droppable = groups[first:-1]

    def dropped_for(n: int) -> set[int]:
        return {i for group in droppable[:n] for i in group}

    # Fewest exchanges left out: binary search (leaving out more never needs more tokens).
    low, high = 1, len(droppable)
    best: tuple[set[int], int] | None = None
    while low <= high:
        middle = (low + high) // 2
        drop = dropped_for(middle)
        tokens = count(build(drop))
        if tokens <= budget:
            best = (drop, tokens)
            high = middle - 1
        else:
            low = middle + 1
    if best is None:
        kept = "the system prompt and your new message" + (" and the first exchange" if first else "")
        raise ContextFull(
            needed, budget,
            f"Even {kept} need more than the {budget:,} tokens that fit. Shorten the message or the system "
            "prompt, or raise the context length.",
        )  # fmt: skip
    drop, tokens = best
    return Fitted(build(drop), sorted(drop), tokens)
