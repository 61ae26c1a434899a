"""Stop strings (an API request's `stop`) found in streamed text, across the pieces it comes in."""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Finds stop strings in streamed text, holding back only what could be the start of one."""

    __slots__ = ("_held", "_stops")

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """(text safe to show, whether a stop string was reached); the stop string itself is dropped."""
        buffer = self._held + text
        hits = [i for i in (buffer.find(s) for s in self._stops) if i >= 0]
        if hits:
            self._held = ""
            return buffer[: min(hits)], True
        keep = 0  # the longest end of the buffer that begins some stop string
        for stop_string in self._stops:
            for k in range(min(len(stop_string) - 1, len(buffer)), keep, -1):
                if buffer.endswith(stop_string[:k]):
                    keep = k
                    break
        self._held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep], False

    def finish(self, tail: str = "") -> str:
        """What is still held (plus `tail`), up to any stop string in it: the reply ended without one."""
        text, _hit = self.feed(tail)
        held, self._held = self._held, ""
        return text if _hit else text + held
