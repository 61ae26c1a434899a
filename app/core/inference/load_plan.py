"""How many layers to put on the GPU, and what to try after llama.cpp runs out of GPU memory.

Auto chooses the most that fit in free GPU memory (offload.choose_gpu_layers). If llama.cpp then
runs out of memory anyway (other programs took some, or the estimate was low), the engine retries
with the next count here, and `offload_note` tells the user it had to.
"""

from __future__ import annotations

import contextlib

from app.core.inference.options import AUTO_LAYERS, LoadOptions
from app.core.models.gguf_file import ModelInfo
from app.core.models.offload import choose_gpu_layers, kv_bytes_per_token_layer, layer_count
from app.core.models.parallel import auto_parallel
from app.core.models.projector import projector_bytes
from app.core.system.hardware import Hardware
from app.core.system.machine import total_ram


def gpu_layer_attempts(info: ModelInfo, options: LoadOptions, n_ctx: int, found: Hardware) -> list[int]:
    """The GPU layer counts to load with, in order, each tried after the one before ran out of memory
    (`n_ctx` tokens for each of the options' n_parallel sequences)."""
    max_layers = layer_count(info.shape)
    flash = options.flash_attn is not False
    free = found.gpu_free if found.gpu_offload else 0
    if options.projector is not None and free:
        # The projector goes to the GPU with the layers: the layers get what it leaves.
        with contextlib.suppress(OSError):  # missing: the engine says so, and loads the model for text
            free = max(0, free - projector_bytes(options.projector.stat().st_size))
    sequences = max(1, options.n_parallel)
    plan = choose_gpu_layers(info.shape, info.file_size, n_ctx, free, options.kv_type, flash, sequences)
    fits = plan.n_gpu_layers
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


def parallel_for(info: ModelInfo, options: LoadOptions, n_ctx_seq: int, found: Hardware) -> int:
    """How many replies the context holds at once: the user's choice, or on Auto (0) up to
    AUTO_PARALLEL, fewer when their KV caches would crowd the memory (a huge context, a big model)."""
    if options.n_parallel > 0:
        return options.n_parallel
    per_sequence = kv_bytes_per_token_layer(info.shape, options.kv_type) * n_ctx_seq * (info.block_count or 0)
    on_gpu = found.gpu_offload and bool(found.devices) and options.n_gpu_layers != 0
    return auto_parallel(per_sequence, found.ram_total or total_ram(), found.gpu_free if on_gpu else 0)
