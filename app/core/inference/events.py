"""What the inference thread reports: one event type per outcome, each naming its request.

Front ends receive these through an `EventSink` (see app.core.inference.thread). They are plain,
frozen values so they can cross threads (the Qt bridge re-emits them as signals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from app.core.inference.draft_model import DraftInfo
from app.core.inference.embedder import Embeddings
from app.core.inference.embedding_model import EmbeddingModelInfo
from app.core.inference.options import LoadedModel
from app.core.remote.client import RemoteErrorKind
from app.core.tools.calls import ToolCall
from app.core.values.logprobs import TokenLogprob
from app.core.values.replies import ReplyStats


class FailureCode(StrEnum):
    """Why a local reply failed (a remote one fails with its RemoteErrorKind instead)."""

    CONTEXT_FULL = "context_full"
    INVALID = "invalid"  # bad sampling parameters
    NO_MODEL = "no_model"
    ENGINE = "engine"


@dataclass(frozen=True, slots=True)
class Event:
    """Base of everything the inference thread reports; `request_id` says which request it belongs to."""

    request_id: int


@dataclass(frozen=True, slots=True)
class LoadProgress(Event):
    """Loading advanced to `fraction` (0..1)."""

    fraction: float


@dataclass(frozen=True, slots=True)
class Loaded(Event):
    """The model is loaded and ready."""

    model: LoadedModel


@dataclass(frozen=True, slots=True)
class LoadFailed(Event):
    """Loading failed; `message` is for the user and names the file.

    `kept` is the model still loaded (a file refused before loading leaves the previous one in
    place), or None when no model is loaded any more.
    """

    path: Path
    message: str
    kept: LoadedModel | None = None


@dataclass(frozen=True, slots=True)
class Unloaded(Event):
    """The model was freed."""


@dataclass(frozen=True, slots=True)
class Started(Event):
    """A queued reply left the queue and is being generated; `waited_s` is how long it waited."""

    waited_s: float


@dataclass(frozen=True, slots=True)
class Chunk(Event):
    """New text of a streaming reply (several tokens' worth, coalesced), with its tokens' log
    probabilities when the request asked for them."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyDone(Event):
    """A reply ended (for any StopReason); its full text and statistics."""

    text: str
    stats: ReplyStats
    #: Every token's log probability, when the request asked for them.
    logprobs: tuple[TokenLogprob, ...] = ()
    #: The tool calls of a remote engine's reply (a local reply's are read from its text).
    calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyFailed(Event):
    """A reply could not be generated; `text` is what had been produced before the failure.

    `code` says why, for front ends that answer differently: a FailureCode for a local reply, or
    the RemoteErrorKind of a remote one ("unreachable", "auth", "cut", ...). Both are StrEnums, so
    `code == "cut"` holds and the value crosses a Qt `str` signal as it is.
    """

    text: str
    message: str
    code: FailureCode | RemoteErrorKind = FailureCode.ENGINE


@dataclass(frozen=True, slots=True)
class ContextTrimmed(Event):
    """Earlier turns were left out so the reply fits the context; `dropped` indexes the turns sent."""

    dropped: tuple[int, ...]
    tokens: int


@dataclass(frozen=True, slots=True)
class Counted(Event):
    """How many tokens some messages take with the loaded model (for the context meter)."""

    tokens: int
    context_length: int


@dataclass(frozen=True, slots=True)
class Embedded(Event):
    """The embeddings an EmbedRequest asked for."""

    embeddings: Embeddings


@dataclass(frozen=True, slots=True)
class EmbedFailed(Event):
    """Embedding failed; `index` is the input at fault (None: none in particular)."""

    message: str
    code: FailureCode
    index: int | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingModelLoaded(Event):
    """The embedding model asked for is kept loaded (None: embeddings come from the chat model again)."""

    model: EmbeddingModelInfo | None


@dataclass(frozen=True, slots=True)
class EmbeddingModelFailed(Event):
    """The embedding model could not be loaded (the one before, if any, stays); `message` says why."""

    message: str


@dataclass(frozen=True, slots=True)
class SpeculationSet(Event):
    """Speculative decoding is set as asked: `mode` (a SpeculationMode's value) and the draft model
    open for the loaded model (None: none, or no model is loaded yet); `message` says why the draft
    model asked for is not used (the one before stays), else None."""

    mode: str
    draft: DraftInfo | None
    message: str | None = None


#: Receives the events of the requests it was given for (called on the inference thread).
EventSink = Callable[[Event], None]
