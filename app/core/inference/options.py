"""What a load asks for (LoadOptions) and what it gives (LoadedModel), as front ends see them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.core.models.gguf_file import ModelInfo


def default_threads() -> int:
    """CPU threads for generation: every core on small machines, half (one per physical core) on SMT ones."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return available if available <= 4 else max(4, available // 2)


#: LoadOptions.n_gpu_layers meaning "as many as fit in free GPU memory" (offload.choose_gpu_layers).
AUTO_LAYERS = -1


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How to load a model."""

    context_length: int = 4096
    n_threads: int = 0  # 0 = default_threads()
    n_gpu_layers: int = AUTO_LAYERS  # or 0 (CPU only) .. n_layers + 1 (everything on the GPU)
    flash_attn: bool | None = None  # None = let llama.cpp decide
    kv_type: str = "f16"  # "f16" | "q8_0" | "q4_0"
    #: Replies generated at once, each in a sequence of its own context_length (0 = Auto).
    n_parallel: int = 0
    #: The vision projector (mmproj file) that lets the model read images, or None (text only).
    projector: Path | None = None


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model ready for chat, as the UI and the self-test see it."""

    info: ModelInfo
    context_length: int
    n_threads: int
    load_s: float
    template_is_default: bool
    gpu_offload_supported: bool
    #: What llama.cpp allocated for this model (weights, KV cache, compute and output buffers), in bytes,
    #: as it reports it in its log; None if it did not say. Compared with the memory estimate.
    memory_bytes: int | None = None
    #: GPU offload as loaded: layers on the GPU (of max_gpu_layers), what the estimate said they need, and
    #: what llama.cpp allocated on GPUs (None when it said nothing).
    backend: str = "CPU"
    n_gpu_layers: int = 0
    max_gpu_layers: int = 0
    estimated_gpu_bytes: int = 0
    gpu_memory_bytes: int | None = None
    kv_type: str = "f16"
    #: Set when the load had to fall back (fewer GPU layers after running out of GPU memory).
    offload_note: str | None = None
    #: Each buffer llama.cpp reported: (device buffer such as "CUDA0" or "CPU_Mapped", "model" | "KV" |
    #: "compute" | "output", bytes).
    buffers: tuple[tuple[str, str, int], ...] = ()
    #: Replies the context generates at once (its sequences, each of context_length tokens).
    n_parallel: int = 1
    #: The vision projector loaded with it (None: the model reads text only).
    projector: Path | None = None
    #: Why the projector asked for was not loaded (the model then reads text only), or None.
    vision_note: str | None = None
    #: The draft model guessing its replies (speculative decoding), and why the one chosen is not.
    draft_model: Path | None = None
    draft_note: str | None = None

    @property
    def vision(self) -> bool:
        """True when the model can read images (a projector is loaded with it)."""
        return self.projector is not None
