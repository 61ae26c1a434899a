"""Write LoRA adapters in GGUF with the `gguf` package, for a base model given as a GGUF file: small
random low-rank weights for its attention's q and v projections, named and shaped as llama.cpp's
llama-adapter.cpp reads them (`<tensor>.lora_a` of ne [n_in, rank], `<tensor>.lora_b` of ne
[rank, n_out], general.type = adapter, adapter.type = lora, adapter.lora.alpha)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFWriter


def write_lora(
    path: Path,
    base: Path,
    *,
    rank: int = 8,
    strength: float = 0.05,
    targets: tuple[str, ...] = ("attn_q", "attn_v"),
    architecture: str | None = None,
    width: int | None = None,
    seed: int = 3,
) -> Path:
    """An adapter for `base` (its architecture and shapes; `architecture` or `width` to make one that
    does not fit, for the refusals)."""
    reader = GGUFReader(base)
    arch = architecture or str(reader.fields["general.architecture"].contents())
    rng = np.random.default_rng(seed)
    w = GGUFWriter(path, arch)
    w.add_string("general.type", "adapter")
    w.add_name("test-lora")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(rank))
    for tensor in reader.tensors:
        name = tensor.name
        if not name.startswith("blk.") or name.rsplit(".", 2)[-2] not in targets:
            continue
        n_in, n_out = int(tensor.shape[0]), int(tensor.shape[1])
        if width is not None:
            n_in = width
        stem = name.removesuffix(".weight")
        # numpy's shapes are ggml's reversed: lora_a (rank, n_in) is ne [n_in, rank].
        w.add_tensor(
            f"{stem}.weight.lora_a", (rng.standard_normal((rank, n_in)) * strength).astype(np.float32)
        )
        w.add_tensor(
            f"{stem}.weight.lora_b", (rng.standard_normal((n_out, rank)) * strength).astype(np.float32)
        )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
