"""The long-lived inference thread: one owner for the model, a request queue, cancellation, coalescing.

Every front end (the window, `fireside --selftest`, the local API server) talks to the model through
`InferenceThread`: it queues requests, each with an id, and receives `Event`s (events.py) through a
callback that runs on the inference thread (the thread's own sink, or one given with a request, so
the API server gets its requests' events and the window gets the rest). Up to the model's
`n_parallel` replies are generated at once, in one batch per step (scheduler.py); more wait, in the
order they came, for a sequence to be free. Loads and unloads wait until no reply runs. Streamed text
is coalesced on the worker side (coalescer.py), so a front end sees a few dozen chunks per second at
most however fast the model is. A reply can also come from a remote engine (`RemoteTarget`): the same
events, the same stop. Remote replies wait on the network, not on the model, so they run on a second
small thread of their own and never hold up the local ones.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.core.inference.coalescer import Coalescer
from app.core.inference.embedder import EmbeddingInputError
from app.core.inference.embedding_model import EmbeddingModelInfo
from app.core.inference.engine import Engine
from app.core.inference.errors import EngineError
from app.core.inference.events import (
    Chunk,
    Counted,
    Embedded,
    EmbeddingModelFailed,
    EmbeddingModelLoaded,
    EmbedFailed,
    Event,
    EventSink,
    FailureCode,
    Loaded,
    LoadFailed,
    LoadProgress,
    ReplyDone,
    ReplyFailed,
    SpeculationSet,
    Started,
    Unloaded,
)
from app.core.inference.options import LoadedModel, LoadOptions
from app.core.inference.requests import (
    SHUTDOWN,
    CountRequest,
    EmbeddingModelRequest,
    EmbedRequest,
    GenerateRequest,
    LoadRequest,
    SpeculationRequest,
    UnloadRequest,
)
from app.core.inference.scheduler import Scheduler
from app.core.inference.stop_event import StopEvent
from app.core.models.gguf_file import ModelFileError
from app.core.remote.client import RemoteError, RemoteTarget
from app.core.tools.calls import ToolCall, ToolSpec
from app.core.values.sampling import SamplingParams
from app.core.values.speculation import SpeculationMode

log = logging.getLogger(__name__)

#: Seconds between two chunks delivered to the front end (about 30 per second).
DEFAULT_COALESCE_S = 0.033
#: Request ids, shared by every inference thread of the process: the API server serves several models,
#: each on a thread of its own, and tells their requests apart by id alone.
_REQUEST_IDS = itertools.count(1)


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
        self._ids = _REQUEST_IDS
        self._lock = threading.Lock()
        self._pending: dict[int, threading.Event] = {}
        self._load_ids: set[int] = set()
        #: Local replies queued and not started, and those being generated (read by front ends).
        self._reply_ids: set[int] = set()
        self._running_ids: set[int] = set()
        self._scheduler = Scheduler(self._engine, self._emit, coalesce_s, self._reply_started, self._done)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        #: Remote replies, one at a time, on a thread started the first time one is asked for.
        self._remote_queue: queue.Queue[object] = queue.Queue()
        self._remote_thread: threading.Thread | None = None
        self._remote_name = f"{name}-remote"
        #: Called on this thread after every turn of its loop (see after_each_step).
        self._step_listeners: list[Callable[[], None]] = []

    # ----- API for front ends (any thread) ---------------------------------------------

    def start(self) -> None:
        """Start the worker thread (once)."""
        if not self._started:
            self._started = True
            self._thread.start()

    def after_each_step(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` on the inference thread after each step of the batch and whatever was
        handled with it (so every event that step emitted has been emitted), and once more when
        the thread ends; returns the function that stops the calls."""
        with self._lock:
            self._step_listeners = [*self._step_listeners, listener]

        def remove() -> None:
            with self._lock:
                self._step_listeners = [f for f in self._step_listeners if f is not listener]

        return remove

    def on_this_thread(self) -> bool:
        """True when called on the inference thread itself."""
        return threading.current_thread() is self._thread

    def _steps_done(self) -> None:
        for listener in self._step_listeners:
            try:
                listener()
            except Exception:  # a broken listener must not stop inference
                log.exception("Step listener failed")

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
        messages: Sequence[dict[str, Any]],
        params: SamplingParams,
        policy: str | None = None,
        continue_last: bool = False,
        *,
        stop: tuple[str, ...] = (),
        raw_prompt: str | None = None,
        remote: RemoteTarget | None = None,
        sink: EventSink | None = None,
        coalesce_s: float | None = None,
        cache_key: str | None = None,
        grammar: str | None = None,
        logit_bias: tuple[tuple[int, float], ...] = (),
        top_logprobs: int | None = None,
        tools: Sequence[ToolSpec] | None = None,
        grammar_triggers: Sequence[str] = (),
        adapters: Sequence[tuple[str | Path, float]] = (),
    ) -> int:
        """Queue a chat reply to `messages`; returns its request id.

        With a context `policy`, the messages are fitted to the context first (ContextTrimmed says
        what was left out); with `continue_last`, the last assistant message is continued. `stop`,
        `raw_prompt`: see Engine.stream_chat. `remote` generates on a remote engine. `sink` receives
        this request's events instead of the thread's sink; `coalesce_s` overrides the chunk interval
        (0: one chunk per token, as API clients expect). `cache_key` names the conversation the reply
        belongs to: its KV cache is kept for its next turn, on disk when it must leave memory.
        `grammar` (GBNF) constrains the reply's tokens: structured output, e.g. JSON of a schema
        (from where one of `grammar_triggers` matches, if any: a tool call);
        `logit_bias` shifts some tokens' odds (-100 bans a token); with `top_logprobs` the events
        carry each token's log probability and that many alternatives. `tools` are offered to the
        model in its prompt (see app.core.tools.prompting); `messages` may hold calls and results.
        `adapters` are LoRA adapters (path, scale) applied to the loaded model for this reply.
        """
        request = GenerateRequest(
            next(self._ids),
            list(messages),
            params,
            StopEvent(),
            policy,
            continue_last,
            tuple(stop),
            raw_prompt,
            remote,
            sink,
            coalesce_s,
            time.monotonic(),
            cache_key,
            grammar,
            tuple(logit_bias),
            top_logprobs,
            tuple(tools) if tools else None,
            tuple(grammar_triggers),
            tuple((str(path), float(scale)) for path, scale in adapters),
        )
        self._submit(request.request_id, request.cancel, request)
        return request.request_id

    def replies_running(self) -> int:
        """How many local replies are being generated now."""
        with self._lock:
            return len(self._running_ids)

    def replies_waiting(self, before: int | None = None) -> int:
        """Replies queued and not yet started (only those queued before request `before`, if given)."""
        with self._lock:
            ids = [rid for rid in self._reply_ids if rid not in self._running_ids]
        return sum(1 for rid in ids if before is None or rid < before)

    def ahead(self, request_id: int) -> int:
        """How many replies must end before reply `request_id` can start (0: it starts at once, or
        has): all sequences busy, and others queued before it."""
        with self._lock:
            if request_id in self._running_ids:
                return 0
            queued = sum(1 for rid in self._reply_ids if rid not in self._running_ids and rid < request_id)
            running = len(self._running_ids)
        capacity = max(1, self._engine.parallel)
        return max(0, running + queued + 1 - capacity)

    @property
    def parallel(self) -> int:
        """How many replies the loaded model generates at once (0 with none loaded)."""
        return self._engine.parallel

    @property
    def loaded(self) -> LoadedModel | None:
        """The model loaded now (a snapshot; it may change as soon as it is read)."""
        return self._engine.loaded

    @property
    def embedding_model(self) -> EmbeddingModelInfo | None:
        """The embedding model kept beside the chat model (a snapshot), or None."""
        return self._engine.embedding_model

    def count(self, messages: list[dict[str, str]]) -> int:
        """Queue counting the tokens `messages` take (answered with Counted; nothing when no model)."""
        request = CountRequest(next(self._ids), list(messages))
        self._queue.put(request)
        return request.request_id

    def embed(self, inputs: Sequence[str | Sequence[int]], sink: EventSink | None = None) -> int:
        """Queue embedding `inputs` (answered with Embedded or EmbedFailed, to `sink` if given)."""
        request = EmbedRequest(next(self._ids), [x if isinstance(x, str) else list(x) for x in inputs], sink)
        self._queue.put(request)
        return request.request_id

    def load_embedding_model(self, path: str | Path | None, sink: EventSink | None = None) -> int:
        """Queue keeping an embedding model loaded beside the chat model (None: unload it);
        answered with EmbeddingModelLoaded or EmbeddingModelFailed. It loads between two steps."""
        request = EmbeddingModelRequest(next(self._ids), Path(path) if path is not None else None, sink)
        self._queue.put(request)
        return request.request_id

    def set_speculation(
        self, mode: SpeculationMode | str, draft: str | Path | None = None, sink: EventSink | None = None
    ) -> int:
        """Queue guessing replies ahead with `mode` and the draft model at `draft` (None: n-gram
        lookup only), for this model and the next ones; answered with SpeculationSet. It applies
        between two steps, from the next token on."""
        request = SpeculationRequest(
            next(self._ids), SpeculationMode(mode).value, Path(draft) if draft else None, sink
        )
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

    def _reply_started(self, request_id: int) -> None:
        with self._lock:
            self._running_ids.add(request_id)

    def _done(self, request_id: int) -> None:
        with self._lock:
            self._pending.pop(request_id, None)
            self._load_ids.discard(request_id)
            self._reply_ids.discard(request_id)
            self._running_ids.discard(request_id)

    def _emit(self, event: Event, sink: EventSink | None = None) -> None:
        try:
            (sink or self._sink)(event)
        except Exception:  # a broken front end must not kill the model's thread
            log.exception("event sink failed for %r", event)

    def _run_remote(self) -> None:
        while (request := self._remote_queue.get()) is not SHUTDOWN:
            assert isinstance(request, GenerateRequest)
            self._do_remote(request)

    def _run(self) -> None:
        scheduler = self._scheduler
        #: Loads and unloads, and replies queued after them: each runs once no reply is left before it.
        behind: deque[object] = deque()
        try:
            while True:
                # Block only with nothing to do; while replies run, take what came and go on stepping.
                block = not scheduler.busy and not behind
                arrived: list[object] = []
                try:
                    arrived.append(self._queue.get(block))
                    while True:
                        arrived.append(self._queue.get_nowait())
                except queue.Empty:
                    pass
                if SHUTDOWN in arrived:
                    break
                for request in arrived:
                    if isinstance(request, CountRequest):
                        self._do_count(request)  # tokenizing only: between two steps
                    elif isinstance(request, EmbedRequest):
                        self._do_embed(request)  # one decode per input, between two steps
                    elif isinstance(request, EmbeddingModelRequest):
                        self._do_embedding_model(request)  # a small model: between two steps
                    elif isinstance(request, SpeculationRequest):
                        self._do_speculation(request)  # a draft model is small too
                    elif isinstance(request, GenerateRequest) and not behind:
                        scheduler.add(request)
                    else:
                        behind.append(request)
                while behind and not scheduler.busy:
                    request = behind.popleft()
                    if isinstance(request, LoadRequest):
                        self._do_load(request)
                    elif isinstance(request, UnloadRequest):
                        self._engine.unload()
                        self._emit(Unloaded(request.request_id))
                    elif isinstance(request, GenerateRequest):
                        scheduler.add(request)
                scheduler.admit()
                scheduler.step()
                self._steps_done()
        finally:
            scheduler.cancel_all()
            while scheduler.running:
                scheduler.step()
            scheduler.admit()
            self._engine.unload()
            self._engine.unload_embedding_model()
            self._steps_done()

    def _do_embedding_model(self, request: EmbeddingModelRequest) -> None:
        rid = request.request_id
        if request.path is None:
            self._engine.unload_embedding_model()
            self._emit(EmbeddingModelLoaded(rid, None), request.sink)
            return
        try:
            info = self._engine.load_embedding_model(request.path)
        except (EngineError, ModelFileError) as exc:
            self._emit(EmbeddingModelFailed(rid, str(exc)), request.sink)
        except Exception as exc:
            log.exception("loading the embedding model failed")
            self._emit(
                EmbeddingModelFailed(rid, f"The embedding model could not be loaded: {exc}"), request.sink
            )
        else:
            self._emit(EmbeddingModelLoaded(rid, info), request.sink)

    def _do_speculation(self, request: SpeculationRequest) -> None:
        engine = self._engine
        engine.speculation = SpeculationMode(request.mode)
        message = None
        try:
            engine.set_draft_model(request.draft)
        except (EngineError, ModelFileError) as exc:
            message = str(exc)
        except Exception as exc:
            log.exception("opening the draft model failed")
            message = f"The draft model could not be opened: {exc}"
        self._emit(
            SpeculationSet(request.request_id, request.mode, engine.draft_model, message), request.sink
        )

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

    def _do_embed(self, request: EmbedRequest) -> None:
        rid = request.request_id
        if not self._engine.can_embed:
            self._emit(EmbedFailed(rid, "No model is loaded.", FailureCode.NO_MODEL), request.sink)
            return
        try:
            embeddings = self._engine.embed(request.inputs)
        except EmbeddingInputError as exc:
            self._emit(EmbedFailed(rid, str(exc), FailureCode.INVALID, exc.index), request.sink)
        except Exception as exc:
            log.exception("embedding failed")
            self._emit(EmbedFailed(rid, f"Embedding failed: {exc}", FailureCode.ENGINE), request.sink)
        else:
            self._emit(Embedded(rid, embeddings), request.sink)

    def _do_remote(self, request: GenerateRequest) -> None:
        rid, sink = request.request_id, request.sink

        def emit(event: Event) -> None:
            self._emit(event, sink)

        interval = self._coalesce_s if request.coalesce_s is None else request.coalesce_s
        coalescer = Coalescer(lambda text: emit(Chunk(rid, text)), interval)
        target = request.remote
        assert target is not None
        try:
            emit(Started(rid, time.monotonic() - request.queued_at))
            calls: list[ToolCall] = []
            stats = target.client.stream_chat(
                target.model, request.messages, request.params, coalescer.add, request.cancel,
                tools=[tool.openai() for tool in request.tools] if request.tools else None,
                response_format=target.response_format, calls=calls, stop=request.stop,
            )  # fmt: skip
        except RemoteError as exc:
            coalescer.flush()
            emit(ReplyFailed(rid, "".join(coalescer.parts_all), exc.message, exc.kind))
        except Exception as exc:
            log.exception("unexpected failure generating remotely")
            coalescer.flush()
            emit(ReplyFailed(rid, "".join(coalescer.parts_all), f"Generation failed: {exc}"))
        else:
            coalescer.flush()
            emit(ReplyDone(rid, "".join(coalescer.parts_all), stats, calls=tuple(calls)))
        finally:
            self._done(rid)
