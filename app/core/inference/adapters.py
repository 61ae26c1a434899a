"""LoRA adapters on the loaded model: loaded once each (llama_adapter_lora_init), applied per batch
(llama_set_adapters_lora), never a reload of the base model.

A reply asks for an adapter set: (path, scale) pairs. The set is part of what a sequence's KV cache
holds (keys and values computed with an adapter are not the base model's), so it is part of the
sequence's identity: a reply is only given the cached start of a sequence computed with the same
set. llama.cpp applies one set to a whole batch, so replies with different sets take turns, one
set per step, as llama.cpp's own server does.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from app.core.inference.errors import InvalidInput
from app.core.system import binding

#: (adapter path, scale), sorted by path; () for the base model alone.
AdapterSet = tuple[tuple[str, float], ...]
#: A scale must lie in 0 … MAX_SCALE (0 gives exactly the base model's output).
MAX_SCALE = 2.0


class AdapterError(InvalidInput):
    """An adapter cannot be used with the loaded model; the message says why."""


def adapter_set(adapters: Sequence[tuple[str | os.PathLike[str], float]]) -> AdapterSet:
    """The canonical set of `adapters` (AdapterError for a scale out of range or a missing file)."""
    chosen: dict[str, float] = {}
    for path, scale in adapters:
        name = os.path.basename(os.fspath(path))
        if not isinstance(scale, int | float) or not 0.0 <= float(scale) <= MAX_SCALE:
            raise AdapterError(
                f"The scale {scale!r} of the adapter “{name}” is out of range: use 0 to {MAX_SCALE:g}."
            )
        if not os.path.isfile(path):
            raise AdapterError(f"The adapter “{name}” is missing (it was moved or deleted).")
        chosen[os.path.abspath(os.fspath(path))] = float(scale)
    return tuple(sorted(chosen.items()))


def set_key(adapters: AdapterSet) -> str:
    """A short name of an adapter set, for cache keys ("" for the base model alone)."""
    if not adapters:
        return ""
    text = ";".join(f"{path}={scale:.4f}" for path, scale in adapters)
    return "lora:" + hashlib.sha256(text.encode()).hexdigest()[:16]


class Adapters:
    """The adapters loaded for one model (only the inference thread uses it)."""

    def __init__(self, llama_cpp: Any, model: Any, model_name: str) -> None:
        self._llama, self._model, self._model_name = llama_cpp, model, model_name
        self._loaded: dict[str, Any] = {}
        self._applied: dict[int, AdapterSet] = {}  # per context (by address): the set it has now

    def load(self, adapters: AdapterSet) -> None:
        """Load every adapter of the set not loaded yet (AdapterError saying why one cannot be)."""
        for path, _scale in adapters:
            if path in self._loaded:
                continue
            binding.log_tail.clear()
            handle = self._llama.llama_adapter_lora_init(self._model, path.encode("utf-8"))
            if not handle:
                raise AdapterError(self._why_not(os.path.basename(path)))
            self._loaded[path] = handle

    def apply(self, ctx: Any, adapters: AdapterSet) -> None:
        """Give context `ctx` this adapter set for its next decode (nothing when it has it)."""
        key = int(ctypes.cast(ctx, ctypes.c_void_p).value or 0)
        if self._applied.get(key, ()) == adapters:
            return
        self.load(adapters)
        count = len(adapters)
        handles = (self._llama.llama_adapter_lora_p_ctypes * max(1, count))(
            *(self._loaded[path] for path, _ in adapters)
        )
        scales = (ctypes.c_float * max(1, count))(*(scale for _, scale in adapters))
        if int(self._llama.llama_set_adapters_lora(ctx, handles, count, scales)) != 0:
            raise AdapterError("llama.cpp could not apply the adapters to the model.")
        self._applied[key] = adapters

    def forget_context(self, ctx: Any) -> None:
        """A context is freed: what it had applied no longer counts."""
        self._applied.pop(int(ctypes.cast(ctx, ctypes.c_void_p).value or 0), None)

    def close(self) -> None:
        """Free every adapter (before the model is freed)."""
        for handle in self._loaded.values():
            self._llama.llama_adapter_lora_free(handle)
        self._loaded.clear()
        self._applied.clear()

    def _why_not(self, name: str) -> str:
        tail = " ".join(binding.log_tail)
        model = self._model_name
        if "incorrect shape" in tail or "not transposed" in tail:
            return (
                f"The adapter “{name}” does not fit {model}: its weights have other shapes (another "
                "width or layer count), so it was made for another base model."
            )
        if "arch mismatch" in tail:
            return f"The adapter “{name}” was made for another architecture than {model}'s."
        if "general.type" in tail or "adapter.type" in tail:
            return f"“{name}” is not a LoRA adapter."
        last = binding.log_tail[-1] if binding.log_tail else ""
        return f"The adapter “{name}” could not be loaded (damaged, or not an adapter). {last}".strip()
