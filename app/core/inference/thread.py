"""The long-lived inference thread: one owner for the model, a request queue, cancellation, coalescing.

Every front end (the window, `fireside --selftest`, the local API server) talks to the model through
`InferenceThread`: it queues requests, each with an id, and receives `Event`s (events.py) through a
callback that runs on the inference thread (the thread's own sink, or one given with a request, so
the API server gets its requests' events and the window gets the rest). Requests are served one at
a time, in the order they came. Streamed text is coalesced on the worker side (coalescer.py), so a
front end sees a few dozen chunks per second at most however fast the model is. A reply can also
come from a remote engine (`RemoteTarget`): the same events, the same stop. Remote replies wait on
the network, not on the model, so they run on a second small thread of their own and never hold up
the local queue.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from pathlib import Path

from app.core.inference.coalescer import Coalescer
from app.core.inference.context_policy import ContextFull, fit_messages
from app.core.inference.engine import Engine
from app.core.inference.errors import ContextFullError, EngineError
from app.core.inference.events import (
    Chunk,
    ContextTrimmed,
    Counted,
    Event,
    EventSink,
    FailureCode,
    Loaded,
    LoadFailed,
    LoadProgress,
    ReplyDone,
    ReplyFailed,
    Started,
    Unloaded,
)
from app.core.inference.options import LoadedModel, LoadOptions
from app.core.inference.requests import SHUTDOWN, CountRequest, GenerateRequest, LoadRequest, UnloadRequest
from app.core.models.gguf_file import ModelFileError
from app.core.remote.client import RemoteError, RemoteTarget
from app.core.values.sampling import SamplingError, SamplingParams

log = logging.getLogger(__name__)

#: Seconds between two chunks delivered to the front end (about 30 per second).
DEFAULT_COALESCE_S = 0.033


class InferenceThread:
    """The one thread that owns the model. Methods are safe to call from any thread."""

    def __init__(
        self,
        sink: EventSink,
        *,
        coalesce_s: float = DEFAULT_COALESCE_S,
        engine: Engine | None = None,
        name: str = "fireside-inference",
    ) -> None:
        self._sink = sink
        self._coalesce_s = coalesce_s
        self._engine = engine or Engine()
        self._queue: queue.Queue[object] = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, threading.Event] = {}
        self._load_ids: set[int] = set()
        self._reply_ids: set[int] = set()
        self._running: int | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        #: Remote replies, one at a time, on a thread started the first time one is asked for.
        self._remote_queue: queue.Queue[object] = queue.Queue()
        self._remote_thread: threading.Thread | None = None
        self._remote_name = f"{name}-remote"

    # ----- API for front ends (any thread) ---------------------------------------------

    def start(self) -> None:
        """Start the worker thread (once)."""
        if not self._started:
            self._started = True
            self._thread.start()

    @property
    def is_alive(self) -> bool:
        """True while the worker thread runs."""
        return self._thread.is_alive()

    def load(self, path: str | Path, options: LoadOptions | None = None) -> int:
        """Queue loading a model (replacing the current one); cancels a load still in progress."""
        self.cancel_loads()
        request = LoadRequest(next(self._ids), Path(path), options or LoadOptions(), threading.Event())
        self._submit(request.request_id, request.cancel, request)
        return request.request_id

    def generate(
        self,
        messages: list[dict[str, str]],
        params: SamplingParams,
        policy: str | None = None,
        continue_last: bool = False,
        *,
        stop: tuple[str, ...] = (),
        raw_prompt: str | None = None,
        remote: RemoteTarget | None = None,
        sink: EventSink | None = None,
        coalesce_s: float | None = None,
    ) -> int:
        """Queue a chat reply to `messages`; returns its request id.

        With a context `policy`, the messages are fitted to the context first (ContextTrimmed says
        what was left out); with `continue_last`, the last assistant message is continued. `stop`,
        `raw_prompt`: see Engine.stream_chat. `remote` generates on a remote engine. `sink` receives
        this request's events instead of the thread's sink; `coalesce_s` overrides the chunk interval
        (0: one chunk per token, as API clients expect).
        """
        request = GenerateRequest(
            next(self._ids),
            list(messages),
            params,
            threading.Event(),
            policy,
            continue_last,
            tuple(stop),
            raw_prompt,
            remote,
            sink,
            coalesce_s,
            time.monotonic(),
        )
        self._submit(request.request_id, request.cancel, request)
        return request.request_id

    @property
    def running_reply(self) -> int | None:
        """The id of the reply being generated now, or None."""
        return self._running

    def replies_waiting(self, before: int | None = None) -> int:
        """Replies queued and not yet started (only those queued before request `before`, if given)."""
        with self._lock:
            ids = [rid for rid in self._reply_ids if rid != self._running]
        return sum(1 for rid in ids if before is None or rid < before)

    @property
    def loaded(self) -> LoadedModel | None:
        """The model loaded now (a snapshot; it may change as soon as it is read)."""
        return self._engine.loaded

    def count(self, messages: list[dict[str, str]]) -> int:
        """Queue counting the tokens `messages` take (answered with Counted; nothing when no model)."""
        request = CountRequest(next(self._ids), list(messages))
        self._queue.put(request)
        return request.request_id

    def unload(self) -> int:
        """Queue freeing the model."""
        request_id = next(self._ids)
        self._queue.put(UnloadRequest(request_id))
        return request_id

    def cancel(self, request_id: int) -> None:
        """Stop a request: a streaming reply stops before its next token, a queued one never starts."""
        with self._lock:
            event = self._pending.get(request_id)
        if event is not None:
            event.set()

    def cancel_all(self) -> None:
        """Cancel every queued and running request."""
        with self._lock:
            events = list(self._pending.values())
        for event in events:
            event.set()

    def cancel_loads(self) -> None:
        """Cancel loads still queued or running (a newer choice of model wins)."""
        with self._lock:
            events = [e for rid, e in self._pending.items() if rid in self._load_ids]
        for event in events:
            event.set()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Cancel everything, free the model on the worker thread, and join it. True if it ended."""
        self.cancel_all()
        if not self._started:
            return True
        self._queue.put(SHUTDOWN)
        self._thread.join(timeout)
        with self._lock:
            remote = self._remote_thread
        if remote is not None:
            self._remote_queue.put(SHUTDOWN)
            remote.join(timeout)
            if remote.is_alive():
                return False
        return not self._thread.is_alive()

    # ----- worker side ---------------------------------------------------------------------

    def _submit(self, request_id: int, cancel: threading.Event, request: object) -> None:
        with self._lock:
            self._pending[request_id] = cancel
            if isinstance(request, LoadRequest):
                self._load_ids.add(request_id)
            elif isinstance(request, GenerateRequest) and request.remote is None:
                self._reply_ids.add(request_id)
            if isinstance(request, GenerateRequest) and request.remote is not None:
                if self._remote_thread is None:
                    self._remote_thread = threading.Thread(
                        target=self._run_remote, name=self._remote_name, daemon=True
                    )
                    self._remote_thread.start()
                self._remote_queue.put(request)
                return
        self._queue.put(request)

    def _done(self, request_id: int) -> None:
        with self._lock:
            self._pending.pop(request_id, None)
            self._load_ids.discard(request_id)
            self._reply_ids.discard(request_id)
            if self._running == request_id:
                self._running = None

    def _emit(self, event: Event, sink: EventSink | None = None) -> None:
        try:
            (sink or self._sink)(event)
        except Exception:  # a broken front end must not kill the model's thread
            log.exception("event sink failed for %r", event)

    def _run_remote(self) -> None:
        while (request := self._remote_queue.get()) is not SHUTDOWN:
            assert isinstance(request, GenerateRequest)
            self._do_generate(request)

    def _run(self) -> None:
        try:
            while True:
                request = self._queue.get()
                if request is SHUTDOWN:
                    break
                if isinstance(request, LoadRequest):
                    self._do_load(request)
                elif isinstance(request, GenerateRequest):
                    self._do_generate(request)
                elif isinstance(request, UnloadRequest):
                    self._engine.unload()
                    self._emit(Unloaded(request.request_id))
                elif isinstance(request, CountRequest):
                    self._do_count(request)
        finally:
            self._engine.unload()

    def _do_load(self, request: LoadRequest) -> None:
        rid = request.request_id
        try:
            if request.cancel.is_set():
                raise EngineError(f"{request.path.name}: loading was cancelled")
            last = [-1.0]

            def progress(fraction: float) -> bool:
                # Report whole percents only: llama.cpp calls this hundreds of times.
                if fraction - last[0] >= 0.01 or fraction >= 1.0:
                    last[0] = fraction
                    self._emit(LoadProgress(rid, fraction))
                return not request.cancel.is_set()

            self._emit(LoadProgress(rid, 0.0))
            model = self._engine.load(request.path, request.options, progress)
        except (ModelFileError, EngineError) as exc:
            self._emit(LoadFailed(rid, request.path, str(exc), self._engine.loaded))
        except Exception as exc:
            log.exception("unexpected failure loading %s", request.path)
            self._emit(LoadFailed(rid, request.path, f"{request.path.name}: {exc}", self._engine.loaded))
        else:
            self._emit(Loaded(rid, model))
        finally:
            self._done(rid)

    def _do_count(self, request: CountRequest) -> None:
        if self._engine.loaded is None:
            return
        try:
            tokens = self._engine.count_tokens(request.messages)
        except EngineError as exc:
            log.info("could not count tokens: %s", exc)
            return
        self._emit(Counted(request.request_id, tokens, self._engine.context_length))

    def _fit(self, request: GenerateRequest, emit: EventSink) -> list[dict[str, str]]:
        """Apply the request's context policy (raises ContextFull)."""
        engine, params = self._engine, request.params
        engine.ensure_context(params.context_length)
        n_ctx = engine.context_length
        budget = n_ctx - min(params.max_tokens, n_ctx // 2)  # room kept for the reply
        messages = request.messages
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        turns = messages[1:] if system else messages
        fitted = fit_messages(system, turns, engine.count_tokens, budget, request.policy or "stop")
        if fitted.dropped:
            emit(ContextTrimmed(request.request_id, tuple(fitted.dropped), fitted.tokens))
        return fitted.messages

    def _do_generate(self, request: GenerateRequest) -> None:
        rid, sink = request.request_id, request.sink

        def emit(event: Event) -> None:
            self._emit(event, sink)

        interval = self._coalesce_s if request.coalesce_s is None else request.coalesce_s
        coalescer = Coalescer(lambda text: emit(Chunk(rid, text)), interval)
        if request.remote is None:
            with self._lock:
                self._running = rid
        try:
            emit(Started(rid, time.monotonic() - request.queued_at))
            if request.remote is not None:
                target = request.remote
                stats = target.client.stream_chat(
                    target.model, request.messages, request.params, coalescer.add, request.cancel
                )
            else:
                if self._engine.loaded is None:
                    emit(ReplyFailed(rid, "", "No model is loaded.", FailureCode.NO_MODEL))
                    return
                messages = self._fit(request, emit) if request.policy is not None else request.messages
                stats = self._engine.stream_chat(
                    messages,
                    request.params,
                    coalescer.add,
                    request.cancel,
                    request.continue_last,
                    request.stop,
                    request.raw_prompt,
                )
        except ContextFull as exc:
            emit(ReplyFailed(rid, "", exc.message, FailureCode.CONTEXT_FULL))
        except RemoteError as exc:
            coalescer.flush()
            emit(ReplyFailed(rid, "".join(coalescer.parts_all), exc.message, exc.kind))
        except (EngineError, SamplingError) as exc:
            coalescer.flush()
            if isinstance(exc, SamplingError):
                code = FailureCode.INVALID
            else:
                code = FailureCode.CONTEXT_FULL if isinstance(exc, ContextFullError) else FailureCode.ENGINE
            emit(ReplyFailed(rid, "".join(coalescer.parts_all), str(exc), code))
            if self._engine.loaded is None and request.remote is None:  # e.g. no room for a bigger context
                self._emit(Unloaded(rid))  # to the thread's sink: the window must know, whoever asked
        except Exception as exc:
            log.exception("unexpected failure generating")
            coalescer.flush()
            emit(ReplyFailed(rid, "".join(coalescer.parts_all), f"Generation failed: {exc}"))
        else:
            coalescer.flush()
            emit(ReplyDone(rid, "".join(coalescer.parts_all), stats))
        finally:
            self._done(rid)
