"""Which local replies run: those waiting for a free sequence, in the order they came, and those being
generated, advanced together one batch at a time. Only the inference thread uses it.

A reply is admitted as soon as a sequence is free (the window's reply never waits behind API
requests, nor they behind it, until every sequence is busy). Each step decodes one batch for all of
them (Engine.step); a reply that ends gives its sequence to the next one waiting. A stop ends one
reply at the next step; the others go on.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.core.inference.coalescer import Coalescer
from app.core.inference.context_policy import ContextFull, fit_messages
from app.core.inference.engine import Engine
from app.core.inference.errors import ContextFullError, EngineError, InvalidInput
from app.core.inference.events import (
    Chunk,
    ContextTrimmed,
    Event,
    EventSink,
    FailureCode,
    ReplyDone,
    ReplyFailed,
    Started,
    Unloaded,
)
from app.core.inference.generation import Generation
from app.core.inference.requests import GenerateRequest
from app.core.values.logprobs import TokenLogprob
from app.core.values.replies import ReplyStats, StopReason
from app.core.values.sampling import SamplingError

log = logging.getLogger(__name__)

#: Delivers an event to a request's sink (or the thread's own when None).
Emit = Callable[[Event, EventSink | None], None]


@dataclass(slots=True)
class Running:
    """A reply being generated: its request, its generation, and its text on the way out."""

    request: GenerateRequest
    generation: Generation
    coalescer: Coalescer


class Scheduler:
    """Admits waiting replies into free sequences and steps the running ones together."""

    def __init__(
        self,
        engine: Engine,
        emit: Emit,
        coalesce_s: float,
        started: Callable[[int], None],
        done: Callable[[int], None],
    ) -> None:
        self._engine, self._emit, self._coalesce_s = engine, emit, coalesce_s
        #: Told when a request leaves the queue, and when it is over (the thread's bookkeeping).
        self._started, self._done = started, done
        self.waiting: deque[GenerateRequest] = deque()
        self.running: list[Running] = []

    @property
    def busy(self) -> bool:
        """True while replies wait or run."""
        return bool(self.waiting or self.running)

    def add(self, request: GenerateRequest) -> None:
        """Queue a reply (it runs when a sequence is free)."""
        self.waiting.append(request)

    def admit(self) -> None:
        """Start waiting replies while sequences are free (cancelled ones end at once)."""
        engine = self._engine
        for request in [r for r in self.waiting if r.cancel.is_set()]:
            self.waiting.remove(request)  # stopped before it began: it never starts
            self._started(request.request_id)
            self._emit(Started(request.request_id, time.monotonic() - request.queued_at), request.sink)
            self._end(request, "", _not_started(engine.context_length))
        while self.waiting:
            request = self.waiting[0]
            if engine.loaded is None:
                self.waiting.popleft()
                self._started(request.request_id)
                self._emit(Started(request.request_id, time.monotonic() - request.queued_at), request.sink)
                self._fail(request, "", "No model is loaded.", FailureCode.NO_MODEL)
                continue
            if engine.free_sequences == 0:
                return
            if self.running and not self._same_context(request):
                return  # a new context length: it waits until the others are done
            self.waiting.popleft()
            self._start(request)

    def _same_context(self, request: GenerateRequest) -> bool:
        try:
            return self._engine.fits_context(request.params.validated().context_length)
        except SamplingError:
            return True  # refused when it starts

    def _start(self, request: GenerateRequest) -> None:
        rid, sink = request.request_id, request.sink
        self._started(rid)
        self._emit(Started(rid, time.monotonic() - request.queued_at), sink)
        interval = self._coalesce_s if request.coalesce_s is None else request.coalesce_s
        started: list[Generation] = []  # the generation, once it exists: its chunks carry its logprobs
        sent = [0]

        def chunk(text: str) -> None:
            logprobs: tuple[TokenLogprob, ...] = ()
            if started and started[0].top_logprobs is not None:
                logprobs = tuple(started[0].logprobs[sent[0] :])
                sent[0] += len(logprobs)
            self._emit(Chunk(rid, text, logprobs), sink)

        coalescer = Coalescer(chunk, interval)
        engine = self._engine
        try:
            engine.ensure_context(request.params.validated().context_length)
            messages = self._fit(request) if request.policy is not None else request.messages
            generation = engine.start(
                messages, request.params, coalescer.add, request.cancel, request.continue_last,
                request.stop, request.raw_prompt, request.cache_key, request.grammar, request.logit_bias,
                request.top_logprobs, request.tools, request.grammar_triggers, request.adapters,
            )  # fmt: skip
        except ContextFull as exc:
            self._fail(request, "", exc.message, FailureCode.CONTEXT_FULL)
        except SamplingError as exc:
            self._fail(request, "", str(exc), FailureCode.INVALID)
        except EngineError as exc:
            code = FailureCode.CONTEXT_FULL if isinstance(exc, ContextFullError) else FailureCode.ENGINE
            if isinstance(exc, InvalidInput):
                code = FailureCode.INVALID
            self._fail(request, "", str(exc), code)
            if engine.loaded is None:  # e.g. no room for a bigger context
                self._emit(Unloaded(rid), None)  # to the thread's sink: the window must know, whoever asked
        except Exception as exc:
            log.exception("unexpected failure starting a reply")
            self._fail(request, "", f"Generation failed: {exc}", FailureCode.ENGINE)
        else:
            started.append(generation)
            self.running.append(Running(request, generation, coalescer))

    def _fit(self, request: GenerateRequest) -> list[dict[str, str]]:
        """Apply the request's context policy (raises ContextFull)."""
        engine, params = self._engine, request.params
        n_ctx = engine.context_length
        budget = n_ctx - min(params.max_tokens, n_ctx // 2)  # room kept for the reply
        messages = request.messages
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        turns = messages[1:] if system else messages
        tools = request.tools

        def count(messages: list[dict[str, str]]) -> int:  # the tools' definitions take room too
            return engine.count_tokens(messages, tools)

        fitted = fit_messages(system, turns, count, budget, request.policy or "stop")
        if fitted.dropped:
            self._emit(ContextTrimmed(request.request_id, tuple(fitted.dropped), fitted.tokens), request.sink)
        return fitted.messages

    def step(self) -> None:
        """One batch for every running reply; the ones that ended are answered and leave."""
        if not self.running:
            return
        self._read_images()
        if not self.running:
            return
        try:
            self._engine.step([run.generation for run in self.running])
        except Exception as exc:
            # llama.cpp failed the batch: every reply in it is in an unknown state.
            if not isinstance(exc, EngineError):
                log.exception("unexpected failure generating")
            code = FailureCode.CONTEXT_FULL if isinstance(exc, ContextFullError) else FailureCode.ENGINE
            if isinstance(exc, InvalidInput):
                code = FailureCode.INVALID
            message = str(exc) if isinstance(exc, EngineError) else f"Generation failed: {exc}"
            for run in self.running:
                self._engine.finish(run.generation)
                run.coalescer.flush()
                self._fail(run.request, "".join(run.coalescer.parts_all), message, code)
            self.running = []
            return
        still = []
        for run in self.running:
            if run.generation.stop is None:
                still.append(run)
                continue
            stats = self._engine.finish(run.generation)
            run.coalescer.flush()
            self._end(run.request, "".join(run.coalescer.parts_all), stats, tuple(run.generation.logprobs))
        self.running = still

    def _read_images(self) -> None:
        """Each reply whose prompt reaches an image reads it (its own decode); one that fails ends
        alone, with the others going on."""
        for run in list(self.running):
            if run.generation.media_next is None:
                continue
            try:
                self._engine.read_media(run.generation)
            except Exception as exc:
                if not isinstance(exc, EngineError):
                    log.exception("unexpected failure reading an image")
                message = str(exc) if isinstance(exc, EngineError) else f"Generation failed: {exc}"
                self._engine.finish(run.generation)
                run.coalescer.flush()
                self._fail(run.request, "", message, FailureCode.ENGINE)
                self.running.remove(run)

    def cancel_all(self) -> None:
        """Every reply stops at the next step (shutdown)."""
        for run in self.running:
            run.request.cancel.set()
        for request in self.waiting:
            request.cancel.set()

    def _end(
        self, request: GenerateRequest, text: str, stats: ReplyStats, logprobs: tuple[TokenLogprob, ...] = ()
    ) -> None:
        self._emit(ReplyDone(request.request_id, text, stats, logprobs), request.sink)
        self._done(request.request_id)

    def _fail(self, request: GenerateRequest, text: str, message: str, code: FailureCode) -> None:
        self._emit(ReplyFailed(request.request_id, text, message, code), request.sink)
        self._done(request.request_id)


def _not_started(context_length: int) -> ReplyStats:
    """The statistics of a reply stopped before it began."""
    return ReplyStats(0.0, 0.0, 0, 0, 0, StopReason.USER, 0, 0, context_length)
