"""OpenAI's wire format: the bodies, stream chunks, finish reasons, usage and errors clients read.

Only the shapes live here; app.core.api.routes decides what to answer and when.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from app.core.api.schema import ApiError
from app.core.inference.events import FailureCode, ReplyFailed
from app.core.tools.calls import ToolCall
from app.core.values.logprobs import TokenChoice, TokenLogprob
from app.core.values.replies import ReplyStats, StopReason

#: OpenAI's finish_reason for each way a reply ends.
FINISH = {
    StopReason.END_OF_TURN: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.CONTEXT_FULL: "length",
    StopReason.USER: "stop",
}
#: ReplyFailed codes and how they are answered: (HTTP status, error code, error type). Any other
#: code (the engine failed) is a 500.
FAILURES: dict[str, tuple[int, str, str]] = {
    FailureCode.CONTEXT_FULL: (400, "context_length_exceeded", "invalid_request_error"),
    FailureCode.INVALID: (400, "invalid_value", "invalid_request_error"),
    FailureCode.NO_MODEL: (404, "model_not_found", "invalid_request_error"),
}
#: The last event of a stream that ended (OpenAI clients stop reading there).
DONE = "data: [DONE]\n\n"


def ident(chat: bool) -> str:
    """A new id for a reply ("chatcmpl-…" or "cmpl-…")."""
    return ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)


def usage(stats: ReplyStats) -> dict[str, Any]:
    """The `usage` object: tokens in the prompt (and of them, those whose KV cache was kept from
    before, not read again), in the reply, and both."""
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "total_tokens": stats.prompt_tokens + stats.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": stats.prompt_tokens - stats.prompt_tokens_evaluated},
    }


def failure(event: ReplyFailed) -> ApiError:
    """The error a failed reply is answered with."""
    status, code, kind = FAILURES.get(event.code, (500, "generation_failed", "server_error"))
    return ApiError(status, event.message, code, kind=kind)


def shutdown_error(tokens: int) -> ApiError:
    """The error for a reply cut after `tokens` tokens because the server is stopping."""
    return ApiError(
        503,
        f"The Fireside API server is shutting down; the reply was cut after {tokens} tokens.",
        "server_shutting_down",
        kind="server_error",
    )


def error_response(exc: ApiError) -> JSONResponse:
    """An error as OpenAI sends it (a 401 also names the scheme it wants)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def sse(body: dict[str, Any]) -> str:
    """One server-sent event carrying `body` as JSON."""
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _choice(choice: TokenChoice) -> dict[str, Any]:
    return {"token": choice.text, "logprob": choice.logprob, "bytes": list(choice.raw)}


def chat_logprobs(entries: Sequence[TokenLogprob]) -> dict[str, Any]:
    """A chat choice's `logprobs`: each token with its bytes, log probability and alternatives."""
    content = [{**_choice(e.chosen), "top_logprobs": [_choice(t) for t in e.top]} for e in entries]
    return {"content": content, "refusal": None}


def completion_logprobs(entries: Sequence[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """A text completion's `logprobs` (the older format): tokens, their log probabilities, the
    alternatives as {token: logprob}, and where each token starts in the text (from `offset`)."""
    offsets = []
    for entry in entries:
        offsets.append(offset)
        offset += len(entry.chosen.text)
    return {
        "tokens": [e.chosen.text for e in entries],
        "token_logprobs": [e.chosen.logprob for e in entries],
        "top_logprobs": [{t.text: t.logprob for t in e.top} for e in entries],
        "text_offset": offsets,
    }


def logprobs(chat: bool, entries: Sequence[TokenLogprob] | None, offset: int = 0) -> dict[str, Any] | None:
    """A choice's `logprobs` in the endpoint's format (None when the request did not ask)."""
    if entries is None:
        return None
    return chat_logprobs(entries) if chat else completion_logprobs(entries, offset)


@dataclass(frozen=True, slots=True)
class Answer:
    """One choice of a whole reply: its text, how it ended, its tokens' log probabilities (None:
    not asked for) and the tool calls it made (None: no tools were offered)."""

    text: str
    reason: StopReason
    logprobs: Sequence[TokenLogprob] | None = None
    calls: Sequence[ToolCall] | None = None

    def finish_reason(self) -> str:
        """OpenAI's finish_reason ("tool_calls" when the reply is calls)."""
        # A reply cut by max_tokens stays "length", as OpenAI's, even if a call was read from it.
        if self.calls and self.reason not in (StopReason.MAX_TOKENS, StopReason.CONTEXT_FULL):
            return "tool_calls"
        return FINISH[self.reason]

    def message(self) -> dict[str, Any]:
        """The chat choice's assistant message (no text but calls: content null, as OpenAI's)."""
        if self.calls is None:
            return {"role": "assistant", "content": self.text}
        content = self.text if self.text.strip() or not self.calls else None
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self.calls:
            message["tool_calls"] = [call.openai() for call in self.calls]
        return message


def completion(
    chat: bool, model: str, created: int, answers: Sequence[Answer], stats: ReplyStats
) -> dict[str, Any]:
    """A whole (not streamed) reply: a chat.completion or a text_completion, one choice per answer."""
    out = []
    for index, answer in enumerate(answers):
        choice: dict[str, Any] = {
            "index": index,
            "finish_reason": answer.finish_reason(),
            "logprobs": logprobs(chat, answer.logprobs),
        }
        if chat:
            choice["message"] = answer.message()
        else:
            choice["text"] = answer.text
        out.append(choice)
    return {
        "id": ident(chat),
        "object": "chat.completion" if chat else "text_completion",
        "created": created,
        "model": model,
        "choices": out,
        "usage": usage(stats),
    }


class StreamChunks:
    """The events of one streamed reply, as chat.completion.chunk or text_completion objects."""

    __slots__ = ("_chat", "_created", "_ident", "_kind", "_model")

    def __init__(self, chat: bool, model: str, created: int) -> None:
        self._chat = chat
        self._ident = ident(chat)
        self._kind = "chat.completion.chunk" if chat else "text_completion"
        self._created = created
        self._model = model

    def event(self, choice: dict[str, Any], **extra: Any) -> str:
        """One event holding `choice` (none when empty) and any `extra` fields (such as usage)."""
        payload = {"id": self._ident, "object": self._kind, "created": self._created, "model": self._model}
        payload["choices"] = [choice] if choice else []
        payload.update(extra)
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def piece(
        self, text: str, finish: str | None = None, index: int = 0, logprobs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Choice `index` carrying `text` (and its tokens' `logprobs`), or its last piece with its
        finish reason."""
        if self._chat:
            delta = {"content": text} if text or finish is None else {}
            return {"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
        return {"index": index, "text": text, "finish_reason": finish, "logprobs": logprobs}

    def call(self, call: ToolCall, position: int, index: int = 0) -> list[str]:
        """The events of a finished tool call, the `position`-th of choice `index`: its id and name,
        then its arguments (OpenAI's clients join the pieces by position)."""
        named = {
            "index": position,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        arguments = {"index": position, "function": {"arguments": call.arguments}}
        return [
            self.event(
                {"index": index, "delta": {"tool_calls": [named]}, "finish_reason": None, "logprobs": None}
            ),
            self.event(
                {
                    "index": index,
                    "delta": {"tool_calls": [arguments]},
                    "finish_reason": None,
                    "logprobs": None,
                }
            ),
        ]

    def role(self, index: int = 0) -> str:
        """The first event of a chat stream's choice, which names the role (as OpenAI's does)."""
        choice = {"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        return self.event(choice)
