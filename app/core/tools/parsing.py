"""A model's reply read back as text and tool calls, as it streams.

Every common syntax is read, whichever the model's template suggests: Hermes and Qwen's
<tool_call> blocks, Mistral's [TOOL_CALLS] list, Llama 3's bare JSON (after <|python_tag|> or not),
and a reply that is nothing but a JSON call. Text that might begin a call is held back until it is
clear; a would-be call that does not parse, or names a tool the request did not offer, is shown as
the text it was, so nothing the model wrote is lost.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from app.core.tools.calls import ToolCall, new_call_id

#: A <tool_call> block: its opening and closing tags.
HERMES_OPEN, HERMES_CLOSE = "<tool_call>", "</tool_call>"
#: Markers after which the rest of the reply is calls.
TAIL_MARKERS = ("[TOOL_CALLS]", "<|python_tag|>")
_MARKERS = (HERMES_OPEN, *TAIL_MARKERS)

#: What a reader hands back: text to show, or a whole call.
Piece = str | ToolCall


class CallReader:
    """Reads one reply, piece by piece, into text and calls to the tools named `names`."""

    def __init__(self, names: Collection[str], parallel: bool = True) -> None:
        self._names = frozenset(names)
        self._parallel = parallel
        self._held = ""
        #: "text", "block" (inside a <tool_call> block) or "tail" (the rest of the reply is calls).
        self._mode = "text"
        self._shown = False  # text other than white space has been shown
        self._called = False  # a call has been read (white space after one is not shown)
        self.calls: list[ToolCall] = []
        self.text = ""  # all the text shown

    def feed(self, text: str) -> list[Piece]:
        """What `text` (the reply's next piece) makes clear: text to show and finished calls."""
        self._held += text
        out: list[Piece] = []
        while self._step(out):
            pass
        return self._shown_out(out)

    def finish(self) -> list[Piece]:
        """The rest, at the reply's end: a call left open is read as far as it goes."""
        out: list[Piece] = []
        held, self._held = self._held, ""
        if self._mode == "block":
            self._block(held, out, closed=False)
        elif self._mode == "tail":
            self._tail(held, out)
        elif held and (held.strip() or not self._called):
            out.append(held)
        self._mode = "text"
        return self._shown_out(out)

    # ----- states -------------------------------------------------------------------------

    def _step(self, out: list[Piece]) -> bool:
        """Move on through the held text; False when more must come first."""
        held = self._held
        if self._mode == "block":
            end = held.find(HERMES_CLOSE)
            if end < 0:
                return False
            self._held = held[end + len(HERMES_CLOSE) :]
            self._mode = "text"
            self._block(held[:end], out, closed=True)
            return True
        if self._mode == "tail":
            return False
        if not self._shown and not self._called:
            stripped = held.lstrip()
            if not stripped:
                return False  # only white space so far
            if stripped[0] in "{[":  # a reply that opens with JSON may be a bare call: wait for the end
                self._mode = "tail"
                return False
        found = [(held.find(m), m) for m in _MARKERS if m in held]
        if found:
            at, marker = min(found)
            self._text(held[:at], out)
            if marker == HERMES_OPEN:
                self._held, self._mode = held[at + len(marker) :], "block"
            else:
                self._held, self._mode = held[at:], "tail"
            return True
        keep = _partial_marker(held)
        if self._called and not held[: len(held) - keep].strip():
            return False  # white space between or after calls: shown only if text follows
        self._text(held[: len(held) - keep], out)
        self._held = held[len(held) - keep :]
        return False

    def _text(self, text: str, out: list[Piece]) -> None:
        if not text:
            return
        if self._called and not text.strip():
            return  # the white space between calls
        out.append(text)
        self._shown = self._shown or bool(text.strip())  # (a JSON call must open the reply)

    def _block(self, body: str, out: list[Piece], closed: bool) -> None:
        calls = _calls_in(body, self._names)
        if calls is None:  # not a call after all: the model's text, as it wrote it
            out.append(HERMES_OPEN + body + (HERMES_CLOSE if closed else ""))
        else:
            out.extend(calls)
            self._called = True

    def _tail(self, body: str, out: list[Piece]) -> None:
        text = body
        for marker in TAIL_MARKERS:
            if text.lstrip().startswith(marker):
                text = text.lstrip()[len(marker) :]
                break
        calls = _calls_in(text, self._names) or _mistral_v11(text, self._names)
        if calls is None:
            out.append(body)
        else:
            out.extend(calls)
            self._called = True

    def _shown_out(self, out: list[Piece]) -> list[Piece]:
        """`out` with calls past the first dropped when calls may not be parallel, noted as shown."""
        kept: list[Piece] = []
        for piece in out:
            if isinstance(piece, ToolCall):
                if self.calls and not self._parallel:
                    continue  # parallel_tool_calls: false asks for one call at most
                self.calls.append(piece)
            else:
                self.text += piece
                self._shown = self._shown or bool(piece.strip())
            kept.append(piece)
        return kept


def read_calls(text: str, names: Collection[str], parallel: bool = True) -> tuple[str, list[ToolCall]]:
    """A whole reply as (its text, its calls)."""
    reader = CallReader(names, parallel)
    reader.feed(text)
    reader.finish()
    return reader.text, reader.calls


def _partial_marker(text: str) -> int:
    """How many characters at the end of `text` might begin a marker."""
    for size in range(min(len(text), max(len(m) for m in _MARKERS) - 1), 0, -1):
        tail = text[-size:]
        if any(m.startswith(tail) for m in _MARKERS):
            return size
    return 0


def _json_values(text: str) -> list[Any] | None:
    """The JSON values `text` holds one after another (separated by white space, commas or
    semicolons), or None when it holds anything else."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,;":
            pos += 1
        if pos == len(text):
            return values or None
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return None
        values.append(value)


def _calls_in(text: str, names: frozenset[str]) -> list[ToolCall] | None:
    """The calls `text` is made of (JSON objects, or lists of them), or None when it is not
    only calls to tools in `names`."""
    values = _json_values(text)
    if values is None:
        return None
    items = [item for value in values for item in (value if isinstance(value, list) else [value])]
    calls = [_call(item, names) for item in items]
    if not calls or any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


def _call(item: Any, names: frozenset[str]) -> ToolCall | None:
    """One call object ({"name", "arguments" or "parameters"}, or OpenAI's {"function": {…}})."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str) or name not in names:
        return None
    arguments = item.get("arguments", item.get("parameters", {}))
    if isinstance(arguments, str):  # some models write them as JSON text, as OpenAI sends them
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(new_call_id(), name, json.dumps(arguments, ensure_ascii=False))


def _mistral_v11(text: str, names: frozenset[str]) -> list[ToolCall] | None:
    """Mistral's newer syntax: name[ARGS]{…}, for each call after its own [TOOL_CALLS]."""
    calls = []
    for part in text.split("[TOOL_CALLS]"):
        name, sep, arguments = part.strip().partition("[ARGS]")
        if not sep:
            return None
        call = _call({"name": name.strip(), "arguments": arguments}, names)
        if call is None:
            return None
        calls.append(call)
    return calls or None
