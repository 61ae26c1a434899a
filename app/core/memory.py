"""How much memory a model needs, what this machine has, and whether one fits the other.

The estimate, for a context of `n_ctx` tokens (llama.cpp's defaults: f16 KV cache, micro-batch 512):

    weights = the GGUF file size (llama.cpp maps the whole file; metadata is a rounding error)
    kv      = n_ctx * n_layers * (k_dim + v_dim) * 2 bytes,  k_dim = n_head_kv * head_dim_k (likewise v),
              head_dim = the GGUF's attention.key_length / value_length, else n_embd / n_head
    compute = 4 bytes * 512 * (max(n_vocab, 2 * n_ff) + 8 * n_embd) + 16 MiB   (logits and activations of
              one micro-batch; without flash attention the n_ctx * n_head attention scores too: offload.py)
    total   = weights + kv + compute

Checked against llama.cpp's own report for SmolLM2-135M at 4096 tokens: KV 90.0 MiB (exact), compute
99.4 MiB (estimate 121 MiB: on the safe side). When the layer shape is unknown (the Hub's API gives
parameters, architecture and context length, not layers), the KV cache per token is taken from a
curve through common grouped-query-attention models (8B: 128 KiB per token, 1B: 32 KiB) and the
vocabulary is assumed to be 128k tokens: again on the safe side for small models.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.hub import FileGroup
    from app.core.offload import TensorBytes

MIB = 1 << 20
GIB = 1 << 30
N_UBATCH = 512
#: The vocabulary assumed when the file has not been read (Llama 3's is 128,256).
DEFAULT_VOCAB = 128_256
#: Headroom rules: a model "fits" in RAM when it needs at most this share of it (on a GPU: when every
#: layer fits its usable free memory, offload.usable_gpu_bytes)...
FIT_SHARE_RAM = 0.75
#: ...and is recommended only when it needs at most this share (room for the OS, the app and a longer chat).
RECOMMEND_SHARE_GPU = 0.90
RECOMMEND_SHARE_RAM = 0.60


@dataclass(frozen=True, slots=True)
class ModelShape:
    """What the estimate needs to know about a model; any field may be unknown (None)."""

    n_params: int | None = None
    n_layers: int | None = None
    n_embd: int | None = None
    n_head: int | None = None
    n_head_kv: int | None = None
    n_vocab: int | None = None
    context_length: int | None = None
    #: Per-head K and V widths where the model says (Qwen3, Gemma); else n_embd / n_head.
    head_dim_k: int | None = None
    head_dim_v: int | None = None
    #: Feed-forward width (for the compute buffer).
    n_ff: int | None = None
    #: Weight bytes per layer, read from the GGUF's tensor list (None when only the file size is known).
    tensors: TensorBytes | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """Memory a model needs at one context length, in bytes."""

    weights: int
    kv_cache: int
    compute: int
    context_length: int
    #: "model shape" when layers and heads were known, else "parameter count".
    basis: str

    @property
    def total(self) -> int:
        """Everything together."""
        return self.weights + self.kv_cache + self.compute


def kv_width(shape: ModelShape) -> int | None:
    """K plus V values per token in one layer (None when the heads are unknown)."""
    if not shape.n_head or not (shape.n_embd or (shape.head_dim_k and shape.head_dim_v)):
        return None
    n_head_kv = shape.n_head_kv or shape.n_head
    default_dim = (shape.n_embd or 0) // shape.n_head
    return n_head_kv * ((shape.head_dim_k or default_dim) + (shape.head_dim_v or default_dim))


def kv_bytes_per_token(shape: ModelShape, weights: int) -> tuple[int, str]:
    """K and V bytes for one token of context (f16), and what the figure is based on."""
    width = kv_width(shape)
    if shape.n_layers and width is not None:
        return shape.n_layers * width * 2, "model shape"
    params = shape.n_params or weights * 2  # about 4 bits per weight when nothing else is known
    # 128 KiB per token at 8B parameters (Llama 3 8B, Qwen 2.5 7B), scaling as params^0.6.
    return max(8 * 1024, int(131_072 * (params / 8e9) ** 0.6)), "parameter count"


def estimate(weights: int, shape: ModelShape, context_length: int, flash_attn: bool = True) -> Estimate:
    """Memory for a model of `weights` bytes at `context_length` tokens (capped at its training length)."""
    from app.core.offload import compute_bytes

    n_ctx = context_length
    if shape.context_length:
        n_ctx = min(n_ctx, shape.context_length)
    per_token, basis = kv_bytes_per_token(shape, weights)
    compute = compute_bytes(shape, n_ctx, flash_attn, with_output=True)
    return Estimate(weights, n_ctx * per_token, compute, n_ctx, basis)


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


def detect_machine() -> Machine:
    """This computer's RAM and GPUs. GPUs are found only where the installed llama.cpp can offload:
    a CPU-only build has none to offer, whatever the hardware (imports llama_cpp: not on the GUI thread)."""
    from app.core import hardware

    return hardware.detect().machine()


class Fit(Enum):
    """How a model will run on this machine."""

    GPU = "fits in GPU memory"
    RAM = "fits in RAM"
    SLOW = "may be slow"
    TOO_LARGE = "too large"

    @property
    def label(self) -> str:
        """The badge text."""
        return self.value


def fit(need: int, machine: Machine, gpu_need: int | None = None) -> Fit:
    """Classify a model needing `need` bytes (`gpu_need` of them on the GPU with every layer there, by
    offload.split; default `need`): all on the GPU within its usable free memory, in RAM with room to
    spare, only just (swapping or partial offload likely), or not at all."""
    from app.core.offload import usable_gpu_bytes

    on_gpu = need if gpu_need is None else gpu_need
    if machine.gpus and on_gpu <= usable_gpu_bytes(machine.gpu_free):
        return Fit.GPU
    if need <= FIT_SHARE_RAM * machine.ram_total:
        return Fit.RAM
    if need <= machine.ram_total + machine.gpu_free:
        return Fit.SLOW
    return Fit.TOO_LARGE


def fits_with_headroom(need: int, machine: Machine, gpu_need: int | None = None) -> bool:
    """True when a model leaves generous room: the bar for recommending it."""
    from app.core.offload import usable_gpu_bytes

    on_gpu = need if gpu_need is None else gpu_need
    if machine.gpus and on_gpu <= RECOMMEND_SHARE_GPU * usable_gpu_bytes(machine.gpu_free):
        return True
    return need <= RECOMMEND_SHARE_RAM * machine.ram_total


def describe(est: Estimate) -> str:
    """One line for a tooltip or details pane."""
    from app.core.gguf_info import format_size

    return (
        f"about {format_size(est.total)} at {est.context_length:,} tokens of context: "
        f"weights {format_size(est.weights)}, KV cache {format_size(est.kv_cache)}, "
        f"compute {format_size(est.compute)} (from the {est.basis})"
    )


def estimate_with_gpu(weights: int, shape: ModelShape, context_length: int) -> tuple[Estimate, int | None]:
    """The estimate, and what the GPU needs with every layer there by the rule "Auto" offload uses
    (offload.split; None when the layer count is unknown)."""
    from app.core.offload import layer_count, split

    est = estimate(weights, shape, context_length)
    if not shape.n_layers:
        return est, None
    return est, split(shape, weights, est.context_length, layer_count(shape)).gpu_bytes


def fit_model(weights: int, shape: ModelShape, context_length: int, machine: Machine) -> tuple[Fit, Estimate]:
    """The badge for one model at a context length: the same rule for the picker, the library and the
    browser."""
    est, gpu_need = estimate_with_gpu(weights, shape, context_length)
    return fit(est.total, machine, gpu_need), est


@dataclass(frozen=True, slots=True)
class FileFit:
    """A downloadable model with its estimate, badge and whether it is the one to pick."""

    group: FileGroup
    estimate: Estimate
    fit: Fit
    recommended: bool = False


def plan(
    groups: Sequence[FileGroup], shape: ModelShape, machine: Machine, context_length: int
) -> list[FileFit]:
    """Badges for every file of a repository, and the recommendation: the best quantization that fits
    with headroom. `groups` come best quality first; full-precision files are recommended only when a
    repository has nothing quantized that fits (Q8_0 is as good at half the memory and twice the speed)."""
    from app.core.hub import UNQUANTIZED

    fits = []
    gpu_needs = []
    for group in groups:
        est, gpu_need = estimate_with_gpu(group.size, shape, context_length)
        gpu_needs.append(gpu_need)
        fits.append(FileFit(group, est, fit(est.total, machine, gpu_need)))
    candidates = [
        i
        for i, f in enumerate(fits)
        if f.group.complete and fits_with_headroom(f.estimate.total, machine, gpu_needs[i])
    ]
    quantized = [i for i in candidates if fits[i].group.quant not in UNQUANTIZED]
    chosen = next(iter(quantized or candidates), None)
    if chosen is not None:
        fits[chosen] = FileFit(fits[chosen].group, fits[chosen].estimate, fits[chosen].fit, True)
    return fits
