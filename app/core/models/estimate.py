"""How much memory a model needs at a context length, and whether it fits this machine.

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

from dataclasses import dataclass
from enum import Enum, StrEnum

from app.core.models.offload import compute_bytes, layer_count, split, usable_gpu_bytes
from app.core.models.parallel import auto_parallel
from app.core.models.projector import projector_bytes
from app.core.models.shape import ModelShape, kv_width
from app.core.system.machine import Machine
from app.core.values.units import format_size

#: Headroom rules: a model "fits" in RAM when it needs at most this share of it (on a GPU: when every
#: layer fits its usable free memory, offload.usable_gpu_bytes)...
FIT_SHARE_RAM = 0.75
#: ...and is recommended only when it needs at most this share (room for the OS, the app and a longer chat).
RECOMMEND_SHARE_GPU = 0.90
RECOMMEND_SHARE_RAM = 0.60


class Basis(StrEnum):
    """What the KV-cache figure of an estimate rests on, in words ("from the model shape")."""

    #: Layers and heads were known: the figure is exact.
    SHAPE = "model shape"
    #: Only the parameter count (or the file size) was known: a curve through common models.
    PARAMETER_COUNT = "parameter count"


@dataclass(frozen=True, slots=True)
class Estimate:
    """Memory a model needs at one context length, in bytes."""

    weights: int
    kv_cache: int
    compute: int
    context_length: int
    basis: Basis
    #: The vision projector loaded with the model (its weights and working memory; 0: none).
    projector: int = 0

    @property
    def total(self) -> int:
        """Everything together."""
        return self.weights + self.kv_cache + self.compute + self.projector


def kv_bytes_per_token(shape: ModelShape, weights: int) -> tuple[int, Basis]:
    """K and V bytes for one token of context (f16), and what the figure is based on."""
    width = kv_width(shape)
    if shape.n_layers and width is not None:
        return shape.n_layers * width * 2, Basis.SHAPE
    params = shape.n_params or weights * 2  # about 4 bits per weight when nothing else is known
    # 128 KiB per token at 8B parameters (Llama 3 8B, Qwen 2.5 7B), scaling as params^0.6.
    return max(8 * 1024, int(131_072 * (params / 8e9) ** 0.6)), Basis.PARAMETER_COUNT


def estimate(
    weights: int,
    shape: ModelShape,
    context_length: int,
    flash_attn: bool = True,
    sequences: int = 1,
    projector: int = 0,
) -> Estimate:
    """Memory for a model of `weights` bytes at `context_length` tokens (capped at its training length)
    for each of `sequences` replies at once (each has a KV cache of its own), with a vision projector
    of `projector` bytes (its file size; 0: none)."""
    n_ctx = context_length
    if shape.context_length:
        n_ctx = min(n_ctx, shape.context_length)
    per_token, basis = kv_bytes_per_token(shape, weights)
    compute = compute_bytes(shape, n_ctx, flash_attn, with_output=True)
    kv = n_ctx * per_token * max(1, sequences)
    return Estimate(weights, kv, compute, n_ctx, basis, projector_bytes(projector))


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
    on_gpu = need if gpu_need is None else gpu_need
    if machine.gpus and on_gpu <= RECOMMEND_SHARE_GPU * usable_gpu_bytes(machine.gpu_free):
        return True
    return need <= RECOMMEND_SHARE_RAM * machine.ram_total


def describe(est: Estimate) -> str:
    """One line for a tooltip or details pane."""
    vision = f", vision projector {format_size(est.projector)}" if est.projector else ""
    return (
        f"about {format_size(est.total)} at {est.context_length:,} tokens of context: "
        f"weights {format_size(est.weights)}, KV cache {format_size(est.kv_cache)}, "
        f"compute {format_size(est.compute)}{vision} (from the {est.basis})"
    )


def estimate_with_gpu(
    weights: int, shape: ModelShape, context_length: int, sequences: int = 1, projector: int = 0
) -> tuple[Estimate, int | None]:
    """The estimate, and what the GPU needs with every layer there by the rule "Auto" offload uses
    (offload.split, and the projector, which goes where the layers go; None when the layer count is
    unknown)."""
    est = estimate(weights, shape, context_length, sequences=sequences, projector=projector)
    if not shape.n_layers:
        return est, None
    gpu = split(shape, weights, est.context_length, layer_count(shape), sequences=sequences).gpu_bytes
    return est, gpu + est.projector


def replies_at_once(
    choice: int, weights: int, shape: ModelShape, context_length: int, machine: Machine
) -> int:
    """How many sequences a load gets with "Parallel replies" at `choice`: that many, or on Auto (0)
    what the loader's rule gives on `machine` (fewer for a big model or context)."""
    if choice > 0:
        return choice
    n_ctx = min(context_length, shape.context_length) if shape.context_length else context_length
    per_token, _basis = kv_bytes_per_token(shape, weights)
    return auto_parallel(per_token * n_ctx, machine.ram_total, machine.gpu_free)


def fit_model(
    weights: int,
    shape: ModelShape,
    context_length: int,
    machine: Machine,
    parallel: int = 1,
    projector: int = 0,
) -> tuple[Fit, Estimate]:
    """The badge for one model at a context length with "Parallel replies" at `parallel` (0: Auto),
    with its vision projector of `projector` bytes: the same rule for the picker, the library and
    the browser."""
    sequences = replies_at_once(parallel, weights, shape, context_length, machine)
    est, gpu_need = estimate_with_gpu(weights, shape, context_length, sequences, projector)
    return fit(est.total, machine, gpu_need), est
