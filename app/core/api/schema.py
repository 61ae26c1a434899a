"""The OpenAI request bodies the local API server accepts, validated with pydantic.

Nothing a client sends is silently ignored. Only what Fireside honours is modelled; a field OpenAI
defines that Fireside does not do yet (`audio`, `prediction`, ...) is refused by name unless its
value changes nothing (null, `[]`, `false`, `"none"`, ...), and a field nobody defines (a typo,
another server's extension) is refused as OpenAI's own API does. Ranges follow OpenAI's API where
it has them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.core.api.errors import ApiError
from app.core.api.image_fetch import fetching_off
from app.core.api.structured import ResponseFormat
from app.core.api.tool_schema import MessageToolCall, ToolChoice, ToolDef, ToolPlan, tool_plan
from app.core.media.images import ImageSource, image_part
from app.core.values.sampling import RANDOM_SEED, RANGES, SamplingParams
from app.core.values.text import clean_text

#: The longest reply a request may ask for (the engine's own limit; see sampling.RANGES).
MAX_TOKENS_LIMIT = int(RANGES["max_tokens"].maximum)
#: OpenAI allows 4 stop sequences; llama.cpp servers allow more. A few dozen is plenty.
MAX_STOP_STRINGS = 16
#: The most choices (`n`) one request may ask for: they share the sequences with everyone else.
MAX_CHOICES = 16
#: The most tokens `logit_bias` may name (OpenAI's limit).
MAX_LOGIT_BIAS = 300
#: The most alternatives `top_logprobs` may ask for per token (OpenAI's limit).
MAX_TOP_LOGPROBS = 20


#: Fields of OpenAI's chat API that Fireside does not honour yet, each with the values that change
#: nothing (null always does): those are accepted, anything else is refused by name.
CHAT_NOT_YET: dict[str, tuple[object, ...]] = {
    # OpenAI's deprecated names for tools and tool_choice.
    "functions": ([],),
    "function_call": ("none", "auto"),
    "audio": (),
    "modalities": (["text"],),
    "prediction": (),
    "store": (False,),
    "metadata": ({},),
    "service_tier": ("auto", "default"),
    "reasoning_effort": (),
    "verbosity": (),
    "web_search_options": (),
}
#: The same for the text completions API.
COMPLETION_NOT_YET: dict[str, tuple[object, ...]] = {
    "echo": (False,),
    "best_of": (1,),
    "suffix": ("",),
}
#: Fields of a chat message Fireside does not honour yet (tool calling, names, audio).
MESSAGE_NOT_YET: dict[str, tuple[object, ...]] = {
    "name": (),
    "function_call": (),
    "audio": (),
    "refusal": (),
}
#: What a refused field is for, so the error can say what is missing.
_WHAT = {
    "functions": "the deprecated function calling: use tools",
    "function_call": "the deprecated function calling: use tools and tool_calls",
    "audio": "audio",
    "modalities": "output other than text",
    "name": "participant names",
}


def refuse_not_yet(data: Any, table: dict[str, tuple[object, ...]], where: str = "") -> Any:
    """Raise an ApiError naming the first field of `table` whose value would change the reply;
    return `data` without those fields (what is left of them changes nothing)."""
    if not isinstance(data, dict):
        return data
    for key, harmless in table.items():
        if key not in data:
            continue
        value = data[key]
        if value is not None and not any(_same(value, ok) for ok in harmless):
            name = f"{where}{key}"
            what = _WHAT.get(key)
            purpose = f" ({what})" if what else ""
            raise ApiError(
                400,
                f"“{name}” is not supported yet{purpose}: Fireside does not honour it, so it refuses "
                f"the request rather than answer as if it had. Leave it out.",
                "unsupported_parameter",
                name,
            )
    return {key: value for key, value in data.items() if key not in table}


def _same(value: object, harmless: object) -> bool:
    # True == 1 in Python: a JSON `true` must not pass for a harmless `1` (or `false` for `0`).
    return type(value) is type(harmless) and value == harmless


def find_lone_surrogate(data: object, where: str = "") -> tuple[str, int, str] | None:
    """The first string of a parsed JSON body that holds a lone UTF-16 surrogate, as (where, index,
    the surrogate), or None. JSON allows "\\ud800", but it is not Unicode: it can be neither encoded
    for the model nor stored."""
    if isinstance(data, str):
        index = _lone_surrogate(data)
        return None if index is None else (where, index, data[index])
    if isinstance(data, list):
        for i, item in enumerate(data):
            if (found := find_lone_surrogate(item, f"{where}[{i}]")) is not None:
                return found
    elif isinstance(data, dict):
        for key, value in data.items():
            shown = clean_text(key)  # a key holding one is named with U+FFFD in its place
            path = f"{where}.{shown}" if where else shown
            if (index := _lone_surrogate(key)) is not None:
                return f"{path} (the name of the field)", index, key[index]
            if (found := find_lone_surrogate(value, path)) is not None:
                return found
    return None


def _lone_surrogate(text: str) -> int | None:
    try:
        text.encode("utf-8")  # decided in C: almost every string is fine
        return None
    except UnicodeEncodeError as exc:
        return exc.start


class ImageUrl(BaseModel):
    """An image_url part's image: a data: URL (http(s) addresses are refused: fetching is traffic)."""

    model_config = ConfigDict(extra="forbid")
    url: str
    #: OpenAI's resolution hint; Fireside gives the projector the image as it is (scaled to fit).
    detail: Literal["auto"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _detail_honoured(cls, data: Any) -> Any:
        # Refused by name, before the union of content types turns it into a vaguer error.
        if isinstance(data, dict) and data.get("detail", "auto") != "auto":
            raise ApiError(
                400,
                f"image_url.detail “{data.get('detail')}” is not honoured: the projector reads each "
                "image at its own resolution. Leave detail out, or send “auto”.",
                "unsupported_parameter",
                "messages",
            )
        return data


class TextPart(BaseModel):
    """One part of a message's content given as a list: text, or an image (image_url)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "image_url"]
    text: str = ""
    image_url: ImageUrl | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_kind(cls, data: Any) -> Any:
        # Checked before the fields, so an audio or file part is refused for its type.
        if isinstance(data, dict) and data.get("type") not in ("text", "image_url"):
            raise ApiError(
                400,
                f"Message content of type “{data.get('type')}” is not supported: Fireside reads text "
                "and images (image_url parts).",
                "unsupported_content",
                "messages",
            )
        return data

    @model_validator(mode="after")
    def _its_field(self) -> TextPart:
        if self.type == "image_url" and self.image_url is None:
            raise ValueError("an image_url part needs its image_url")
        if self.type == "text" and self.image_url is not None:
            raise ValueError("a text part carries no image_url")
        return self


class ChatMessage(BaseModel):
    """One message of a chat request: a turn, an assistant's tool calls, or a tool's result."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    #: The calls an assistant message made, and the call a tool message answers.
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _fields_of_its_role(self) -> ChatMessage:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError("only tool messages carry a tool_call_id")
        return self

    def text(self) -> str:
        """The content as plain text (a list of text parts is joined; images left out)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if part.type == "text")

    def engine_content(self, index: int, fetched: Mapping[str, bytes] | None = None) -> Any:
        """The content as the engine takes it: a string, or text and image parts (ApiError naming
        a part whose image is not a data: URL the engine can read)."""
        if not isinstance(self.content, list) or all(part.type == "text" for part in self.content):
            return self.text()
        parts: list[dict[str, Any]] = []
        for number, part in enumerate(self.content):
            if part.image_url is None:
                parts.append({"type": "text", "text": part.text})
                continue
            where = f"messages[{index}].content[{number}].image_url.url"
            url = part.image_url.url
            data = fetched[url] if fetched and url in fetched else _data_url_bytes(url, where)
            parts.append(image_part(ImageSource(data, where)))
        return parts


class StreamOptions(BaseModel):
    """`stream_options`: whether the last streamed chunk carries the usage counts."""

    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False

    @model_validator(mode="before")
    @classmethod
    def _plain_chunks(cls, data: Any) -> Any:
        # OpenAI pads chunks with random text against side channels; local chunks need none.
        return refuse_not_yet(data, {"include_obfuscation": (False,)}, "stream_options.")


class _Sampling(BaseModel):
    """Fields shared by chat and text completions."""

    model_config = ConfigDict(extra="forbid")
    #: Not yet honoured fields of this endpoint, with their harmless values (see refuse_not_yet).
    not_yet: ClassVar[dict[str, tuple[object, ...]]] = {}
    model: str = ""
    #: Identify the end user to OpenAI's abuse monitoring: they change nothing in a reply, so they are
    #: accepted (and not used).
    user: str | None = None
    safety_identifier: str | None = None
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
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    #: {token id: bias from -100 to 100} added to those tokens' logits; -100 bans a token.
    logit_bias: dict[str, float] | None = None
    #: LM Studio's field: seconds the model, if loaded for this request, stays loaded while unused.
    ttl: int | None = Field(default=None, ge=1, le=86_400)

    @model_validator(mode="before")
    @classmethod
    def _refuse_not_yet(cls, data: Any) -> Any:
        return refuse_not_yet(data, cls.not_yet)

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_STRINGS:
            raise ValueError(f"at most {MAX_STOP_STRINGS} stop sequences are allowed")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _token_biases(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return value
        if len(value) > MAX_LOGIT_BIAS:
            raise ValueError(f"at most {MAX_LOGIT_BIAS} tokens may be biased")
        for token, bias in value.items():
            if not token.isascii() or not token.isdigit():
                raise ValueError(f'“{token}” is not a token id: the keys are token ids, such as "1234"')
            if not -100 <= bias <= 100:
                raise ValueError(f"the bias of token {token} is {bias}; biases go from -100 to 100")
        return value

    def token_biases(self) -> tuple[tuple[int, float], ...]:
        """`logit_bias` as (token, bias) pairs (the engine checks the tokens against the vocabulary)."""
        return tuple((int(token), float(bias)) for token, bias in (self.logit_bias or {}).items())

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

    not_yet = CHAT_NOT_YET
    messages: list[ChatMessage] = Field(min_length=1)
    # OpenAI's newer name for max_tokens.
    max_completion_tokens: int | None = Field(default=None, ge=1)
    #: Names the conversation (OpenAI: "used to cache responses for similar requests"): its KV cache
    #: is kept for it in a sequence of its own, and, in the window's server, on disk when it must go.
    prompt_cache_key: str | None = Field(default=None, min_length=1, max_length=256)
    #: Structured output: JSON, or JSON of a schema, enforced token by token (see structured.py).
    response_format: ResponseFormat | None = None
    #: Each token's log probability in the reply, with `top_logprobs` likeliest alternatives.
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    #: Functions the model may call, whether (and which) it must, and whether more than one at once.
    tools: list[ToolDef] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None

    @model_validator(mode="after")
    def _results_answer_calls(self) -> ChatRequest:
        calls: set[str] = set()
        for index, message in enumerate(self.messages):
            calls.update(call.id for call in message.tool_calls or ())
            if message.role == "tool" and message.tool_call_id not in calls:
                where = f"messages[{index}].tool_call_id"
                raise ApiError(
                    400,
                    f"{where}: “{message.tool_call_id}” answers no call: a tool message must follow "
                    "an assistant message whose tool_calls hold that id.",
                    "invalid_value",
                    where,
                )
        return self

    def tool_plan(self) -> ToolPlan | None:
        """What the tool fields ask of the reply (None: no tools). Raises ApiError."""
        plan = tool_plan(self.tools, self.tool_choice, self.parallel_tool_calls)
        if plan is None:
            return None
        if self.response_format is not None and self.response_format.type != "text":
            raise ApiError(
                400, "response_format cannot be combined with tools yet: both would constrain the "
                "reply. Leave one out (or set tool_choice to “none”).", "unsupported_parameter",
                "response_format",
            )  # fmt: skip
        if self.logprobs:
            raise ApiError(
                400, "logprobs cannot be combined with tools yet: leave it out, or set tool_choice "
                "to “none”.", "unsupported_parameter", "logprobs",
            )  # fmt: skip
        return plan

    @model_validator(mode="after")
    def _top_needs_logprobs(self) -> ChatRequest:
        if self.top_logprobs and not self.logprobs:
            raise ApiError(
                400, "top_logprobs needs logprobs: true (it says how many alternatives to list).",
                "invalid_value", "top_logprobs",
            )  # fmt: skip
        return self

    def top_logprob_count(self) -> int | None:
        """How many alternatives to report per token (None: no log probabilities)."""
        return (self.top_logprobs or 0) if self.logprobs else None

    @model_validator(mode="before")
    @classmethod
    def _refuse_in_messages(cls, data: Any) -> Any:
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list):
            return data
        cleaned = []
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") == "function":
                raise ApiError(
                    400,
                    f"messages[{index}].role: “function” messages are OpenAI's deprecated function "
                    "calling, which Fireside does not honour: send tool results as “tool” messages.",
                    "unsupported_parameter",
                    f"messages[{index}].role",
                )
            cleaned.append(refuse_not_yet(message, MESSAGE_NOT_YET, f"messages[{index}]."))
        return {**data, "messages": cleaned}

    def model_post_init(self, _context: object) -> None:
        """Read max_completion_tokens where max_tokens is not given."""
        if self.max_tokens is None and self.max_completion_tokens is not None:
            self.max_tokens = self.max_completion_tokens

    def grammar(self) -> str | None:
        """The grammar `response_format` asks for (None: free text). Raises ApiError."""
        return None if self.response_format is None else self.response_format.grammar()

    def cache_key(self) -> str | None:
        """The engine's cache key for `prompt_cache_key` (apart from the window's conversations)."""
        return None if self.prompt_cache_key is None else f"api:{self.prompt_cache_key}"

    def image_addresses(self) -> list[tuple[str, str]]:
        """(where, url) of every image given by an http(s) address (to be fetched, if allowed)."""
        found = []
        for index, message in enumerate(self.messages):
            if not isinstance(message.content, list):
                continue
            for number, part in enumerate(message.content):
                if part.image_url is not None and part.image_url.url.startswith(("http://", "https://")):
                    found.append((f"messages[{index}].content[{number}].image_url.url", part.image_url.url))
        return found

    def turns(self, fetched: Mapping[str, bytes] | None = None) -> list[dict[str, Any]]:
        """The messages as the engine takes them (OpenAI's "developer" role is a system message;
        calls and results kept in OpenAI's shape)."""
        out: list[dict[str, Any]] = []
        for message in self.messages:
            role = "system" if message.role == "developer" else message.role
            turn: dict[str, Any] = {"role": role, "content": message.engine_content(len(out), fetched)}
            if message.tool_calls:
                turn["tool_calls"] = [call.model_dump() for call in message.tool_calls]
            if message.tool_call_id is not None:
                turn["tool_call_id"] = message.tool_call_id
            out.append(turn)
        return out


class CompletionRequest(_Sampling):
    """POST /v1/completions (a plain text prompt, no chat template)."""

    not_yet = COMPLETION_NOT_YET
    prompt: str | list[str]
    #: Each token's log probability, with this many likeliest alternatives (OpenAI allows up to 5).
    logprobs: int | None = Field(default=None, ge=0, le=5)

    def top_logprob_count(self) -> int | None:
        """How many alternatives to report per token (None: no log probabilities)."""
        return self.logprobs

    def prompt_text(self) -> str:
        """The prompt; a list is accepted when it holds one string (one choice per request)."""
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise ApiError(400, "Send one prompt per request.", "unsupported_prompt", "prompt")
        return self.prompt[0]


def validation_error(exc: ValidationError) -> ApiError:
    """A pydantic error as one OpenAI-style error naming the first bad field (a field nobody defines
    first: it is often a typo of the one that was meant)."""
    errors = exc.errors()
    unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
    first = (unknown or errors)[0]
    where = _path(first.get("loc", ()))
    if unknown:
        return ApiError(
            400,
            f"Unrecognized request argument supplied: {where}. Fireside refuses fields it does not "
            "know rather than ignore them; see the README for the fields it honours.",
            "unknown_parameter",
            where,
        )
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return ApiError(400, f"{where}: {message}" if where else message, "invalid_value", where or None)


def _path(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as a JSON path: messages[0].content[1].kind."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[TextPart]") or part.startswith(("function-", "union[", "literal[")):
            continue  # which branch of a union pydantic tried, not a place in the body
        elif part[:1].isupper():
            continue  # a union branch's model (NamedChoice): OpenAI's fields are all lower case
        else:
            out += f".{part}" if out else part
    return out


def _data_url_bytes(url: str, where: str) -> bytes:
    """The bytes of a base64 data: URL (ApiError naming `where` for anything else)."""
    if url.startswith(("http://", "https://")):
        raise fetching_off(where)  # fetched before the body is read, when allowed
    head, comma, body = url.partition(",")
    if not url.startswith("data:") or not comma or not head.endswith(";base64"):
        raise ApiError(400, f"{where}: an image must be a base64 data: URL.", "invalid_image_url", where)
    try:
        data = base64.b64decode(body, validate=True)
    except ValueError as exc:
        raise ApiError(
            400, f"{where}: the data: URL is not valid base64.", "invalid_image_url", where
        ) from exc
    if not data:
        raise ApiError(400, f"{where}: the image is empty.", "invalid_image_url", where)
    return data
