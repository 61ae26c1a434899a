"""GPU offload: how much memory each choice of GPU layers needs, and the best choice for a GPU's free memory.

llama.cpp's rule (llama-model.cpp, `i_gpu_start`): with `n_gpu_layers = g`, the output layer goes to
the GPU first, then the last g - 1 repeating layers; the input layer (token embeddings) always stays
on the CPU. So g runs from 0 (CPU only) to n_layers + 1 (everything). For a choice g:

    GPU weights = output tensors (if g >= 1) + the bytes of the last g - 1 blocks, read per tensor from
                  the GGUF (a tied output reuses token_embd: llama.cpp copies it to the GPU)
    GPU KV      = n_ctx * (k_dim + v_dim) * bytes per element of the KV cache type, per GPU layer
    GPU compute = the compute buffer of one micro-batch (see `compute_bytes`), once any layer is there
    CPU         = the rest of the weights (mapped from the file), the KV of CPU layers, a compute buffer

"Auto" picks the largest g whose GPU total fits in the GPU's free memory less a safety margin (the
driver, other programs and fragmentation need room; a failed load costs more than one layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.models.shape import MIB, N_UBATCH, ModelShape, TensorBytes, kv_width

#: KV cache types llama.cpp offers: ggml type id and bytes per element (q8_0: 34 bytes per 32 values).
KV_TYPES: dict[str, tuple[int, float]] = {"f16": (1, 2.0), "q8_0": (8, 34 / 32), "q4_0": (2, 18 / 32)}
KV_TYPE_HINTS = {
    "f16": "Full precision (default): best quality.",
    "q8_0": "Half the memory of f16, quality almost the same. Needs flash attention.",
    "q4_0": "A quarter of f16's memory; some quality loss on long contexts. Needs flash attention.",
}
#: Never plan to use the last this much of a GPU's free memory...
MIN_MARGIN = 512 * MIB
#: ...or this share of it, whichever is more.
MARGIN_SHARE = 0.06


def kv_bytes_per_token_layer(shape: ModelShape, kv_type: str = "f16") -> float:
    """K and V bytes for one token in one layer."""
    return (kv_width(shape) or 0) * KV_TYPES[kv_type][1]


def compute_bytes(shape: ModelShape, n_ctx: int, flash_attn: bool, with_output: bool) -> int:
    """The compute buffer llama.cpp reserves for one micro-batch of N_UBATCH tokens.

    The largest intermediate results dominate: the logits (n_vocab floats per token) where the output
    layer runs, and without flash attention the attention scores (n_ctx * n_head floats per token);
    then a few activations of width n_embd and n_ff. On the safe side of llama.cpp's own figures."""
    n_vocab = shape.n_vocab or 128_256
    n_embd = shape.n_embd or 4096
    n_ff = shape.n_ff or 4 * n_embd
    widest = max(n_vocab if with_output else 0, 0 if flash_attn else n_ctx * (shape.n_head or 32), 2 * n_ff)
    return 4 * N_UBATCH * (widest + 8 * n_embd) + 16 * MIB


@dataclass(frozen=True, slots=True)
class Split:
    """Memory on the GPU and on the CPU for one choice of GPU layers, in bytes."""

    n_gpu_layers: int
    gpu_weights: int
    gpu_kv: int
    gpu_compute: int
    cpu_weights: int
    cpu_kv: int
    cpu_compute: int

    @property
    def gpu_bytes(self) -> int:
        """Everything on the GPU."""
        return self.gpu_weights + self.gpu_kv + self.gpu_compute

    @property
    def cpu_bytes(self) -> int:
        """Everything in RAM (weights are mapped from the file, so the OS may page them)."""
        return self.cpu_weights + self.cpu_kv + self.cpu_compute


def layer_count(shape: ModelShape) -> int:
    """The largest useful n_gpu_layers: every block plus the output layer."""
    return (shape.n_layers or 0) + 1


def split(
    shape: ModelShape,
    file_size: int,
    n_ctx: int,
    n_gpu_layers: int,
    kv_type: str = "f16",
    flash_attn: bool = True,
    sequences: int = 1,
) -> Split:
    """Where the memory goes with `n_gpu_layers` on the GPU (clamped to 0..layer_count), for a context
    of `sequences` replies at once, each with a KV cache of its own `n_ctx` tokens."""
    n_layers = shape.n_layers or 0
    g = max(0, min(n_gpu_layers, n_layers + 1))
    weights = shape.tensors
    if weights is None or len(weights.layers) != n_layers or not n_layers:
        # Tensor sizes unknown (a split file, or only the API's numbers): spread the file evenly, with
        # the input and output layers each as large as one block.
        per = file_size // max(1, n_layers + 2)
        weights = TensorBytes((per,) * n_layers, per, per)
    on_gpu = (weights.output if g >= 1 else 0) + sum(weights.layers[n_layers - (g - 1) :] if g >= 2 else ())
    gpu_weights = on_gpu + (weights.tied_output if g >= 1 else 0)
    cpu_weights = max(0, file_size - on_gpu)  # mapped from the file: what stays in RAM
    per_layer_kv = kv_bytes_per_token_layer(shape, kv_type) * n_ctx * max(1, sequences)
    gpu_blocks = max(0, g - 1)
    gpu_kv = int(per_layer_kv * gpu_blocks)
    cpu_kv = int(per_layer_kv * (n_layers - gpu_blocks))
    gpu_compute = compute_bytes(shape, n_ctx, flash_attn, with_output=g >= 1) if g >= 1 else 0
    # The CPU keeps a compute buffer for what runs there (all of it when g == 0: the logits too).
    cpu_compute = compute_bytes(shape, n_ctx, flash_attn, with_output=g == 0) if g <= n_layers else 16 * MIB
    return Split(g, gpu_weights, gpu_kv, gpu_compute, cpu_weights, cpu_kv, cpu_compute)


