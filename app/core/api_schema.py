"""The OpenAI request bodies the local API server accepts, validated with pydantic.

Only what Fireside can honour is modelled; unknown fields are ignored (clients send many: `user`,
`logit_bias`, ...), while a field Fireside understands but cannot do (`n` > 1, images) is refused
with a message instead of being silently dropped. Ranges follow OpenAI's API where it has them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.core.sampling import RANDOM_SEED, RANGES, SamplingParams

#: The longest reply a request may ask for (the engine's own limit; see sampling.RANGES).
MAX_TOKENS_LIMIT = int(RANGES["max_tokens"].maximum)
#: OpenAI allows 4 stop sequences; llama.cpp servers allow more. A few dozen is plenty.
MAX_STOP_STRINGS = 16


class ApiError(Exception):
    """An error answered in OpenAI's format: {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.kind = status, message, code, param, kind

    def body(self) -> dict[str, object]:
        """The JSON body OpenAI clients parse."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


class TextPart(BaseModel):
    """One part of a message's content given as a list (only text parts are supported)."""

    model_config = ConfigDict(extra="ignore")
    type: str
    text: str = ""


class ChatMessage(BaseModel):
    """One message of a chat request."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        """The content as plain text (a list of text parts is joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        for part in self.content:
            if part.type != "text":
                raise ApiError(
                    400,
                    f"Message content of type “{part.type}” is not supported: "
                    "the loaded model reads text only.",
                    "unsupported_content",
                    "messages",
                )
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    """`stream_options`: whether the last streamed chunk carries the usage counts."""

    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Sampling(BaseModel):
    """Fields shared by chat and text completions."""

    model_config = ConfigDict(extra="ignore")
    model: str = ""
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    # Not OpenAI's, but llama.cpp servers, vLLM and Ollama accept them: so does Fireside.
    top_k: int | None = Field(default=None, ge=0, le=int(RANGES["top_k"].maximum))
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(default=None, ge=1.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1)

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported: one model on one machine writes one reply at a time")
        return value

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_STRINGS:
            raise ValueError(f"at most {MAX_STOP_STRINGS} stop sequences are allowed")
        return value

    def stop_strings(self) -> tuple[str, ...]:
        """The stop sequences as a tuple (empty strings dropped)."""
        if self.stop is None:
            return ()
        items = [self.stop] if isinstance(self.stop, str) else self.stop
        return tuple(s for s in items if s)

    def include_usage(self) -> bool:
        """Whether a streamed reply ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)

    def sampling(self, defaults: SamplingParams, context_length: int) -> SamplingParams:
        """The request's settings over `defaults`, at the loaded context length (never resized by a
        request: that would reload the context under the window's feet)."""
        if self.max_tokens is not None and self.max_tokens > min(MAX_TOKENS_LIMIT, context_length):
            raise ApiError(
                400,
                f"max_tokens is {self.max_tokens:,}, more than this server allows: the context window "
                f"holds {context_length:,} tokens and a reply may be at most {MAX_TOKENS_LIMIT:,}.",
                "max_tokens_too_large",
                "max_tokens",
            )
        changes: dict[str, object] = {"context_length": context_length}
        for name in (
            "temperature",
            "top_p",
            "top_k",
            "min_p",
            "repeat_penalty",
            "frequency_penalty",
            "presence_penalty",
        ):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value
        # Without max_tokens a reply may fill the context, as with OpenAI's API.
        changes["max_tokens"] = self.max_tokens or min(MAX_TOKENS_LIMIT, context_length)
        # OpenAI takes any integer seed; llama.cpp takes 31 bits. Fold, so a given seed stays repeatable.
        changes["seed"] = RANDOM_SEED if self.seed is None else self.seed & 0x7FFFFFFF
        return defaults.with_changes(**changes)


class ChatRequest(_Sampling):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    # OpenAI's newer name for max_tokens.
    max_completion_tokens: int | None = Field(default=None, ge=1)

    def model_post_init(self, _context: object) -> None:
        """Read max_completion_tokens where max_tokens is not given."""
        if self.max_tokens is None and self.max_completion_tokens is not None:
            self.max_tokens = self.max_completion_tokens

    def turns(self) -> list[dict[str, str]]:
        """The messages as the engine takes them (OpenAI's "developer" role is a system message)."""
        out = []
        for message in self.messages:
            role = "system" if message.role == "developer" else message.role
            out.append({"role": role, "content": message.text()})
        return out


class CompletionRequest(_Sampling):
    """POST /v1/completions (a plain text prompt, no chat template)."""

    prompt: str | list[str]

    def prompt_text(self) -> str:
        """The prompt; a list is accepted when it holds one string (one choice per request)."""
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise ApiError(400, "Send one prompt per request.", "unsupported_prompt", "prompt")
        return self.prompt[0]


def validation_error(exc: ValidationError) -> ApiError:
    """A pydantic error as one OpenAI-style error naming the first bad field."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return ApiError(400, f"{where}: {message}" if where else message, "invalid_value", where or None)
