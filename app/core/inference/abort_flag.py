"""A stop flag llama.cpp reads inside llama_decode without calling into Python.

llama.cpp asks its abort callback after every node of the graph: hundreds of times per decode. A
Python callback would take the GIL each time, and while another Python thread (the API server's
event loop, the window) holds it, the compute thread waits at that node with its partner threads
spinning at the next barrier. So the callback is C's `strlen`, pointed at a two-byte buffer: an
empty string (0, false) while nothing is stopped, b"\\x01" (1, true) once every reply in the batch
is. A `bool` return is read from the low byte of the return register on every ABI llama.cpp
supports, where strlen's result sits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any


def _strlen_address() -> int:
    """The address of the C library's strlen."""
    if sys.platform == "win32":
        libc = ctypes.cdll.msvcrt
    else:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
    if not address:  # pragma: no cover - every C library has strlen
        raise OSError("strlen not found in the C library")
    return address


class AbortFlag:
    """The abort callback and its data for llama_context_params, and the switch that trips it."""

    def __init__(self, llama_cpp: Any) -> None:
        self._buffer = ctypes.create_string_buffer(2)  # b"\0\0": strlen 0
        #: ggml_abort_callback: C's strlen (kept referenced: llama.cpp holds the pointer).
        self.callback = llama_cpp.ggml_abort_callback(_strlen_address())
        #: abort_callback_data: the flag's buffer.
        self.data = ctypes.cast(self._buffer, ctypes.c_void_p)

    def set(self) -> None:
        """Stop the decode in progress at its next node (and any decode until `clear`)."""
        self._buffer[0] = b"\x01"

    def clear(self) -> None:
        """Let decodes run."""
        self._buffer[0] = b"\x00"

    def is_set(self) -> bool:
        """True when a decode would stop now (what llama.cpp sees)."""
        return self._buffer[0] != b"\x00"
