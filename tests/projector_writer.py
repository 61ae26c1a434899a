"""Write a tiny vision projector (mmproj) GGUF with the `gguf` package: a random-weight CLIP encoder
and a LLaVA-style MLP projector, named and keyed as llama.cpp's tools/mtmd/clip.cpp reads them.

Its output is noise, but it is a real projector: llama.cpp's multimodal library loads it, checks its
output width against the text model's (576 for the starter model), turns an image into
(image_size / patch_size)² embeddings, and different images give different embeddings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter

#: The starter model's embedding width (SmolLM2-135M): what the projector must output to fit it.
STARTER_WIDTH = 576


def write_projector(
    path: Path,
    *,
    width: int = STARTER_WIDTH,
    image_size: int = 64,
    patch_size: int = 16,
    dim: int = 64,
    ffn: int = 96,
    heads: int = 4,
    layers: int = 2,
    hidden: int = 128,
    seed: int = 0,
) -> int:
    """Write the projector; returns how many tokens one image becomes ((image_size / patch_size)²)."""
    rng = np.random.default_rng(seed)
    n_patches = (image_size // patch_size) ** 2
    w = GGUFWriter(path, "clip")
    w.add_name("test-clip-mlp")
    w.add_file_type(1)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_bool("clip.use_gelu", True)
    prefix = "clip.vision"
    w.add_uint32(f"{prefix}.image_size", image_size)
    w.add_uint32(f"{prefix}.patch_size", patch_size)
    w.add_uint32(f"{prefix}.embedding_length", dim)
    w.add_uint32(f"{prefix}.feed_forward_length", ffn)
    w.add_uint32(f"{prefix}.block_count", layers)
    w.add_uint32(f"{prefix}.projection_dim", width)
    w.add_uint32(f"{prefix}.attention.head_count", heads)
    w.add_float32(f"{prefix}.attention.layer_norm_epsilon", 1e-5)
    w.add_array(f"{prefix}.image_mean", [0.5, 0.5, 0.5])
    w.add_array(f"{prefix}.image_std", [0.5, 0.5, 0.5])

    def weight(name: str, *shape: int, scale: float = 0.05) -> None:
        # Numpy order is ggml's reversed: a (rows, cols) matrix maps cols inputs to rows outputs.
        w.add_tensor(name, (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float16))

    def vector(name: str, n: int, value: float | None = None) -> None:
        data = (
            np.full(n, value, dtype=np.float32)
            if value is not None
            else rng.standard_normal(n, dtype=np.float32) * 0.02
        )
        w.add_tensor(name, data.astype(np.float32))

    weight("v.patch_embd.weight", dim, 3, patch_size, patch_size)
    vector("v.patch_embd.bias", dim)
    vector("v.class_embd", dim)
    w.add_tensor(
        "v.position_embd.weight", (rng.standard_normal((n_patches + 1, dim), dtype=np.float32) * 0.02)
    )
    vector("v.pre_ln.weight", dim, 1.0)
    vector("v.pre_ln.bias", dim, 0.0)
    for i in range(layers):
        block = f"v.blk.{i}"
        for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
            weight(f"{block}.{part}.weight", dim, dim)
            vector(f"{block}.{part}.bias", dim)
        vector(f"{block}.ln1.weight", dim, 1.0)
        vector(f"{block}.ln1.bias", dim, 0.0)
        vector(f"{block}.ln2.weight", dim, 1.0)
        vector(f"{block}.ln2.bias", dim, 0.0)
        weight(f"{block}.ffn_up.weight", ffn, dim)
        vector(f"{block}.ffn_up.bias", ffn)
        weight(f"{block}.ffn_down.weight", dim, ffn)
        vector(f"{block}.ffn_down.bias", dim)
    weight("mm.0.weight", hidden, dim)
    vector("mm.0.bias", hidden)
    weight("mm.2.weight", width, hidden)
    vector("mm.2.bias", width)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_patches
