"""What front ends queue on the inference thread: one request type per kind of work.

Only app.core.inference.thread builds and reads these; they carry a request's arguments from the
calling thread to the worker, with the event that cancels it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.inference.events import EventSink
from app.core.inference.options import LoadOptions
from app.core.remote.client import RemoteTarget
from app.core.tools.calls import ToolSpec
from app.core.values.sampling import SamplingParams


@dataclass(slots=True)
class LoadRequest:
    """Load the model at `path` (replacing the current one)."""

    request_id: int
    path: Path
    options: LoadOptions
    cancel: threading.Event


@dataclass(slots=True)
class GenerateRequest:
    """Generate a reply to `messages` (see InferenceThread.generate for the fields)."""

    request_id: int
    messages: list[dict[str, Any]]
    params: SamplingParams
    cancel: threading.Event
    #: A context policy (see app.core.inference.context_policy), or None to send everything as it is.
    policy: str | None = None
    #: Carry on writing the last (assistant) message instead of starting a new reply.
    continue_last: bool = False
    #: Strings that end the reply (not shown), and a plain-text prompt used instead of the chat template.
    stop: tuple[str, ...] = ()
    raw_prompt: str | None = None
    #: Generate on a remote engine instead of the loaded model.
    remote: RemoteTarget | None = None
    #: Where this request's events go (None: the thread's own sink), and its chunk interval.
    sink: EventSink | None = None
    coalesce_s: float | None = None
    queued_at: float = 0.0
    #: The conversation it continues: its KV cache is kept for it (in memory, then on disk).
    cache_key: str | None = None
    #: A GBNF grammar the reply must follow (structured output), or None; with `grammar_triggers`
    #: (regular expressions) it holds the reply only from where one matches.
    grammar: str | None = None
    #: (token, bias) added to those tokens' logits (-100 bans one).
    logit_bias: tuple[tuple[int, float], ...] = ()
    #: Report each token's log probability and this many likeliest alternatives (None: none).
    top_logprobs: int | None = None
    #: The tools the model is offered (in its prompt), or None.
    tools: tuple[ToolSpec, ...] | None = None
    grammar_triggers: tuple[str, ...] = ()
    #: LoRA adapters (path, scale) applied to the loaded model for this reply.
    adapters: tuple[tuple[str, float], ...] = ()


@dataclass(slots=True)
class CountRequest:
    """Count the tokens `messages` take with the loaded model."""

    request_id: int
    messages: list[dict[str, str]]


@dataclass(slots=True)
class EmbedRequest:
    """Embed `inputs` (strings, or token ids) with the loaded model; events go to `sink`."""

    request_id: int
    inputs: list[str | list[int]]
    sink: EventSink | None = None


@dataclass(slots=True)
class EmbeddingModelRequest:
    """Keep the embedding model at `path` loaded (None: unload it); events go to `sink`."""

    request_id: int
    path: Path | None
    sink: EventSink | None = None


@dataclass(slots=True)
class SpeculationRequest:
    """Guess replies ahead with `mode` (a SpeculationMode) and the draft model at `draft` (None:
    none); events go to `sink`."""

    request_id: int
    mode: str
    draft: Path | None
    sink: EventSink | None = None


@dataclass(slots=True)
class UnloadRequest:
    """Free the model."""

    request_id: int


#: Put on a queue to end the thread that reads it.
SHUTDOWN = object()
