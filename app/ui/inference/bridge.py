"""The core inference thread's events as Qt signals (the only link between the two layers)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.core.inference.engine import Engine
from app.core.inference.events import (
    Chunk,
    ContextTrimmed,
    Counted,
    Event,
    Loaded,
    LoadFailed,
    LoadProgress,
    ReplyDone,
    ReplyFailed,
    Started,
    Unloaded,
)
from app.core.inference.kv_disk import KvDiskCache
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.remote.client import RemoteTarget
from app.core.values.sampling import SamplingParams


class InferenceBridge(QObject):
    """Owns the InferenceThread; re-emits its events as signals delivered on the GUI thread."""

    loadProgress = Signal(int, float)
    loaded = Signal(int, object)  # LoadedModel
    loadFailed = Signal(int, str, object)  # message, the LoadedModel still loaded or None
    unloaded = Signal(int)
    started = Signal(int, float)  # seconds the reply waited in the queue
    chunk = Signal(int, str)
    replyDone = Signal(int, str, object)  # ReplyStats
    replyFailed = Signal(int, str, str, str)  # text so far, message, code (ReplyFailed.code)
    contextTrimmed = Signal(int, object, int)  # dropped turn indices, tokens sent
    counted = Signal(int, int, int)  # tokens, context length
    #: Every event as it is (the chat session takes the Event objects themselves), after its own signal.
    happened = Signal(object)

    def __init__(
        self,
        parent: QObject | None = None,
        worker: InferenceThread | None = None,
        kv_cache: KvDiskCache | None = None,
    ) -> None:
        super().__init__(parent)
        # Signals emitted from the worker thread reach slots on the GUI thread as queued calls.
        self.worker = worker or InferenceThread(self._dispatch, engine=Engine(kv_cache=kv_cache))
        self.worker.start()

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Chunk):
            self.chunk.emit(event.request_id, event.text)
        elif isinstance(event, LoadProgress):
            self.loadProgress.emit(event.request_id, event.fraction)
        elif isinstance(event, Loaded):
            self.loaded.emit(event.request_id, event.model)
        elif isinstance(event, LoadFailed):
            self.loadFailed.emit(event.request_id, event.message, event.kept)
        elif isinstance(event, ReplyDone):
            self.replyDone.emit(event.request_id, event.text, event.stats)
        elif isinstance(event, ReplyFailed):
            self.replyFailed.emit(event.request_id, event.text, event.message, event.code)
        elif isinstance(event, Started):
            self.started.emit(event.request_id, event.waited_s)
        elif isinstance(event, Unloaded):
            self.unloaded.emit(event.request_id)
        elif isinstance(event, ContextTrimmed):
            self.contextTrimmed.emit(event.request_id, event.dropped, event.tokens)
        elif isinstance(event, Counted):
            self.counted.emit(event.request_id, event.tokens, event.context_length)
        self.happened.emit(event)

    def load(self, path: str, options: LoadOptions | None = None) -> int:
        """Queue a model load."""
        return self.worker.load(path, options)

    def generate(
        self,
        messages: list[dict[str, str]],
        params: SamplingParams,
        policy: str | None = None,
        continue_last: bool = False,
        remote: RemoteTarget | None = None,
    ) -> int:
        """Queue a reply (fitted to the context by `policy` when given; continuing the last one; on a
        remote engine when `remote` is given)."""
        return self.worker.generate(messages, params, policy, continue_last, remote=remote)

    def count(self, messages: list[dict[str, str]]) -> int:
        """Queue a token count for the context meter."""
        return self.worker.count(messages)

    def cancel(self, request_id: int) -> None:
        """Stop a request before its next token (sets a threading.Event directly: no queued slot)."""
        self.worker.cancel(request_id)

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Stop everything and join the worker thread."""
        return self.worker.shutdown(timeout)
