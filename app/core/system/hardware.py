"""What this computer offers llama.cpp: the backend it was built with, its GPUs and their memory, RAM, CPUs.

Devices are listed through ggml's own backend registry (`ggml_backend_dev_*` in libggml, the library
llama-cpp-python loads), so Fireside sees exactly the devices llama.cpp will use, with the free memory
the backend itself reports. llama-cpp-python does not wrap these functions, so they are called through
ctypes on the same library. Where that API is missing (an older llama.cpp), `nvidia-smi` is asked
instead, and only for a build that can offload at all: a CPU-only build has no GPU to offer, whatever
the hardware. No Qt here.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.system.binding import import_llama_cpp
from app.core.system.machine import Gpu, Machine, total_ram

log = logging.getLogger(__name__)

#: ggml_backend_dev_type (ggml-backend.h): CPU, GPU, IGPU (integrated, shares RAM), ACCEL, META.
_DEVICE_KINDS = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel", 4: "meta"}
#: Registry names ggml gives its GPU backends, as people know them.
_BACKEND_NAMES = {
    "cuda": "CUDA", "metal": "Metal", "vulkan": "Vulkan", "rocm": "ROCm", "hip": "ROCm", "sycl": "SYCL",
    "opencl": "OpenCL", "cann": "CANN", "musa": "MUSA", "kompute": "Kompute", "rpc": "RPC", "blas": "BLAS",
}  # fmt: skip
#: How to install llama-cpp-python with a GPU backend (the README's "GPU acceleration" says more).
_PIP = 'pip install --force-reinstall --no-cache-dir "llama-cpp-python>=0.3.36,<0.4"'
GPU_INSTALL_COMMANDS = {
    "NVIDIA (CUDA)": f'CMAKE_ARGS="-DGGML_CUDA=on" {_PIP}',
    "Apple silicon (Metal)": f'CMAKE_ARGS="-DGGML_METAL=on" {_PIP}',
    "AMD, Intel and others (Vulkan)": f'CMAKE_ARGS="-DGGML_VULKAN=on" {_PIP}',
}


@dataclass(frozen=True, slots=True)
class Device:
    """One device llama.cpp can put layers on."""

    name: str
    description: str
    kind: str  # "gpu" | "igpu" | "accel" | "cpu"
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True, slots=True)
class Hardware:
    """What llama.cpp can use on this computer."""

    backend: str  # "CPU", "CUDA", "Metal", "Vulkan", ... (the GPU backend, if any, else CPU)
    gpu_offload: bool
    devices: tuple[Device, ...] = ()  # GPUs only (the CPU is always there)
    ram_total: int = 0
    ram_available: int = 0
    cpu_threads: int = 1
    source: str = "ggml"  # where the device list came from: "ggml", "nvidia-smi" or "none"
    notes: tuple[str, ...] = field(default=())

    @property
    def gpu_free(self) -> int:
        """Free memory of the GPU with the most (llama.cpp can split, but one device is the honest basis)."""
        return max((d.free_bytes for d in self.devices), default=0)

    @property
    def best_gpu(self) -> Device | None:
        """The GPU with the most free memory, or None."""
        return max(self.devices, key=lambda d: d.free_bytes, default=None)

    def machine(self) -> Machine:
        """The memory summary the fit badges use."""
        gpus = tuple(Gpu(d.description or d.name, d.total_bytes, d.free_bytes) for d in self.devices)
        return Machine(ram_total=self.ram_total or total_ram(), gpus=gpus)

    def to_json(self) -> dict[str, Any]:
        """Plain data for `--selftest --json`."""
        return {
            "backend": self.backend,
            "gpu_offload": self.gpu_offload,
            "devices": [
                {"name": d.name, "description": d.description, "kind": d.kind,
                 "total_bytes": d.total_bytes, "free_bytes": d.free_bytes}
                for d in self.devices
            ],
            "ram_total_bytes": self.ram_total,
            "ram_available_bytes": self.ram_available,
            "cpu_threads": self.cpu_threads,
            "device_source": self.source,
        }  # fmt: skip

    def summary(self) -> str:
        """One line for a status bar or a log."""
        if not self.devices:
            return f"{self.backend} · no GPU · {self.cpu_threads} CPU threads"
        gpu = self.best_gpu
        assert gpu is not None
        return f"{self.backend} · {gpu.description or gpu.name} · {gpu.free_bytes / 2**30:.1f} GiB free"


def cpu_threads() -> int:
    """Logical CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_ram() -> int:
    """RAM that can be had without swapping (MemAvailable on Linux; the total elsewhere)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return total_ram()


class _Ggml:
    """The few ggml backend-registry functions Fireside needs, bound with ctypes."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        p, size = ctypes.c_void_p, ctypes.c_size_t
        self.reg_count = self._bind(lib, "ggml_backend_reg_count", size, [])
        self.reg_get = self._bind(lib, "ggml_backend_reg_get", p, [size])
        self.reg_name = self._bind(lib, "ggml_backend_reg_name", ctypes.c_char_p, [p])
        self.reg_dev_count = self._bind(lib, "ggml_backend_reg_dev_count", size, [p])
        self.reg_dev_get = self._bind(lib, "ggml_backend_reg_dev_get", p, [p, size])
        self.dev_name = self._bind(lib, "ggml_backend_dev_name", ctypes.c_char_p, [p])
        self.dev_description = self._bind(lib, "ggml_backend_dev_description", ctypes.c_char_p, [p])
        self.dev_type = self._bind(lib, "ggml_backend_dev_type", ctypes.c_int, [p])
        self.dev_memory = self._bind(
            lib, "ggml_backend_dev_memory", None, [p, ctypes.POINTER(size), ctypes.POINTER(size)]
        )

    @staticmethod
    def _bind(lib: ctypes.CDLL, name: str, restype: Any, argtypes: list[Any]) -> Any:
        function = getattr(lib, name)  # AttributeError: this llama.cpp predates the device API
        function.restype = restype
        function.argtypes = argtypes
        return function

    def devices(self) -> list[tuple[str, Device]]:
        """(backend registry name, device) for every device of every registered backend."""
        out = []
        for r in range(int(self.reg_count())):
            reg = self.reg_get(r)
            reg_name = (self.reg_name(reg) or b"").decode("utf-8", "replace")
            for d in range(int(self.reg_dev_count(reg))):
                dev = self.reg_dev_get(reg, d)
                free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
                self.dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
                out.append((reg_name, Device(
                    name=(self.dev_name(dev) or b"").decode("utf-8", "replace"),
                    description=(self.dev_description(dev) or b"").decode("utf-8", "replace"),
                    kind=_DEVICE_KINDS.get(int(self.dev_type(dev)), "other"),
                    total_bytes=int(total.value),
                    free_bytes=int(free.value),
                )))  # fmt: skip
        return out