def usable_gpu_bytes(free_bytes: int) -> int:
    """Free GPU memory less the safety margin."""
    return max(0, free_bytes - max(MIN_MARGIN, int(MARGIN_SHARE * free_bytes)))


@dataclass(frozen=True, slots=True)
class Plan:
    """The chosen number of GPU layers, what it costs, and why."""

    n_gpu_layers: int
    max_layers: int
    split: Split
    reason: str

    @property
    def full(self) -> bool:
        """Every layer on the GPU."""
        return self.max_layers > 1 and self.n_gpu_layers >= self.max_layers


def choose_gpu_layers(
    shape: ModelShape,
    file_size: int,
    n_ctx: int,
    free_gpu_bytes: int,
    kv_type: str = "f16",
    flash_attn: bool = True,
    sequences: int = 1,
) -> Plan:
    """The largest n_gpu_layers whose GPU memory fits the free memory less the margin ("Auto")."""
    top = layer_count(shape)
    usable = usable_gpu_bytes(free_gpu_bytes)
    if free_gpu_bytes <= 0 or top <= 1:
        reason = "no GPU to offload to" if free_gpu_bytes <= 0 else "the model's layer count is unknown"
        return Plan(0, top, split(shape, file_size, n_ctx, 0, kv_type, flash_attn, sequences), reason)
    # GPU memory grows with each layer, so a binary search finds the largest that fits.
    low, high, best = 0, top, 0
    while low <= high:
        middle = (low + high) // 2
        if split(shape, file_size, n_ctx, middle, kv_type, flash_attn, sequences).gpu_bytes <= usable:
            best, low = middle, middle + 1
        else:
            high = middle - 1
    chosen = split(shape, file_size, n_ctx, best, kv_type, flash_attn, sequences)
    gib = 1 << 30
    if best >= top:
        reason = f"all {top} layers fit in {usable / gib:.1f} GiB of usable GPU memory"
    elif best == 0:
        reason = f"not even one layer fits in {usable / gib:.1f} GiB of usable GPU memory"
    else:
        reason = f"{best} of {top} layers fit in {usable / gib:.1f} GiB of usable GPU memory"
    return Plan(best, top, chosen, reason)


@dataclass(frozen=True, slots=True)
class OffloadSettings:
    """A model's GPU and CPU options as the user set them (None = Auto)."""

    n_gpu_layers: int | None = None
    flash_attn: bool | None = None
    kv_type: str = "f16"
    n_threads: int = 0  # 0 = Auto

    def problems(self, max_threads: int = 1024) -> list[str]:
        """Messages for out-of-range values (empty when valid)."""
        out = []
        if self.n_gpu_layers is not None and not (0 <= self.n_gpu_layers <= 10_000):
            out.append(f"GPU layers must be Auto or 0 or more, not {self.n_gpu_layers}")
        if self.kv_type not in KV_TYPES:
            out.append(f"KV cache type must be one of {', '.join(KV_TYPES)}, not {self.kv_type!r}")
        if not 0 <= self.n_threads <= max_threads:
            out.append(f"CPU threads must be Auto (0) or 1 – {max_threads}, not {self.n_threads}")
        if self.kv_type != "f16" and self.flash_attn is False:
            out.append(
                f"a {self.kv_type} KV cache needs flash attention (llama.cpp quantizes V only with it)"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the settings file."""
        return {
            "n_gpu_layers": self.n_gpu_layers,
            "flash_attn": self.flash_attn,
            "kv_type": self.kv_type,
            "n_threads": self.n_threads,
        }

    @classmethod
    def from_dict(cls, data: Any) -> OffloadSettings:
        """From the settings file; anything unreadable or out of range falls back to Auto."""
        if not isinstance(data, dict):
            return cls()
        layers = data.get("n_gpu_layers")
        flash = data.get("flash_attn")
        kv = data.get("kv_type")
        threads = data.get("n_threads")
        made = cls(
            n_gpu_layers=layers if isinstance(layers, int) and not isinstance(layers, bool) else None,
            flash_attn=flash if isinstance(flash, bool) else None,
            kv_type=kv if isinstance(kv, str) and kv in KV_TYPES else "f16",
            n_threads=threads if isinstance(threads, int) and not isinstance(threads, bool) else 0,
        )
        if made.problems():
            return cls(kv_type=made.kv_type if made.kv_type in KV_TYPES else "f16")
        return made
