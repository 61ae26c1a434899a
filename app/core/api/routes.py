"""The API server's routes: GET /v1/models, POST /v1/chat/completions and POST /v1/completions.

Each reply is queued on the app's one `InferenceThread` with its own event sink, so the window and
API clients share one model: replies are generated together, as many as it has sequences, and
the rest wait in the order they came. A request for `n` choices queues one reply first and the
others once its prompt has been read, so they copy that prompt's KV cache instead of reading it
again. A streamed reply is server-sent events ending with `data: [DONE]`; a client that goes away
stops its replies, which are then drained and logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.core.api import embeddings, wire
from app.core.api.catalog import Kind
from app.core.api.config import ServerConfig
from app.core.api.guard import read_body, refusal
from app.core.api.image_fetch import fetch_images
from app.core.api.mailbox import Mailbox
from app.core.api.request_log import LogListener, RequestLog, RequestState
from app.core.api.router import Answerer, Router, remote_refusal
from app.core.api.schema import ApiError, ChatRequest, CompletionRequest
from app.core.api.tool_schema import ToolPlan
from app.core.inference.embedder import Embeddings
from app.core.inference.events import Chunk, Embedded, EmbedFailed, Event, ReplyDone, ReplyFailed, Started
from app.core.inference.thread import InferenceThread
from app.core.tools.calls import ToolCall
from app.core.tools.formats import template_tools
from app.core.tools.parsing import CallReader, read_calls
from app.core.values.replies import ReplyStats, StopReason
from app.core.values.sampling import RANDOM_SEED, RANGES, SamplingParams

log = logging.getLogger(__name__)

#: The context length requests to a remote engine are checked against (its own is not known here).
MAX_REMOTE_CONTEXT = int(RANGES["context_length"].maximum)


def _settle(future: asyncio.Future[Event], event: Event) -> None:
    """Give `future` its event (on the server's loop), unless it was cancelled meanwhile."""
    if not future.done():
        future.set_result(event)


@dataclass(slots=True)
class _Reply:
    """A request's choices (its replies), their events carried from the inference thread onto the
    server's event loop, one queue for all of them."""

    mailbox: Mailbox
    #: The inference thread generating the replies (the model's), and what the request holds on it.
    worker: InferenceThread
    answerer: Answerer
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    #: The replies' request ids, by choice index (the first is queued at once).
    ids: list[int] = field(default_factory=list)
    #: Queues the other choices (called once the first one's prompt has been read), or None.
    rest: Callable[[], list[int]] | None = None
    #: How each choice ended, by choice index.
    ended: dict[int, Event] = field(default_factory=dict)
    choices: int = 1
    #: The request asked for its tokens' log probabilities.
    logprobs: bool = False
    #: The tools the model was offered (its replies are read for calls), or None.
    tools: ToolPlan | None = None
    #: Each streamed choice's reader of calls, by choice index.
    readers: dict[int, CallReader] = field(default_factory=dict)
    #: Its stream began (the generator ran): from then on the stream ends the replies itself.
    streamed: bool = False

    def reader(self, index: int) -> CallReader:
        """The call reader of choice `index` (needs `tools`)."""
        assert self.tools is not None
        if index not in self.readers:
            self.readers[index] = CallReader(self.tools.names(), self.tools.parallel)
        return self.readers[index]

    def sink(self, event: Event) -> None:
        """Called on the inference thread: hand the event to the server's loop."""
        self.mailbox.post(self.events, event)

    def index(self, event: Event) -> int:
        """The choice index `event` belongs to."""
        return self.ids.index(event.request_id)

    @property
    def done(self) -> bool:
        """Every choice has ended."""
        return len(self.ended) == self.choices

    def usage_stats(self) -> ReplyStats:
        """The stats `usage` reports: the prompt once (the first choice's), every choice's tokens."""
        stats = [event.stats for event in self.ended.values() if isinstance(event, ReplyDone)]
        first = self.ended.get(0)
        base = first.stats if isinstance(first, ReplyDone) else stats[0]
        return dataclasses.replace(base, completion_tokens=sum(s.completion_tokens for s in stats))


class _Stream(StreamingResponse):
    """A streamed response that says when it is over, however it ended: Starlette never starts the
    stream of a client that left before the response began, so the stream's own clean-up cannot
    run then."""

    def __init__(self, content: AsyncIterator[str], ended: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._ended = ended

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._ended()


@dataclass(frozen=True, slots=True)
class _Job:
    """What a request asks the model to generate, read from its body."""

    params: SamplingParams
    messages: list[dict[str, Any]]
    raw: str | None
    key: str | None
    grammar: str | None
    plan: ToolPlan | None
    triggers: tuple[str, ...]
    adapters: tuple[tuple[str, float], ...]


class Routes:
    """The request handlers, the requests in progress, and the listeners told about each one."""

    def __init__(self, router: Router, config: ServerConfig, defaults: Callable[[], SamplingParams]) -> None:
        self.router = router
        self.config = config
        #: Sampling used for fields a request leaves out (the window passes its own settings).
        self._defaults = defaults
        self.listeners: list[LogListener] = []
        #: Requests waiting or generating now, by request id (read by the window's queue notice).
        self.active: dict[int, RequestLog] = {}
        self._drains: set[asyncio.Task[None]] = set()  # replies whose client left, until they end
        #: Set while the server stops and cancels replies, so their clients learn the reply was cut,
        #: not finished.
        self.stopping = False
        #: One mailbox per worker onto the server's running loop (a restart has a new loop).
        self._boxes: dict[InferenceThread, tuple[asyncio.AbstractEventLoop, Mailbox, Callable[[], None]]] = {}

    def routes(self) -> list[Route]:
        """The routes, for Starlette."""
        return [
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/completions", self._completions, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            # Anything else: an OpenAI-style 404 naming the path, logged like every request.
            Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]

    # ----- helpers ----------------------------------------------------------------------

    def _notify(self, entry: RequestLog) -> None:
        for listener in list(self.listeners):
            try:
                listener(entry)
            except Exception:  # a broken log view must not break serving
                log.exception("API log listener failed")

    def _mailbox(self, worker: InferenceThread) -> Mailbox:
        """The mailbox from `worker` onto the running event loop."""
        loop = asyncio.get_running_loop()
        box = self._boxes.get(worker)
        if box is None or box[0] is not loop:
            if box is not None:
                box[2]()  # the last run's mailbox: no more flushes
            # Events of a step are handed over when the step is done: one wake-up for all of them.
            mailbox = Mailbox(loop, held=worker.on_this_thread)
            box = (loop, mailbox, worker.after_each_step(mailbox.flush))
            # Workers of unloaded models are gone for good: their mailboxes with them.
            self._boxes = {w: b for w, b in self._boxes.items() if w.is_alive}
            self._boxes[worker] = box
        return box[1]

    def _refuse(self, request: Request, refused: ApiError) -> JSONResponse:
        entry = self._entry(request)
        entry.status = refused.status
        entry.error = "wrong or missing API key" if refused.status == 401 else refused.message
        self._notify(entry)
        return wire.error_response(refused)

    @staticmethod
    def _entry(request: Request) -> RequestLog:
        client = request.client.host if request.client else "?"
        return RequestLog(time.time(), client, request.method, request.url.path)

    # ----- routes -----------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        if (refused := refusal(request, self.config)) is not None:
            return self._refuse(request, refused)
        entry = self._entry(request)
        entry.status = 200
        self._notify(entry)
        return JSONResponse({"object": "list", "data": await self.router.listing()})

    async def _unknown(self, request: Request) -> Response:
        if (refused := refusal(request, self.config)) is not None:
            return self._refuse(request, refused)
        missing = ApiError(
            404,
            f"There is no {request.method} {request.url.path} here. Fireside serves GET /v1/models, "
            "POST /v1/chat/completions, POST /v1/completions and POST /v1/embeddings.",
            "not_found",
        )
        return self._refuse(request, missing)

    async def _chat(self, request: Request) -> Response:
        return await self._serve(request, ChatRequest)

    async def _completions(self, request: Request) -> Response:
        return await self._serve(request, CompletionRequest)

    async def _embeddings(self, request: Request) -> Response:
        if (refused := refusal(request, self.config)) is not None:
            return self._refuse(request, refused)
        entry = self._entry(request)
        answerer: Answerer | None = None
        try:
            body = await read_body(request, embeddings.EmbeddingRequest)
            target = await self.router.resolve(body.model)
            entry.model = target.name
            if target.endpoint is not None:
                raise ApiError(
                    400, f"{target.name} runs on {target.endpoint.name}: Fireside does not forward "
                    "embeddings to remote engines.", "unsupported_value", "model",
                )  # fmt: skip
            if target.kind is Kind.EMBEDDING:  # kept beside the window's model, on its thread
                if body.ttl is not None:
                    raise ApiError(
                        400, f"ttl: {target.name} is kept loaded beside the window's model.",
                        "invalid_value", "ttl",
                    )  # fmt: skip
                worker = self.router.pool.primary
            else:
                answerer = await self.router.answerer(target, body.ttl)
                assert answerer.lease is not None
                worker = answerer.lease.worker
            inputs = body.inputs()
            parts: list[Embeddings] = []
            step = embeddings.INPUTS_PER_TURN
            single = not isinstance(body.input, list) or not isinstance(body.input[0], list | str)
            for start in range(0, len(inputs), step):
                parts.append(await self._embed(worker, inputs[start : start + step], start, single))
        except ApiError as exc:
            entry.status, entry.error = exc.status, exc.message
            self._notify(entry)
            return wire.error_response(exc)
        finally:
            if answerer is not None:
                answerer.release()
        entry.status, entry.state = 200, RequestState.DONE
        entry.prompt_tokens = sum(part.tokens for part in parts)
        entry.duration_s = time.time() - entry.at
        self._notify(entry)
        return JSONResponse(embeddings.reply(entry.model, parts, body.encoding_format))

    async def _embed(
        self, worker: InferenceThread, inputs: list[str | list[int]], first: int, single: bool
    ) -> Embeddings:
        """Embed some of a request's inputs (the `first`-th is the first of them; `single`: the
        request holds one, not in a list) on the inference thread. Raises ApiError."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Event] = loop.create_future()

        def sink(event: Event) -> None:  # on the inference thread
            loop.call_soon_threadsafe(_settle, answer, event)

        worker.embed(inputs, sink)
        event = await answer
        if isinstance(event, Embedded):
            return event.embeddings
        assert isinstance(event, EmbedFailed)
        if event.index is not None:
            where = "input" if single else f"input[{first + event.index}]"
            raise ApiError(400, f"{where}: {event.message}", "invalid_value", where)
        status, code, kind = wire.FAILURES.get(event.code, (500, "embedding_failed", "server_error"))
        raise ApiError(status, event.message, code, kind=kind)

    async def _serve(self, request: Request, schema: type[ChatRequest] | type[CompletionRequest]) -> Response:
        if (refused := refusal(request, self.config)) is not None:
            return self._refuse(request, refused)
        entry = self._entry(request)
        answerer: Answerer | None = None
        try:
            body = await read_body(request, schema)
            target = await self.router.resolve(body.model)
            entry.model = target.name
            if target.endpoint is not None and (refused := remote_refusal(body)) is not None:
                raise refused
            fetched = (
                await fetch_images(body.image_addresses(), self.config.fetch_images)
                if isinstance(body, ChatRequest)
                else {}
            )
            answerer = await self.router.answerer(target, body.ttl)
            job = self._job(body, answerer, fetched)
        except Exception as exc:  # ApiError, or a failure no message was written for
            if answerer is not None:
                answerer.release()
            if not isinstance(exc, ApiError):
                log.exception("preparing a reply failed")
                exc = ApiError(
                    500, f"The request could not be prepared: {exc}", "server_error", kind="server_error"
                )
            entry.status, entry.error = exc.status, exc.message
            self._notify(entry)
            return wire.error_response(exc)
        entry.stream = body.stream
        worker = answerer.lease.worker if answerer.lease is not None else self.router.pool.gateway()
        reply = _Reply(self._mailbox(worker), worker, answerer, choices=body.n, tools=job.plan)
        params = job.params

        def queue(choice: int) -> int:
            # Each choice its own seed, so the choices differ (and a given seed repeats them all).
            seed = params.seed if params.seed == RANDOM_SEED else (params.seed + choice) & 0x7FFFFFFF
            request_id = worker.generate(
                job.messages,
                params.with_changes(seed=seed),
                stop=body.stop_strings(),
                raw_prompt=job.raw,
                remote=answerer.remote,
                sink=reply.sink,
                coalesce_s=0.0,
                cache_key=job.key if choice == 0 else None,  # one sequence keeps the conversation
                grammar=job.grammar,
                logit_bias=body.token_biases(),
                top_logprobs=body.top_logprob_count(),
                tools=job.plan.tools if job.plan is not None else None,
                grammar_triggers=job.triggers,
                adapters=job.adapters,
            )
            self.active[request_id] = entry
            return request_id

        reply.ids.append(request_id := queue(0))
        if body.n > 1:
            reply.rest = lambda: [queue(choice) for choice in range(1, body.n)]
        entry.request_id = request_id
        # Queued when every sequence is busy (it starts as one is free), else generating at once.
        entry.state = RequestState.QUEUED if worker.ahead(request_id) else RequestState.GENERATING
        self._notify(entry)
        chat = isinstance(body, ChatRequest)
        reply.logprobs = body.top_logprob_count() is not None
        if body.stream:
            stream = self._stream(reply, entry, chat, body.include_usage())
            return _Stream(
                stream,
                lambda: self._never_streamed(reply, entry),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        return await self._complete(request, reply, entry, chat)

    def _job(
        self, body: ChatRequest | CompletionRequest, answerer: Answerer, fetched: dict[str, bytes]
    ) -> _Job:
        """What to generate for `body` on `answerer`: sampling over the window's defaults (and an
        alias's), the messages (with an alias's system prompt), grammar and adapters."""
        alias = answerer.target.alias
        defaults = self._defaults()
        if alias is not None:
            defaults = defaults.with_changes(**alias.sampling_changes())
        loaded = answerer.lease.model if answerer.lease is not None else None
        if loaded is not None:
            params = body.sampling(defaults, loaded.context_length)
            if alias is not None and body.max_tokens is None and "max_tokens" in dict(alias.sampling):
                params = params.with_changes(max_tokens=min(defaults.max_tokens, loaded.context_length))
        else:  # a remote engine knows its own context: only the request's (or the window's) reply length
            params = body.sampling(defaults, MAX_REMOTE_CONTEXT)
            params = params.with_changes(max_tokens=body.max_tokens or defaults.max_tokens)
        plan: ToolPlan | None = None
        triggers: tuple[str, ...] = ()
        if isinstance(body, ChatRequest):
            messages, raw, key, grammar = body.turns(fetched), None, body.cache_key(), body.grammar()
            # An alias's system prompt goes first, unless the request brings its own.
            own = any(m.get("role") in ("system", "developer") for m in messages)
            if alias is not None and alias.system_prompt and not own:
                messages.insert(0, {"role": "system", "content": alias.system_prompt})
            plan = body.tool_plan()
            if plan is not None and loaded is not None:
                grammar, triggers = plan.grammar(template_tools(loaded.info.chat_template).format)
        else:
            messages, raw, key, grammar = [], body.prompt_text(), None, None
        adapters = tuple((str(path), scale) for path, scale in alias.adapters) if alias is not None else ()
        return _Job(params, messages, raw, key, grammar, plan, triggers, adapters)

    def _never_streamed(self, reply: _Reply, entry: RequestLog) -> None:
        """The response ended before its stream began (the client left first): stop the replies,
        let go of the model and log it. A stream that began does all that itself."""
        if reply.streamed:
            return
        self._cancel(reply)
        reply.answerer.release()
        for request_id in reply.ids:
            self.active.pop(request_id, None)
        if entry.state != RequestState.DONE:
            entry.state, entry.status = RequestState.DONE, 499
            entry.error = "client disconnected before the reply began; generation stopped"
            entry.duration_s = time.time() - entry.at
            self._notify(entry)

    async def _next(self, reply: _Reply, entry: RequestLog) -> Event:
        """The next event of any of the request's choices (the other choices are queued once the
        first one's prompt has been read: its first token, or its end)."""
        event = await reply.events.get()
        if isinstance(event, Started):
            if event.request_id == reply.ids[0]:  # the request's wait is its first choice's
                entry.waited_s = event.waited_s
            if entry.state != RequestState.GENERATING:
                entry.state = RequestState.GENERATING
                self._notify(entry)
        elif reply.rest is not None and isinstance(event, Chunk | ReplyDone | ReplyFailed):
            more, reply.rest = reply.rest, None
            if self.stopping:
                reply.choices = 1  # no new replies while the server stops
            elif not isinstance(event, ReplyFailed):
                reply.ids.extend(more())
            else:
                reply.choices = 1  # the request failed: the others would fail the same way
        if isinstance(event, ReplyDone | ReplyFailed):
            reply.ended[reply.index(event)] = event
        return event

    def _cancel(self, reply: _Reply) -> None:
        """Stop every choice (a no-op for those that ended) and any not queued yet."""
        reply.rest = None
        reply.choices = len(reply.ids)
        for request_id in reply.ids:
            reply.worker.cancel(request_id)

    def _cut_by_shutdown(self, event: Event) -> ApiError | None:
        """The error for a reply that ended only because the server is stopping, else None."""
        if not (
            self.stopping and isinstance(event, ReplyDone) and event.stats.stop_reason is StopReason.USER
        ):
            return None
        return wire.shutdown_error(event.stats.completion_tokens)

    def _finish(self, reply: _Reply, entry: RequestLog, event: Event) -> None:
        """Record how the request ended (`event`: the failure, or any choice's end) and tell the
        listeners."""
        if reply.done:  # else the choices still running keep the model (the drain lets go)
            reply.answerer.release()
        for request_id in reply.ids:
            self.active.pop(request_id, None)
        entry.state = RequestState.DONE
        entry.duration_s = time.time() - entry.at
        if isinstance(event, ReplyDone):
            stats = reply.usage_stats()
            entry.status = entry.status or 200
            entry.prompt_tokens, entry.completion_tokens = stats.prompt_tokens, stats.completion_tokens
            entry.tokens_per_s, entry.finish = stats.tokens_per_s, wire.FINISH[stats.stop_reason]
            entry.stop_reason = stats.stop_reason.value
        elif isinstance(event, ReplyFailed):
            entry.status = entry.status or wire.FAILURES.get(event.code, (500, "", ""))[0]
            entry.error = event.message
        self._notify(entry)

    async def _complete(self, request: Request, reply: _Reply, entry: RequestLog, chat: bool) -> Response:
        """Wait for every choice (stopping them if the client hangs up) and answer at once."""
        gone = False
        failed: Event | None = None
        try:
            while not reply.done:
                try:
                    event = await asyncio.wait_for(self._next(reply, entry), 0.5)
                except TimeoutError:
                    if not gone and await request.is_disconnected():
                        gone = True
                        self._cancel(reply)
                        entry.status, entry.error = 499, "client disconnected; generation stopped"
                    continue
                if isinstance(event, ReplyFailed) or self._cut_by_shutdown(event):
                    failed = event
                    self._cancel(reply)
                    break
        finally:
            self._cancel(reply)  # a no-op once they ended; stops them if this task was cancelled
            reply.answerer.release()
        if isinstance(failed, ReplyFailed):
            self._finish(reply, entry, failed)
            return wire.error_response(wire.failure(failed))
        if failed is not None and (cut := self._cut_by_shutdown(failed)):
            entry.status, entry.error = cut.status, cut.message
            self._finish(reply, entry, failed)
            return wire.error_response(cut)
        self._finish(reply, entry, reply.ended[0])
        answers = []
        for index in range(reply.choices):
            end = reply.ended[index]
            if not isinstance(end, ReplyDone):
                continue
            text, calls = end.text, None
            if reply.tools is not None:
                text, calls = read_calls(text, reply.tools.names(), reply.tools.parallel)
            logprobs = end.logprobs if reply.logprobs else None
            answers.append(wire.Answer(text, end.stats.stop_reason, logprobs, calls))
        body = wire.completion(chat, entry.model, int(entry.at), answers, reply.usage_stats())
        return JSONResponse(body)

    async def _stream(
        self, reply: _Reply, entry: RequestLog, chat: bool, include_usage: bool
    ) -> AsyncIterator[str]:
        """Server-sent events; a client that disconnects cancels this generator, which stops the replies."""
        reply.streamed = True
        chunks = wire.StreamChunks(chat, entry.model, int(entry.at))
        chunk, piece = chunks.event, chunks.piece  # bound once: they run for every token
        offsets: dict[int, int] = {}  # by choice: the length of its text sent so far
        sent: dict[int, int] = {}  # by choice: how many of its tokens' log probabilities went out
        ended = False
        try:
            if chat:  # OpenAI's first chunk of each choice names the role
                for choice in range(reply.choices):
                    yield chunks.role(choice)
            while True:
                event = await self._next(reply, entry)
                if isinstance(event, Chunk):
                    index = reply.index(event)
                    if reply.tools is not None:
                        for line in self._tool_events(chunks, reply.reader(index), event.text, index):
                            yield line
                    elif reply.logprobs:  # where this choice's tokens start: the text sent so far
                        shown = wire.logprobs(chat, event.logprobs, offsets.get(index, 0))
                        offsets[index] = offsets.get(index, 0) + len(event.text)
                        sent[index] = sent.get(index, 0) + len(event.logprobs)
                        yield chunk(piece(event.text, index=index, logprobs=shown))
                    else:
                        yield chunk(piece(event.text, index=index))
                elif cut := self._cut_by_shutdown(event):
                    # No finish_reason and no [DONE]: OpenAI clients raise, so nobody mistakes the
                    # cut text for a whole answer.
                    ended = True
                    self._cancel(reply)
                    entry.status, entry.error = 200, cut.message
                    self._finish(reply, entry, event)
                    yield wire.sse(cut.body())
                    return
                elif isinstance(event, ReplyDone):
                    index = reply.index(event)
                    # Tokens that brought no text of their own (half a character) go out with the end.
                    rest = event.logprobs[sent.get(index, 0) :] if reply.logprobs else None
                    shown = wire.logprobs(chat, rest, offsets.get(index, 0)) if rest else None
                    finish = wire.FINISH[event.stats.stop_reason]
                    if reply.tools is not None:
                        reader = reply.reader(index)
                        for line in self._tool_events(chunks, reader, None, index):
                            yield line
                        if reader.calls and finish == "stop":
                            finish = "tool_calls"
                    last = chunk(piece("", finish, index, logprobs=shown))
                    if reply.done:  # logged before the last events go out: the client may leave now
                        ended = True
                        self._finish(reply, entry, event)
                        yield last
                        if include_usage:
                            yield chunk({}, usage=wire.usage(reply.usage_stats()))
                        yield wire.DONE
                        return
                    yield last
                elif isinstance(event, ReplyFailed):
                    ended = True
                    self._cancel(reply)
                    entry.status = 200  # the headers went out already; the error travels in the stream
                    self._finish(reply, entry, event)
                    yield wire.sse(wire.failure(event).body())
                    yield wire.DONE
                    return
        finally:
            if not ended:  # the client went away (or the server is stopping): stop generating for it
                self._cancel(reply)
                if self.stopping:  # the loop is closing: no task may outlive it
                    reply.answerer.release()
                    for request_id in reply.ids:
                        self.active.pop(request_id, None)
                else:
                    self._drains.add(asyncio.get_running_loop().create_task(self._drain(reply, entry)))
            elif not reply.done and not self.stopping:  # a choice failed: the others are cut
                self._drains.add(asyncio.get_running_loop().create_task(self._drain(reply, entry)))

    @staticmethod
    def _tool_events(
        chunks: wire.StreamChunks, reader: CallReader, text: str | None, index: int
    ) -> list[str]:
        """The events for a choice's next piece of `text` (None: its end) read for tool calls: its
        text as content, each call as it is complete."""
        before = len(reader.calls)
        pieces = reader.feed(text) if text is not None else reader.finish()
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, ToolCall):
                out.extend(chunks.call(piece, before, index))
                before += 1
            elif piece:
                out.append(chunks.event(chunks.piece(piece, index=index)))
        return out

    async def _drain(self, reply: _Reply, entry: RequestLog) -> None:
        """Wait for the choices of a request whose client left to end (they were cancelled), and log
        what it cost."""
        event: Event | None = next(iter(reply.ended.values()), None)
        try:
            while not reply.done:
                event = await self._next(reply, entry)
        finally:
            reply.answerer.release()
            self._drains = {task for task in self._drains if not task.done()}
        if entry.state == RequestState.DONE or event is None:
            return  # logged already (a choice failed or the server stopped; the others were cut)
        entry.status = 499  # nginx's "client closed request"
        tokens = sum(e.stats.completion_tokens for e in reply.ended.values() if isinstance(e, ReplyDone))
        entry.error = f"client disconnected after {tokens} tokens; generation stopped"
        self._finish(reply, entry, event)