def _ggml_library(llama_cpp: Any) -> ctypes.CDLL:
    folder = Path(llama_cpp.__file__).parent / "lib"
    for name in ("libggml.so", "libggml.dylib", "ggml.dll"):
        if (folder / name).exists():
            return ctypes.CDLL(str(folder / name))
    raise OSError(f"no ggml library in {folder}")


def _backend_name(registries: list[str]) -> str:
    for reg in registries:
        name = _BACKEND_NAMES.get(reg.lower().split("_")[0])
        if name is not None and name != "BLAS":
            return name
    return "CPU"


def parse_nvidia_smi(text: str) -> list[Device]:
    """Devices from `nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits`."""
    devices = []
    for i, line in enumerate(text.strip().splitlines()):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        try:
            total, free = int(float(parts[1])) << 20, int(float(parts[2])) << 20
        except ValueError:
            continue
        devices.append(Device(f"CUDA{i}", parts[0], "gpu", total, free))
    return devices


def _nvidia_smi() -> list[Device]:
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        result = subprocess.run(
            [tool, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(result.stdout)


def detect(llama_cpp: Any | None = None) -> Hardware:
    """Ask the installed llama.cpp what it can use (imports llama_cpp when not given; takes ~1 ms after)."""
    if llama_cpp is None:
        llama_cpp = import_llama_cpp()
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    notes: list[str] = []
    source = "ggml"
    try:
        found = _Ggml(_ggml_library(llama_cpp)).devices()
        registries = list(dict.fromkeys(reg for reg, _ in found))
        gpus = [d for _, d in found if d.kind in ("gpu", "igpu")]
        backend = _backend_name(registries)
    except (OSError, AttributeError) as exc:
        log.info("ggml's device API is not available (%s); asking nvidia-smi", exc)
        gpus = _nvidia_smi() if offload else []
        source = "nvidia-smi" if gpus else "none"
        backend = "CUDA" if gpus else ("GPU" if offload else "CPU")
    if not offload:
        gpus = []  # a CPU-only build cannot use them, whatever is plugged in
        notes.append(
            "This copy of llama.cpp was built for the CPU only. To use a GPU, reinstall llama-cpp-python "
            "with CUDA, Metal or Vulkan (README, “GPU acceleration”)."
        )
    return Hardware(
        backend=backend if offload else "CPU",
        gpu_offload=offload,
        devices=tuple(gpus),
        ram_total=total_ram(),
        ram_available=available_ram(),
        cpu_threads=cpu_threads(),
        source=source,
        notes=tuple(notes),
    )


def from_json(data: dict[str, Any]) -> Hardware:
    """The inverse of Hardware.to_json (for fixtures and cached reports)."""
    return Hardware(
        backend=str(data["backend"]),
        gpu_offload=bool(data["gpu_offload"]),
        devices=tuple(
            Device(
                d["name"],
                d.get("description", ""),
                d.get("kind", "gpu"),
                int(d["total_bytes"]),
                int(d["free_bytes"]),
            )
            for d in data.get("devices", [])
        ),
        ram_total=int(data.get("ram_total_bytes", 0)),
        ram_available=int(data.get("ram_available_bytes", 0)),
        cpu_threads=int(data.get("cpu_threads", 1)),
        source=str(data.get("device_source", "ggml")),
    )


def detect_machine() -> Machine:
    """This computer's RAM and GPUs. GPUs are found only where the installed llama.cpp can offload:
    a CPU-only build has none to offer, whatever the hardware (imports llama_cpp: not on the GUI thread)."""
    return detect().machine()
