"""llama.cpp's shared library: imported once, lazily, with its log routed into Python logging.

The log is also read: its last lines explain a failed load, and the buffer sizes it reports are what
llama.cpp really allocated (compared with the memory estimate). `stopping` is set while a user's stop
aborts a computation, which llama.cpp reports as errors that are not.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import re
import threading
from typing import Any

log_tail: collections.deque[str] = collections.deque(maxlen=30)
#: Buffer sizes (MiB) llama.cpp reported since the last load began: "CPU KV buffer size =  90.00 MiB".
buffers: list[tuple[str, str, float]] = []  # (device buffer, what: model/KV/compute/output, MiB)
#: "CUDA0 model buffer size = 1.0 MiB", "CPU  output buffer size", "CUDA_Host compute buffer size".
_BUFFER_RE = re.compile(r"(\S+)\s+(?:(\w+)\s+)?buffer size\s*=\s*([0-9.]+) MiB")
#: Set while a stop is aborting llama_decode (see Engine._abort).
stopping = threading.Event()
_log_callback: Any = None


_log_install_lock = threading.Lock()


def _install_log_handler(llama_cpp: Any) -> None:
    """Send llama.cpp's log to Python logging instead of stderr, keeping the tail for error messages."""
    with _log_install_lock:  # two threads may import llama_cpp at once (inference, hardware detection)
        _install_log_handler_once(llama_cpp)


def _install_log_handler_once(llama_cpp: Any) -> None:
    global _log_callback
    if _log_callback is not None:
        return
    llama_log = logging.getLogger("fireside.llama_cpp")
    # ggml's levels: 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line.
    levels = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
    last = [logging.DEBUG]

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        py_level = last[0] if level == 5 else levels.get(level, logging.DEBUG)
        if stopping.is_set():
            py_level = logging.DEBUG  # a user's stop aborts llama_decode, which llama.cpp logs as errors
        last[0] = py_level
        line = text.decode("utf-8", "replace").rstrip()
        if line:
            log_tail.append(line)
            if (found := _BUFFER_RE.search(line)) is not None:
                buffers.append((found.group(1), found.group(2) or "", float(found.group(3))))
            llama_log.log(py_level, "%s", line)

    _log_callback = callback  # keep the C callback alive for the process's lifetime
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def import_llama_cpp() -> Any:
    """Import llama_cpp lazily (it loads a large shared library) with its log routed to Python."""
    import llama_cpp

    _install_log_handler(llama_cpp)
    return llama_cpp


_mtmd_lock = threading.Lock()
_mtmd_logged = False


def import_mtmd() -> Any:
    """Import llama.cpp's multimodal library (vision projectors) lazily, its log routed like
    llama.cpp's own; raises OSError or ImportError when this build has none."""
    global _mtmd_logged
    llama_cpp = import_llama_cpp()
    from llama_cpp import mtmd_cpp

    with _mtmd_lock:
        if not _mtmd_logged:
            mtmd_cpp.mtmd_helper_log_set(_log_callback, ctypes.c_void_p(0))
            _mtmd_logged = True
    del llama_cpp
    return mtmd_cpp


def llama_cpp_version() -> str:
    """Version of the installed llama-cpp-python."""
    return str(import_llama_cpp().__version__)


def gpu_offload_supported() -> bool:
    """True when the installed llama.cpp was built with a GPU backend."""
    return bool(import_llama_cpp().llama_supports_gpu_offload())


def is_gpu_buffer(name: str) -> bool:
    """A device buffer, not host memory (CPU, CPU_Mapped, CPU_REPACK, CUDA_Host, ...)."""
    return not name.upper().startswith("CPU") and "HOST" not in name.upper()


def buffer_totals() -> tuple[int | None, int | None]:
    """(all buffers, GPU buffers) llama.cpp reported since the last load began, in bytes."""
    if not buffers:
        return None, None
    mib = 1024 * 1024
    gpu = [size for name, _what, size in buffers if is_gpu_buffer(name)]
    return int(sum(size for _, _, size in buffers) * mib), (int(sum(gpu) * mib) if gpu else None)


_OOM_HINTS = ("out of memory", "failed to allocate", "unable to allocate", "cudamalloc", "alloc_buffer")


def looks_out_of_memory() -> bool:
    """llama.cpp's recent log says an allocation failed (it names the cause only there)."""
    return any(hint in line.lower() for line in log_tail for hint in _OOM_HINTS)
