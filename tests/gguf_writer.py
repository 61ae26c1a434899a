"""Write small GGUF models with the `gguf` package: real files of chosen shape, for the offload estimate.

The tensors hold random values; the tokenizer is a minimal SentencePiece-style vocabulary, so
llama.cpp loads the llama-architecture files and can even generate (nonsense) with them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter, TokenType
from gguf.quants import quantize

from app.core.models.shape import TensorBytes

DTYPES = {"f32": GGMLQuantizationType.F32, "f16": GGMLQuantizationType.F16, "q8_0": GGMLQuantizationType.Q8_0}


def _bytes(shape: tuple[int, ...], kind: GGMLQuantizationType) -> int:
    block, size = GGML_QUANT_SIZES[kind]
    return int(np.prod(shape)) * size // block


def write_model(
    path: Path,
    *,
    arch: str = "llama",
    layers: int = 4,
    dim: int = 64,
    ffn: int = 128,
    heads: int = 4,
    kv_heads: int = 2,
    vocab: int = 320,
    dtype: str = "f16",
    tied: bool = False,
    head_dim: int | None = None,
    ctx: int = 512,
    strings: dict[str, str] | None = None,
) -> TensorBytes:
    """Write the model; returns the byte counts each group of tensors should have (by hand).
    `strings` adds string metadata (general.description, tokenizer.chat_template, ...)."""
    rng = np.random.default_rng(0)
    kind = DTYPES[dtype]
    head_dim = head_dim or dim // heads
    w = GGUFWriter(path, arch)
    w.add_name(f"test-{arch}-{layers}L-{dtype}")
    w.add_context_length(ctx)
    w.add_embedding_length(dim)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    if head_dim != dim // heads:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_file_type({"f32": 0, "f16": 1, "q8_0": 7}[dtype])
    for key, value in (strings or {}).items():
        w.add_string(key, value)
    tokens, scores = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(TokenType.BYTE)
    while len(tokens) < vocab:
        tokens.append(f"\u2581w{len(tokens)}")
        scores.append(-float(len(tokens)))
        types.append(TokenType.NORMAL)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    sizes: dict[str, int] = {}

    def matrix(name: str, rows: int, cols: int) -> None:
        data = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float32)
        if kind is GGMLQuantizationType.Q8_0:
            w.add_tensor(name, quantize(data, kind), raw_dtype=kind)
        else:
            w.add_tensor(name, data.astype(np.float16 if kind is GGMLQuantizationType.F16 else np.float32))
        sizes[name] = _bytes((rows, cols), kind)

    def norm(name: str, n: int) -> None:
        w.add_tensor(name, np.ones(n, dtype=np.float32))  # norms stay f32, as converters write them
        sizes[name] = 4 * n

    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    matrix("token_embd.weight", vocab, dim)
    for i in range(layers):
        norm(f"blk.{i}.attn_norm.weight", dim)
        matrix(f"blk.{i}.attn_q.weight", q_dim, dim)
        matrix(f"blk.{i}.attn_k.weight", kv_dim, dim)
        matrix(f"blk.{i}.attn_v.weight", kv_dim, dim)
        matrix(f"blk.{i}.attn_output.weight", dim, q_dim)
        norm(f"blk.{i}.ffn_norm.weight", dim)
        matrix(f"blk.{i}.ffn_gate.weight", ffn, dim)
        matrix(f"blk.{i}.ffn_up.weight", ffn, dim)
        matrix(f"blk.{i}.ffn_down.weight", dim, ffn)
    norm("output_norm.weight", dim)
    if not tied:
        matrix("output.weight", vocab, dim)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    per_layer = tuple(sum(v for k, v in sizes.items() if k.startswith(f"blk.{i}.")) for i in range(layers))
    output = sizes["output_norm.weight"] + sizes.get("output.weight", 0)
    return TensorBytes(
        per_layer, sizes["token_embd.weight"], output, sizes["token_embd.weight"] if tied else 0
    )


def damage_string(path: Path, key: str, at: int = 0, bad: bytes = b"\x80\xff") -> None:
    """Overwrite bytes `at` of the string value of metadata `key` with `bad` (invalid UTF-8 by
    default), in place: the file keeps its length and layout, as a flipped byte on disk would."""
    import struct

    data = bytearray(path.read_bytes()[: 64 << 20])
    encoded = key.encode()
    # A key is stored as its uint64 length and bytes, then the value's type (8: string), then the
    # string's uint64 length and bytes.
    where = data.find(struct.pack("<Q", len(encoded)) + encoded + struct.pack("<I", 8))
    assert where >= 0, f"{key} is not a string key of {path.name}"
    value = where + 8 + len(encoded) + 4
    length = struct.unpack_from("<Q", data, value)[0]
    assert at + len(bad) <= length, f"{key} holds only {length} bytes"
    with open(path, "r+b") as handle:
        handle.seek(value + 8 + at)
        handle.write(bad)


def write_bert(
    path: Path, *, dim: int = 64, layers: int = 2, heads: int = 4, ffn: int = 128, ctx: int = 512
) -> int:
    """A tiny random-weight BERT embedding model (llama.cpp's `bert` architecture, mean pooling, a
    WordPiece vocabulary of letters, digits and a few words); returns its embedding width."""
    from gguf import PoolingType

    rng = np.random.default_rng(7)
    w = GGUFWriter(path, "bert")
    w.add_name("test-bert-embed")
    w.add_context_length(ctx)
    w.add_embedding_length(dim)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    w.add_pooling_type(PoolingType.MEAN)
    w.add_file_type(0)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = ["the", "and", "of", "to", "in", "is", "bakery", "bread", "glacier", "lens", "violin"]
    chars = [*"abcdefghijklmnopqrstuvwxyz0123456789", *".,;:!?'\"()-"]
    tokens = specials + words + chars + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    types = [TokenType.CONTROL] * len(specials) + [TokenType.NORMAL] * (len(tokens) - len(specials))
    w.add_tokenizer_model("bert")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_type_count(2)
    w.add_pad_token_id(0)
    w.add_unk_token_id(1)
    w.add_bos_token_id(2)  # [CLS]
    w.add_sep_token_id(3)
    w.add_mask_token_id(4)

    def tensor(name: str, *shape: int, value: float | None = None) -> None:
        data = (
            np.full(shape, value, np.float32)
            if value is not None
            else rng.standard_normal(shape, dtype=np.float32) * 0.05
        )
        w.add_tensor(name, data.astype(np.float32))

    tensor("token_embd.weight", len(tokens), dim)
    tensor("token_types.weight", 2, dim)
    tensor("position_embd.weight", ctx, dim)
    tensor("token_embd_norm.weight", dim, value=1.0)
    tensor("token_embd_norm.bias", dim, value=0.0)
    for i in range(layers):
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensor(f"blk.{i}.{part}.weight", dim, dim)
            tensor(f"blk.{i}.{part}.bias", dim)
        tensor(f"blk.{i}.attn_output_norm.weight", dim, value=1.0)
        tensor(f"blk.{i}.attn_output_norm.bias", dim, value=0.0)
        tensor(f"blk.{i}.ffn_up.weight", ffn, dim)
        tensor(f"blk.{i}.ffn_up.bias", ffn)
        tensor(f"blk.{i}.ffn_down.weight", dim, ffn)
        tensor(f"blk.{i}.ffn_down.bias", dim)
        tensor(f"blk.{i}.layer_output_norm.weight", dim, value=1.0)
        tensor(f"blk.{i}.layer_output_norm.bias", dim, value=0.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dim
