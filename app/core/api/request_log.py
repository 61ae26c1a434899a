"""What the API server records of each request, for its log panel and `fireside serve`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class RequestState(StrEnum):
    """Where a request is: waiting in the inference queue, generating, or answered."""

    QUEUED = "queued"
    GENERATING = "generating"
    DONE = "done"


@dataclass(slots=True)
class RequestLog:
    """One request, as the log panel and `fireside serve` show it."""

    at: float
    client: str
    method: str
    path: str
    request_id: int = 0
    status: int = 0
    model: str = ""
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_per_s: float = 0.0
    waited_s: float = 0.0
    duration_s: float = 0.0
    finish: str = ""
    #: The engine's StopReason value ("stopped_by_user" when the client went away).
    stop_reason: str = ""
    error: str = ""
    state: RequestState = RequestState.DONE

    def line(self) -> str:
        """One line for a log view: time, request, outcome, speed."""
        when = time.strftime("%H:%M:%S", time.localtime(self.at))
        head = f"{when}  {self.client}  {self.method} {self.path}"
        if self.state != RequestState.DONE:
            return f"{head}  {self.state}…"
        if self.error:
            return f"{head}  {self.status}  {self.error}"
        parts = [f"{head}  {self.status}"]
        if self.completion_tokens:
            parts.append(
                f"{self.prompt_tokens}+{self.completion_tokens} tokens, {self.tokens_per_s:.1f} tok/s, "
                f"{self.duration_s:.2f} s"
            )
            if self.waited_s >= 0.05:
                parts.append(f"waited {self.waited_s:.1f} s in the queue")
            if self.finish and self.finish != "stop":
                parts.append(f"finish: {self.finish}")
        return "  ".join(parts)


#: Called (on the server's thread) as each request is queued, starts and ends.
LogListener = Callable[[RequestLog], None]
