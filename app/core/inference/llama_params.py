"""The parameters Fireside gives llama.cpp to open a model file and to create a context.

Kept apart from the engine, which owns what these calls return (the model, the context) and frees it.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any

from app.core.inference.abort_flag import AbortFlag
from app.core.inference.errors import EngineError, LoadCancelled
from app.core.inference.options import LoadOptions
from app.core.models.gguf_file import ModelInfo
from app.core.models.offload import KV_TYPES
from app.core.system import binding

#: Tokens evaluated per llama_decode call (and llama.cpp's batch sizes, set to match).
N_BATCH = 512


def open_model(
    llama_cpp: Any, info: ModelInfo, n_gpu_layers: int, progress: Callable[[float], bool] | None
) -> Any:
    """llama_model_load_from_file with `n_gpu_layers` on the GPU: the model (EngineError when it fails)."""
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = n_gpu_layers
    params.use_mmap = True
    aborted = threading.Event()
    if progress is not None:

        def on_progress(fraction: float, _user: ctypes.c_void_p) -> bool:
            keep_going = bool(progress(float(fraction)))
            if not keep_going:
                aborted.set()
            return keep_going

        c_progress = llama_cpp.llama_progress_callback(on_progress)
        params.progress_callback = c_progress
    binding.log_tail.clear()
    binding.buffers.clear()
    model = llama_cpp.llama_model_load_from_file(str(info.path).encode("utf-8"), params)
    if not model:
        if aborted.is_set():
            raise LoadCancelled(f"{info.path.name}: loading was cancelled")
        raise EngineError(f"{info.path.name}: llama.cpp could not load this model. {last_error()}")
    return model


def context_params(
    llama_cpp: Any, options: LoadOptions, n_ctx: int, threads: int, abort: AbortFlag, parallel: int = 1
) -> Any:
    """llama_context_params for `parallel` sequences of `n_ctx` tokens each, loaded with `options`."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx * parallel
    params.n_seq_max = parallel
    # Each sequence its own part of the KV cache (llama.cpp's advice when they do not share a long
    # prefix): attention then looks only at a sequence's own tokens.
    params.kv_unified = False
    params.n_batch = N_BATCH
    params.n_ubatch = N_BATCH
    params.n_threads = threads
    params.n_threads_batch = threads
    params.no_perf = True
    if options.flash_attn is not None:
        params.flash_attn_type = 1 if options.flash_attn else 0
    if options.kv_type != "f16":
        # A quantized V cache needs flash attention in llama.cpp; "auto" would refuse it on a device
        # without, so it is asked for explicitly.
        params.type_k = params.type_v = KV_TYPES[options.kv_type][0]
        params.flash_attn_type = 1
    params.abort_callback = abort.callback
    params.abort_callback_data = abort.data
    return params


def last_error() -> str:
    """llama.cpp's last logged error, as "(llama.cpp: ...)" to end a message with ("" if none)."""
    lines = [line for line in binding.log_tail if "error" in line.lower() or "fail" in line.lower()]
    return f"(llama.cpp: {lines[-1]})" if lines else ""
