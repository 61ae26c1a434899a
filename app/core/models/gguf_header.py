"""Read just the model shape from a GGUF header, from any byte source (a file, or HTTP Range requests).

The memory estimate needs layers, embedding width, attention heads and the vocabulary size. They sit
in the GGUF's key-value header, before any tensor, so the first megabytes of a file on the Hub answer
the question before anything is downloaded. Only the wanted keys are decoded; arrays are walked,
not kept (a 128k-token vocabulary is only counted).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from app.core.models.shape import ModelShape, TensorBytes, group_tensors

GGUF_MAGIC = b"GGUF"
#: Never read more than this much header (a vocabulary of 256k tokens with merges is ~12 MB).
MAX_HEADER = 32 << 20
#: GGUF value type -> struct format (8 is a string, 9 an array).
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")
#: A layer number in a tensor name (blk.N.): ASCII digits, at most five.
_LAYER = re.compile(r"[0-9]{1,5}")
#: ggml's GGML_MAX_DIMS: llama.cpp refuses a tensor with more dimensions.
_MAX_DIMS = 4


class HeaderError(ValueError):
    """The bytes are not a GGUF header this reader understands."""


class ByteSource:
    """Bytes on demand: `fetch(offset, size)` is asked for more as parsing goes (at least 1 MiB, then
    growing, so a large vocabulary needs a handful of requests, not thousands)."""

    def __init__(self, fetch: Callable[[int, int], bytes], limit: int = MAX_HEADER) -> None:
        self._fetch = fetch
        self._buf = bytearray()
        self._limit = limit
        self.pos = 0

    def read(self, size: int) -> bytes:
        """The next `size` bytes."""
        end = self.pos + size
        self._fill(end)
        data = bytes(self._buf[self.pos : end])
        self.pos = end
        return data

    def room(self) -> int:
        """How many more bytes the header may hold (the limit less what was read)."""
        return self._limit - self.pos

    def skip_strings(self, count: int) -> None:
        """Skip `count` GGUF strings without copying or decoding them (a vocabulary is only counted)."""
        unpack, buf = _U64.unpack_from, self._buf
        for _ in range(count):
            if len(buf) < self.pos + 8:
                self._fill(self.pos + 8)
            end = self.pos + 8 + unpack(buf, self.pos)[0]
            if len(buf) < end:
                self._fill(end)
            self.pos = end

    def _fill(self, end: int) -> None:
        """Fetch until the buffer holds the first `end` bytes."""
        while len(self._buf) < end:
            want = max(end - len(self._buf), min(max(len(self._buf), 1 << 20), 8 << 20))
            if len(self._buf) + want > self._limit:
                raise HeaderError(f"the GGUF header is larger than {self._limit >> 20} MiB")
            chunk = self._fetch(len(self._buf), want)
            if not chunk:
                raise HeaderError("the file ended inside its header")
            self._buf += chunk

    def unpack(self, fmt: str) -> object:
        """One little-endian scalar."""
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        """A GGUF string: uint64 length, then UTF-8 bytes."""
        length = int(self.unpack("<Q"))  # type: ignore[call-overload]
        return self.read(length).decode("utf-8", "replace")


def _skip_value(src: ByteSource, kind: int) -> int:
    """Skip one value; returns the element count for arrays (else 1)."""
    if kind in _SCALARS:
        src.read(struct.calcsize(_SCALARS[kind]))
        return 1
    if kind == _STRING:
        src.string()
        return 1
    if kind == _ARRAY:
        inner = int(src.unpack("<I"))  # type: ignore[call-overload]
        count = int(src.unpack("<Q"))  # type: ignore[call-overload]
        if inner in _SCALARS:
            src.read(struct.calcsize(_SCALARS[inner]) * count)
        elif inner == _STRING:
            # Each string takes 8 bytes at least: a count the header cannot hold is refused at once.
            if count * 8 > src.room():
                raise HeaderError(f"an array of {count:,} strings is larger than the header may be")
            src.skip_strings(count)
        elif inner == _ARRAY:
            # llama.cpp reads no array of arrays (and walking one nested deep would recurse without end).
            raise HeaderError("the header holds an array of arrays, which llama.cpp cannot read")
        else:
            raise HeaderError(f"unknown GGUF value type {inner}")
        return count
    raise HeaderError(f"unknown GGUF value type {kind}")


#: String keys decoded from the header (every other string is skipped).
_STRINGS = frozenset({"general.architecture", "general.type", "adapter.type"})


def _read_values(src: ByteSource) -> tuple[int, dict[str, object], int | None]:
    """The tensor count, the scalar values and wanted strings of the key-value header, and the
    vocabulary size (None when the header has no token list)."""
    if src.read(4) != GGUF_MAGIC:
        raise HeaderError("not a GGUF file")
    version = int(src.unpack("<I"))  # type: ignore[call-overload]
    if version not in (2, 3):
        raise HeaderError(f"GGUF version {version} is not supported")
    n_tensors = int(src.unpack("<Q"))  # type: ignore[call-overload]
    n_kv = int(src.unpack("<Q"))  # type: ignore[call-overload]
    values: dict[str, object] = {}
    n_vocab = None
    seen: set[str] = set()
    for _ in range(n_kv):
        key = src.string()
        if key in seen:
            # llama.cpp refuses a duplicated key; refusing here also ends a walk over zero-filled bytes
            # (a damaged count reads them as empty keys) at the second entry.
            raise HeaderError(f"the header lists the key {key[:80]!r} twice")
        seen.add(key)
        kind = int(src.unpack("<I"))  # type: ignore[call-overload]
        if kind in _SCALARS and not key.startswith("tokenizer."):
            values[key] = src.unpack(_SCALARS[kind])
        elif kind == _STRING and key in _STRINGS:
            values[key] = src.string()
        else:
            count = _skip_value(src, kind)
            if key == "tokenizer.ggml.tokens":
                n_vocab = count
    return n_tensors, values, n_vocab


def read_shape(src: ByteSource) -> tuple[str, ModelShape]:
    """The architecture and model shape from a GGUF header (parameters are not in the header)."""
    n_tensors, values, n_vocab = _read_values(src)
    arch = values.get("general.architecture")
    if not isinstance(arch, str):
        raise HeaderError("the header names no architecture")

    def number(name: str) -> int | None:
        value = values.get(f"{arch}.{name}")
        if isinstance(value, float) and not math.isfinite(value):
            return None  # int() of an infinite or NaN float raises
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    return arch, ModelShape(
        n_ff=number("feed_forward_length"),
        tensors=_read_tensor_infos(src, n_tensors),
        n_layers=number("block_count"),
        n_embd=number("embedding_length"),
        n_head=number("attention.head_count"),
        n_head_kv=number("attention.head_count_kv"),
        n_vocab=n_vocab,
        context_length=number("context_length"),
        head_dim_k=number("attention.key_length"),
        head_dim_v=number("attention.value_length"),
    )


def _read_tensor_infos(src: ByteSource, n_tensors: int) -> TensorBytes | None:
    """Each tensor's size from the tensor-info list that follows the key-values (name, dims, type,
    offset): enough to know what each layer weighs, without a byte of the weights themselves."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    sizes = []
    names: set[str] = set()
    try:
        for _ in range(n_tensors):
            name = src.string()
            if name in names:
                return None  # a tensor named twice (llama.cpp refuses it), or zero-filled bytes
            names.add(name)
            n_dims = int(src.unpack("<I"))  # type: ignore[call-overload]
            if n_dims > _MAX_DIMS:
                return None
            elements = 1
            for _ in range(n_dims):
                elements *= int(src.unpack("<Q"))  # type: ignore[call-overload]
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(int(src.unpack("<I")))]  # type: ignore[call-overload]
            src.read(8)  # offset
            sizes.append((name, elements * type_size // block))
    except (HeaderError, ValueError, KeyError):
        return None  # an unknown tensor type or a cut-off list: fall back to the file size
    return group_tensors(sizes)


@dataclass(frozen=True, slots=True)
class AdapterShape:
    """What a LoRA adapter's header says of the base model it was made for."""

    architecture: str
    #: Layers it changes (the highest `blk.N` + 1; 0 when it names none).
    n_layers: int
    #: The base model's width, from an attention tensor's low-rank factor (None when none says).
    width: int | None
    rank: int | None


def read_adapter(src: ByteSource) -> AdapterShape | None:
    """The shape of a LoRA adapter from its header (its tensor list: the names give the layers, the
    `lora_a` factors of the attention the base model's width), or None for a file that is not an
    adapter. Raises HeaderError for bytes that are not a GGUF header."""
    n_tensors, values, _vocab = _read_values(src)
    arch = values.get("general.architecture")
    if values.get("general.type") != "adapter" or not isinstance(arch, str):
        return None
    layers, width, rank = 0, None, None
    names: set[str] = set()
    for _ in range(n_tensors):
        name = src.string()
        if name in names:
            raise HeaderError(f"the header lists the tensor {name[:80]!r} twice")
        names.add(name)
        n_dims = int(src.unpack("<I"))  # type: ignore[call-overload]
        if n_dims > _MAX_DIMS:
            raise HeaderError(f"a tensor of the header has {n_dims:,} dimensions (at most {_MAX_DIMS})")
        dims = [int(src.unpack("<Q")) for _ in range(n_dims)]  # type: ignore[call-overload]
        src.read(4 + 8)  # type, offset
        parts = name.split(".")
        # ASCII digits, a few: "²".isdigit() holds but int("²") raises, as does int() of 5,000 digits.
        if len(parts) > 1 and parts[0] == "blk" and _LAYER.fullmatch(parts[1]):
            layers = max(layers, int(parts[1]) + 1)
        # lora_a of W (n_in x n_out) is n_in x rank: the width, for the attention's q, k and v.
        if name.endswith(("attn_q.weight.lora_a", "attn_k.weight.lora_a", "attn_v.weight.lora_a")) and dims:
            width = width or dims[0]
            rank = rank or (dims[1] if len(dims) > 1 else None)
    return AdapterShape(arch, layers, width, rank)


def adapter_misfit(
    adapter: AdapterShape, architecture: str | None, n_layers: int | None, width: int | None
) -> str | None:
    """Why an adapter does not fit a model of that architecture, layer count and width (None: it
    fits, as far as the headers tell)."""
    if architecture != adapter.architecture:
        return f"it was made for a {adapter.architecture} model, not a {architecture or 'unknown'} one"
    if n_layers and adapter.n_layers > n_layers:
        return f"it changes {adapter.n_layers} layers and the model has {n_layers}"
    if width and adapter.width and adapter.width != width:
        return f"it was made for a model {adapter.width} wide, and this one is {width} wide"
    return None


def file_source(path: str) -> ByteSource:
    """A ByteSource over a local file."""

    def fetch(offset: int, size: int) -> bytes:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(size)

    return ByteSource(fetch)
