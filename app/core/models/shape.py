"""What a model is made of, as the memory estimate and GPU offload need it: layers, widths, heads, and
each layer's weight bytes read from the GGUF tensor list (value types and the grouping rule; no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MIB = 1 << 20
GIB = 1 << 30
N_UBATCH = 512
#: The vocabulary assumed when the file has not been read (Llama 3's is 128,256).
DEFAULT_VOCAB = 128_256
#: ASCII digits, at most five: a damaged name "blk.999999999." must not make a tuple of a billion layers.
_BLOCK = re.compile(r"^blk\.([0-9]{1,5})\.")


@dataclass(frozen=True, slots=True)
class TensorBytes:
    """A model's weights grouped the way llama.cpp places them."""

    layers: tuple[int, ...]  # bytes of each repeating block, blk.0 first
    input: int  # token embeddings and anything else that stays on the CPU
    output: int  # output norm and output matrix
    #: With tied embeddings (no output matrix) llama.cpp copies token_embd to the output layer's device.
    tied_output: int = 0

    @property
    def total(self) -> int:
        """Bytes of all weights as stored in the file."""
        return sum(self.layers) + self.input + self.output


def group_tensors(tensors: Iterable[tuple[str, int]]) -> TensorBytes:
    """Group (name, bytes) pairs from a GGUF's tensor list into blocks, input and output."""
    layers: dict[int, int] = {}
    input_bytes = output_bytes = embd = 0
    has_output_matrix = False
    for name, n_bytes in tensors:
        block = _BLOCK.match(name)
        if block is not None:
            layers[int(block.group(1))] = layers.get(int(block.group(1)), 0) + n_bytes
        elif name.startswith("output"):  # output.weight, output_norm.weight/bias
            output_bytes += n_bytes
            has_output_matrix = has_output_matrix or name.startswith("output.")
        else:
            input_bytes += n_bytes
            if name.startswith("token_embd."):
                embd += n_bytes
    n = max(layers) + 1 if layers else 0
    return TensorBytes(
        tuple(layers.get(i, 0) for i in range(n)), input_bytes, output_bytes, 0 if has_output_matrix else embd
    )


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


def kv_width(shape: ModelShape) -> int | None:
    """K plus V values per token in one layer (None when the heads are unknown)."""
    if not shape.n_head or not (shape.n_embd or (shape.head_dim_k and shape.head_dim_v)):
        return None
    n_head_kv = shape.n_head_kv or shape.n_head
    default_dim = (shape.n_embd or 0) // shape.n_head
    return n_head_kv * ((shape.head_dim_k or default_dim) + (shape.head_dim_v or default_dim))
