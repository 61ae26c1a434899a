"""How many replies a model generates at once when "Parallel replies" is on Auto.

Every reply has a sequence, and every sequence a KV cache of its own, so Auto takes AUTO_PARALLEL
only where all of their KV caches fit comfortably, and fewer (at least one) for a huge context or a
big model. The loader and the fit badges use the same rule, so a badge counts what a load would.
"""

from __future__ import annotations

#: "Parallel replies" on Auto: this many sequences where the KV cache of all of them fits comfortably.
AUTO_PARALLEL = 4
#: ...comfortably: their KV cache takes at most this share of RAM (on the CPU) or of free GPU memory.
KV_SHARE_RAM = 0.25
KV_SHARE_GPU = 0.40


def auto_parallel(kv_bytes_per_sequence: float, ram_total: int, gpu_free: int = 0) -> int:
    """The sequences Auto gives a model whose every sequence's KV cache takes `kv_bytes_per_sequence`:
    in GPU memory when `gpu_free` is given (the KV cache goes where the layers go), else in RAM."""
    if kv_bytes_per_sequence <= 0:
        return AUTO_PARALLEL
    budget = KV_SHARE_GPU * gpu_free if gpu_free > 0 else KV_SHARE_RAM * ram_total
    return max(1, min(AUTO_PARALLEL, int(budget // kv_bytes_per_sequence)))
