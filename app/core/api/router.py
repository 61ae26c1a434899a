"""From a request's `model` to what answers it, for the routes: the catalog's name (an installed
model, an alias, a remote engine's model), then a lease on the loaded model (loaded just in time by
the pool) or the remote engine's client. Also what GET /v1/models lists. No Qt here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from app.core.api.catalog import Catalog, Kind, Target, UnknownModel
from app.core.api.pool import Lease, ModelPool, PoolError
from app.core.api.schema import ApiError, ChatRequest, CompletionRequest
from app.core.remote.client import RemoteTarget

T = TypeVar("T")

NO_MODEL = (
    "No model is loaded in Fireside, and this request names none. Name one of GET /v1/models, load "
    "one in the window, or start `fireside serve --model PATH`."
)


@dataclass(frozen=True, slots=True)
class Answerer:
    """What a request got: a local model's lease, or a remote engine's model (with the window's
    worker to run it on)."""

    target: Target
    lease: Lease | None = None
    remote: RemoteTarget | None = None

    def release(self) -> None:
        """The request is over."""
        if self.lease is not None:
            self.lease.release()


async def off_loop(
    function: Callable[..., T], *args: Any, orphan: Callable[[T], None] = lambda _result: None
) -> T:
    """`function(*args)` on a short-lived thread of its own, awaited. Not the loop's executor: its
    threads outlive the call, and the server's loop lives as long as the server. When the awaiting
    request is cancelled first (its client left), `orphan` gets the result to give back."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if answer.done():
            if error is None:
                orphan(result)  # type: ignore[arg-type]
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = function(*args)
        except BaseException as exc:  # handed to the awaiting request
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(settle, None, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="fireside-api-lookup", daemon=True).start()
    return await answer


def _give_back(future: Future[Lease]) -> None:
    """Let go of a lease nobody waits for any more (pending: it is released when it comes)."""
    if not future.cancel() and not future.cancelled() and future.exception() is None:
        future.result().release()


def _unknown(exc: Exception) -> ApiError:
    return ApiError(404, str(exc), "model_not_found", "model")


class Router:
    """Names to models, over a catalog of names and a pool of loaded models."""

    def __init__(self, catalog: Catalog, pool: ModelPool) -> None:
        self.catalog = catalog
        self.pool = pool

    def _loaded_paths(self) -> list[Path]:
        return [entry.path for entry in self.pool.entries()]

    async def resolve(self, name: str) -> Target:
        """The target `name` stands for ("" names the window's model). Raises ApiError (404)."""
        if not name.strip():
            loaded = self.pool.primary.loaded
            if loaded is None:
                raise ApiError(404, NO_MODEL, "model_not_found", "model")
            return Target(loaded.info.path.stem, Kind.INSTALLED, loaded.info.path)
        embedding = self.pool.primary.embedding_model
        if embedding is not None and name.strip() in (
            embedding.path.stem,
            embedding.path.name,
            embedding.name,
        ):
            return Target(embedding.path.stem, Kind.EMBEDDING, embedding.path)
        try:
            return await off_loop(self.catalog.resolve, name, self._loaded_paths())
        except UnknownModel as exc:
            raise _unknown(exc) from exc

    def _primary_path(self) -> Path | None:
        loaded = self.pool.primary.loaded
        return loaded.info.path if loaded is not None else None

    async def answerer(self, target: Target, ttl: int | None) -> Answerer:
        """A lease on `target`'s model (loading it if needed), or its remote engine. Raises ApiError."""
        if target.kind is Kind.EMBEDDING:
            raise ApiError(
                400, f"{target.name} is the embedding model kept beside the chat model: it answers "
                "POST /v1/embeddings only.", "invalid_value", "model",
            )  # fmt: skip
        if target.kind is Kind.REMOTE:
            assert target.endpoint is not None and target.remote_model is not None
            if ttl is not None:
                raise ApiError(
                    400, f"ttl: {target.name} runs on {target.endpoint.name}, which loads and unloads its "
                    "own models; ttl applies to models Fireside loads.", "invalid_value", "ttl",
                )  # fmt: skip
            client = await off_loop(self.catalog.client, target.endpoint)
            return Answerer(target, remote=RemoteTarget(client, target.remote_model))
        assert target.path is not None
        try:
            future = await off_loop(self.pool.acquire, target.path, ttl, orphan=_give_back)
            try:
                lease = await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                _give_back(future)  # the client left while the model loaded
                raise
        except PoolError as exc:
            raise ApiError(
                exc.status, exc.message, exc.code, "ttl" if exc.status == 400 else "model"
            ) from exc
        return Answerer(target, lease=lease)

    async def listing(self) -> list[dict[str, Any]]:
        """GET /v1/models's `data`: loaded models first (the window's at the top, where clients that
        take the first model find it), then aliases, installed models and remote engines' models."""
        paths = self._loaded_paths()
        loaded = {str(path) for path in paths}
        targets = await off_loop(self.catalog.targets, paths)
        primary = self._primary_path()

        def order(target: Target) -> int:
            if target.path is not None and primary is not None and target.path == primary:
                return 0 if target.kind is Kind.INSTALLED else 1
            if target.kind is Kind.INSTALLED and str(target.path) in loaded:
                return 1
            return {Kind.ALIAS: 2, Kind.INSTALLED: 3, Kind.REMOTE: 4, Kind.EMBEDDING: 1}[target.kind]

        out = []
        for target in sorted(targets, key=order):
            local = target.kind is not Kind.REMOTE
            entry: dict[str, Any] = {
                "id": target.name,
                "object": "model",
                "created": 0,
                "owned_by": target.endpoint.name if target.endpoint is not None else "fireside",
                # LM Studio's field: clients show which names answer at once.
                "state": "loaded" if local and str(target.path) in loaded else "not-loaded",
                "kind": target.kind.value,
            }
            if target.alias is not None:
                entry["model"] = target.alias.model.stem
            out.append(entry)
        embedding = self.pool.primary.embedding_model
        if embedding is not None and all(e["id"] != embedding.path.stem for e in out):
            # The embedding model kept beside the window's: POST /v1/embeddings answers with it.
            kept = {"id": embedding.path.stem, "object": "model", "created": 0, "owned_by": "fireside"}
            out.insert(
                1 if out and out[0]["state"] == "loaded" else 0,
                {**kept, "state": "loaded", "kind": "embedding"},
            )
        return out


def remote_refusal(body: ChatRequest | CompletionRequest) -> ApiError | None:
    """The first field a request sets that Fireside does not forward to a remote engine, refused by
    name (a field is never silently dropped), or None."""
    if isinstance(body, CompletionRequest):
        return ApiError(
            400, "A remote engine's model answers POST /v1/chat/completions here; Fireside does not "
            "forward text completions.", "unsupported_value", "model",
        )  # fmt: skip
    unsent: Sequence[tuple[str, bool]] = (
        ("n", body.n > 1),
        ("logit_bias", bool(body.logit_bias)),
        ("logprobs", bool(body.logprobs)),
        ("top_logprobs", body.top_logprobs is not None),
        ("tools", bool(body.tools)),
        ("tool_choice", body.tool_choice is not None),
        ("parallel_tool_calls", body.parallel_tool_calls is not None),
        ("response_format", body.response_format is not None),
        ("prompt_cache_key", body.prompt_cache_key is not None),
    )
    for name, present in unsent:
        if present:
            return ApiError(
                400, f"{name}: Fireside does not forward this field to a remote engine's model; send "
                "the request to the engine itself.", "unsupported_value", name,
            )  # fmt: skip
    return None
