"""How many layers to put on the GPU, and what to try after llama.cpp runs out of GPU memory.

Auto chooses the most that fit in free GPU memory (offload.choose_gpu_layers). If llama.cpp then
runs out of memory anyway (other programs took some, or the estimate was low), the engine retries
with the next count here, and `offload_note` tells the user it had to.
"""

from __future__ import annotations

from app.core.inference.options import AUTO_LAYERS, LoadOptions
from app.core.models.gguf_file import ModelInfo
from app.core.models.offload import choose_gpu_layers, layer_count
from app.core.system.hardware import Hardware


def gpu_layer_attempts(info: ModelInfo, options: LoadOptions, n_ctx: int, found: Hardware) -> list[int]:
    """The GPU layer counts to load with, in order, each tried after the one before ran out of memory."""
    max_layers = layer_count(info.shape)
    flash = options.flash_attn is not False
    free = found.gpu_free if found.gpu_offload else 0
    fits = choose_gpu_layers(info.shape, info.file_size, n_ctx, free, options.kv_type, flash).n_gpu_layers
    if not found.gpu_offload or not found.devices:
        wanted = fits = 0
    elif options.n_gpu_layers == AUTO_LAYERS:
        wanted = fits
    else:
        wanted = max(0, min(options.n_gpu_layers, max_layers))
    # After a failure: what the estimate says fits (when the user asked for more), then half of it,
    # then the CPU alone. Halving blindly from a choice far above what fits could leave the GPU too
    # full for cuBLAS's workspace, which llama.cpp does not survive (it aborts the process).
    attempts = [wanted, *([fits] if fits < wanted else []), min(wanted, fits) // 2, 0]
    return list(dict.fromkeys(a for a in attempts if a <= wanted))


def offload_note(failed: int | None, loaded: int, max_layers: int) -> str | None:
    """What the user is told when the load with `failed` layers ran out of memory and `loaded` worked
    (None when the first attempt worked)."""
    if failed is None:
        return None
    where = f"{loaded} on the GPU" if loaded else "on the CPU only"
    return (
        f"The GPU ran out of memory with {failed} of {max_layers} layers, so Fireside loaded the model "
        f"with fewer: {where}. Choose fewer GPU layers or a smaller context to avoid the retry."
    )
