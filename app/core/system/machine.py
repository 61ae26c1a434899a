"""The memory this computer offers a model: RAM and GPUs, as value types, and the RAM size."""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU llama.cpp can offload to."""

    name: str
    total: int
    free: int


@dataclass(frozen=True, slots=True)
class Machine:
    """The memory this computer offers to a model."""

    ram_total: int
    gpus: tuple[Gpu, ...] = ()

    @property
    def gpu_free(self) -> int:
        """Free memory of the largest GPU (llama.cpp can split, but one device is the honest default)."""
        return max((g.free for g in self.gpus), default=0)


def total_ram() -> int:
    """Physical memory in bytes (0 if it cannot be read)."""
    if sys.platform == "win32":

        class MemoryStatus(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong),
                ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong),
                ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong),
                ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong),
                ("ullAvailVirtual", ctypes.c_ulonglong),
                ("sullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        status = MemoryStatus()
        status.dwLength = ctypes.sizeof(MemoryStatus)
        ok = ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status))  # type: ignore[attr-defined]
        return int(status.ullTotalPhys) if ok else 0
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0
