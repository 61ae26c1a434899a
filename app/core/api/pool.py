"""The models loaded for the API: the one the window (or `fireside serve`) loaded, on the app's
inference thread, and others loaded just in time for requests that name them, each on an inference
thread of its own (so each keeps its own batch, slots and KV cache, as llama.cpp's router mode keeps
a server per model), all within a memory budget, each unloaded after an idle time.

A request takes a `Lease` on its model while it runs: a model with a lease is never unloaded. Two
requests for a model that is not loaded share one load. A load that would go over the budget first
unloads idle models, least recently used first; when that is not enough, it is refused with what
takes the memory. The window's model counts against the budget but is never unloaded here. No Qt.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path

from app.core.inference.events import Event, EventSink, Loaded, LoadFailed
from app.core.inference.options import LoadedModel, LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.models.estimate import estimate, replies_at_once
from app.core.models.gguf_file import ModelFileError, inspect_model
from app.core.system.machine import Machine, total_ram
from app.core.values.units import rough_size

log = logging.getLogger(__name__)

#: Share of the RAM (and of the GPU's memory) the Auto budget gives the models together: the rest
#: stays for the system, the window and the apps the user runs beside it.
AUTO_SHARE = 0.75
#: The longest `ttl` a request may ask for (a day).
MAX_TTL_S = 86_400


def auto_budget(machine: Machine) -> int:
    """The Auto memory budget on `machine`: three quarters of its RAM and of its largest GPU."""
    gpu = max((g.total for g in machine.gpus), default=0)
    if not machine.ram_total:  # the RAM could not be read: no budget rather than refusing every load
        return 1 << 62
    return int(AUTO_SHARE * (machine.ram_total + gpu))


class PoolError(Exception):
    """A model cannot be had now; `status` and `code` are the API's answer, the message the user's."""

    def __init__(self, message: str, status: int = 503, code: str = "model_unavailable") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


@dataclass(slots=True)
class _Held:
    """A model loaded (or loading) for requests, on a worker of its own."""

    path: Path
    worker: InferenceThread
    #: Bytes it takes: the estimate until llama.cpp has said what it allocated.
    need: int
    ready: Future[LoadedModel] = field(default_factory=Future)
    users: int = 0
    last_used: float = 0.0
    #: Seconds it may stay idle (None: the pool's idle time).
    ttl_s: float | None = None


@dataclass(frozen=True, slots=True)
class PoolEntry:
    """One loaded model as the window and GET /v1/models see it."""

    path: Path
    #: The window's model (or `fireside serve --model`'s): never unloaded by the pool.
    primary: bool
    bytes: int
    #: Requests using it now.
    users: int
    #: Seconds until it is unloaded when no request comes (None: never, or in use).
    unload_in_s: float | None
    loading: bool = False


class Lease:
    """A request's hold on a loaded model: the worker that generates with it. Release it once."""

    def __init__(
        self, pool: ModelPool, worker: InferenceThread, model: LoadedModel, held: _Held | None
    ) -> None:
        self._pool, self.worker, self.model, self._held = pool, worker, model, held
        self._released = False

    @property
    def primary(self) -> bool:
        """True for the window's model."""
        return self._held is None

    def release(self) -> None:
        """The request is over (idempotent): its model may be unloaded once idle."""
        if not self._released:
            self._released = True
            self._pool._release(self._held)


class ModelPool:
    """Which worker holds each loaded model, and loading, counting and unloading them."""

    def __init__(
        self,
        primary: InferenceThread,
        *,
        options: Callable[[Path], LoadOptions] = lambda path: LoadOptions(),
        budget: Callable[[], int] = lambda: 0,
        idle_s: Callable[[], float] = lambda: 300.0,
        prepare: Callable[[InferenceThread], None] = lambda worker: None,
        machine: Machine | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self._options = options
        self._budget = budget
        self._idle_s = idle_s
        #: Called on each new worker before its load (speculation settings, say).
        self._prepare = prepare
        self._machine = machine or Machine(total_ram())
        self._clock = clock
        self._lock = threading.Condition()
        self._held: dict[str, _Held] = {}
        self._listeners: list[Callable[[], None]] = []
        #: Counts close(): a reaper started before the last one ends.
        self._generation = 0
        #: Loads started, ever (two requests for one model not loaded make one).
        self.loads = 0
        self._gateway: InferenceThread | None = None
        self._reaper: threading.Thread | None = None

    # ----- reading -----------------------------------------------------------------------

    def budget_bytes(self) -> int:
        """The budget in bytes (the setting, or Auto's share of this machine)."""
        return self._budget() or auto_budget(self._machine)

    def entries(self) -> list[PoolEntry]:
        """The models loaded now (the window's first), with what they take."""
        out = []
        primary = self.primary.loaded
        if primary is not None:
            out.append(PoolEntry(primary.info.path, True, _model_bytes(primary), 0, None))
        now = self._clock()
        with self._lock:
            for held in self._held.values():
                loading = not held.ready.done()
                left = None
                if not loading and held.users == 0 and (ttl := self._ttl(held)) > 0:
                    left = max(0.0, held.last_used + ttl - now)
                out.append(PoolEntry(held.path, False, held.need, held.users, left, loading))
        return out

    def workers(self) -> list[InferenceThread]:
        """Every worker: the window's, then the pool's."""
        with self._lock:
            gateway = [self._gateway] if self._gateway is not None else []
            return [self.primary, *(h.worker for h in self._held.values()), *gateway]

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on any thread) whenever a model is loaded or unloaded by the pool."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a broken view must not break serving
                log.exception("pool listener failed")

    def gateway(self) -> InferenceThread:
        """The worker that runs requests for remote engines' models (no model of its own; started
        on first use): the window's remote replies never wait behind the API's, nor the reverse."""
        with self._lock:
            if self._gateway is None:
                self._gateway = InferenceThread(lambda _event: None, name="fireside-api-gateway")
                self._gateway.start()
            return self._gateway

    # ----- taking a model ----------------------------------------------------------------

    def acquire(self, path: Path, ttl_s: float | None = None) -> Future[Lease]:
        """A lease on the model at `path`, loading it if needed (the future is done when it is
        loaded). `ttl_s`: how long it may stay idle after this request. Raises PoolError for a model
        over the budget; the future fails with PoolError when the load fails. Blocking for as long
        as reading the file's header takes (call it off the event loop)."""
        if ttl_s is not None and not 0 < ttl_s <= MAX_TTL_S:
            raise PoolError(f"ttl must be between 1 and {MAX_TTL_S:,} seconds.", 400, "invalid_value")
        primary = self.primary.loaded
        if primary is not None and _same(primary.info.path, path):
            if ttl_s is not None:
                raise PoolError(
                    f"ttl: {path.stem} is the model loaded in Fireside's window (or by `fireside serve "
                    "--model`), which stays loaded; ttl applies to models loaded for a request.",
                    400,
                    "invalid_value",
                )
            done: Future[Lease] = Future()
            done.set_result(Lease(self, self.primary, primary, None))
            return done
        key = _path_key(path)
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                held.users += 1
                if ttl_s is not None:
                    held.ttl_s = ttl_s
                return self._lease_when_ready(held)
        need, options = self._plan(path)
        with self._lock:
            held = self._held.get(key)  # another request may have started the load meanwhile
            if held is not None:
                held.users += 1
                if ttl_s is not None:
                    held.ttl_s = ttl_s
                return self._lease_when_ready(held)
            evicted = self._make_room(path, need)
            held = _Held(path, InferenceThread(self._sink_for(key), name=f"fireside-api-{path.stem}"), need)
            held.users, held.ttl_s, held.last_used = 1, ttl_s, self._clock()
            self._held[key] = held
            self.loads += 1
            lease = self._lease_when_ready(held)
        threading.Thread(
            target=self._load, args=(held, options, evicted), name="fireside-pool-load", daemon=True
        ).start()
        return lease

    def _plan(self, path: Path) -> tuple[int, LoadOptions]:
        """What loading `path` takes (bytes, by the memory estimate) and how to load it."""
        try:
            info = inspect_model(path)
        except ModelFileError as exc:
            raise PoolError(str(exc), 500, "model_load_failed") from exc
        options = self._options(path)
        projector = options.projector
        projector_size = projector.stat().st_size if projector is not None and projector.is_file() else 0
        sequences = replies_at_once(
            options.n_parallel, info.file_size, info.shape, options.context_length, self._machine
        )
        est = estimate(
            info.file_size, info.shape, options.context_length, sequences=sequences, projector=projector_size
        )
        return est.total, options

    def _make_room(self, path: Path, need: int) -> list[_Held]:
        """Take idle models out (least recently used first) until `need` more bytes fit; the ones
        taken out, to shut down. Raises PoolError naming what holds the memory. Under the lock."""
        budget = self.budget_bytes()
        if need > budget:
            raise PoolError(
                f"{path.stem} needs about {rough_size(need)}, more than the whole memory budget "
                f"({rough_size(budget)}). Raise the budget in the server panel (or `fireside serve "
                "--memory-budget`), or choose a smaller quantization or context.",
                507,
                "memory_budget",
            )
        primary = self.primary.loaded
        used = _model_bytes(primary) if primary is not None else 0
        used += sum(h.need for h in self._held.values())
        idle = sorted(
            (h for h in self._held.values() if h.users == 0 and h.ready.done()), key=lambda h: h.last_used
        )
        evicted: list[_Held] = []
        while used + need > budget and idle:
            held = idle.pop(0)
            evicted.append(held)
            used -= held.need
            del self._held[_path_key(held.path)]
            log.info("unloading %s to make room for %s", held.path.name, path.name)
        if used + need > budget:
            for held in evicted:  # nothing changes after all
                self._held[_path_key(held.path)] = held
            takers = []
            if primary is not None:
                takers.append(
                    f"{primary.info.path.stem} ({rough_size(_model_bytes(primary))}, the window's model)"
                )
            takers += [
                f"{h.path.stem} ({rough_size(h.need)}, {'loading' if not h.ready.done() else 'in use'})"
                for h in self._held.values()
            ]
            raise PoolError(
                f"{path.stem} needs about {rough_size(need)}, and the memory budget "
                f"({rough_size(budget)}) has {rough_size(max(0, budget - used))} left: "
                f"{'; '.join(takers)}. Try again once their requests end (an idle model is unloaded "
                "to make room), choose a smaller model in the window, or raise the memory budget in "
                "the server panel (or `fireside serve --memory-budget`).",
                507,
                "memory_budget",
            )
        return evicted

    def _lease_when_ready(self, held: _Held) -> Future[Lease]:
        lease: Future[Lease] = Future()

        def ready(done: Future[LoadedModel]) -> None:
            if not lease.set_running_or_notify_cancel():  # the client left while it waited
                if done.exception() is None:
                    self._release(held)
                return
            error = done.exception()
            if error is not None:
                lease.set_exception(error)
            else:
                lease.set_result(Lease(self, held.worker, done.result(), held))

        held.ready.add_done_callback(ready)
        return lease

    def _sink_for(self, key: str) -> EventSink:
        def sink(event: Event) -> None:  # on the new worker's thread: only its load reports here
            with self._lock:
                held = self._held.get(key)
            if held is None or held.ready.done():
                return
            if isinstance(event, Loaded):
                measured = _model_bytes(event.model)
                with self._lock:
                    held.need = measured
                    held.last_used = self._clock()
                    self._lock.notify_all()
                _settle(held.ready, event.model)
                self._changed()
            elif isinstance(event, LoadFailed):
                with self._lock:
                    if self._held.get(key) is held:
                        del self._held[key]
                _settle(held.ready, PoolError(event.message, 500, "model_load_failed"))
                threading.Thread(target=held.worker.shutdown, daemon=True).start()
                self._changed()

        return sink

    def _load(self, held: _Held, options: LoadOptions, evicted: list[_Held]) -> None:
        """On a thread of its own: unload what had to make room, then load (the worker reports)."""
        for old in evicted:
            old.worker.shutdown()
        if evicted:
            self._changed()
        worker = held.worker
        with self._lock:
            if self._held.get(_path_key(held.path)) is not held:  # the pool closed meanwhile
                _settle(held.ready, PoolError("The server stopped before the model was loaded."))
                return
            worker.start()  # under the lock: a close() from now on finds it started, and shuts it down
        try:
            self._prepare(worker)
        except Exception:
            log.exception("preparing a worker failed")
        worker.load(held.path, options)
        self._start_reaper()

    # ----- letting go ----------------------------------------------------------------------

    def _ttl(self, held: _Held) -> float:
        return held.ttl_s if held.ttl_s is not None else self._idle_s()

    def _release(self, held: _Held | None) -> None:
        if held is None:
            return
        with self._lock:
            held.users = max(0, held.users - 1)
            held.last_used = self._clock()
            self._lock.notify_all()
        self._changed()

    def _start_reaper(self) -> None:
        with self._lock:
            if self._reaper is None:
                generation = self._generation
                self._reaper = threading.Thread(
                    target=self._reap, args=(generation,), name="fireside-pool-idle", daemon=True
                )
                self._reaper.start()

    def _reap(self, generation: int) -> None:
        """Unload models idle for longer than their time, until the pool closes."""
        while True:
            with self._lock:
                if self._generation != generation:
                    return
                now = self._clock()
                due: list[_Held] = []
                wait: float | None = None
                for key, held in list(self._held.items()):
                    ttl = self._ttl(held)
                    if held.users or not held.ready.done() or ttl <= 0:
                        continue
                    left = held.last_used + ttl - now
                    if left <= 0:
                        due.append(held)
                        del self._held[key]
                    else:
                        wait = left if wait is None else min(wait, left)
                if not due:
                    self._lock.wait(wait if wait is not None else 60.0)
                    continue
            for held in due:
                log.info("unloading %s: idle for %.0f s", held.path.name, self._ttl(held))
                held.worker.shutdown()
            self._changed()

    def poke(self) -> None:
        """The idle time or budget changed: look at the idle models again now."""
        with self._lock:
            self._lock.notify_all()

    def unload(self, path: Path) -> bool:
        """Unload a model the pool loaded, if no request uses it; True when it did."""
        with self._lock:
            held = self._held.get(_path_key(path))
            if held is None or held.users or not held.ready.done():
                return False
            del self._held[_path_key(path)]
        held.worker.shutdown()
        self._changed()
        return True

    def close(self) -> None:
        """Unload every model the pool loaded (the server stops); the window's model stays. The pool
        can be used again afterwards (a restart)."""
        with self._lock:
            self._generation += 1
            self._reaper = None
            held, self._held = list(self._held.values()), {}
            gateway, self._gateway = self._gateway, None
            self._lock.notify_all()
        if gateway is not None:
            gateway.shutdown()
        for entry in held:
            entry.worker.shutdown()
            _settle(entry.ready, PoolError("The server stopped before the model was loaded."))
        if held:
            self._changed()


def _settle(future: Future[LoadedModel], outcome: LoadedModel | PoolError) -> None:
    """Give a load's future its outcome, unless it has one (a close and the load's own report may
    race to it)."""
    with contextlib.suppress(InvalidStateError):
        if isinstance(outcome, PoolError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _model_bytes(model: LoadedModel) -> int:
    """What a loaded model takes: what llama.cpp said it allocated, or the file's size."""
    return model.memory_bytes or model.info.file_size


def _path_key(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)


def _same(a: Path, b: Path) -> bool:
    return _path_key(a) == _path_key(b)
