"""Read and validate a GGUF file's header and metadata with the `gguf` package (no llama.cpp needed).

Every model goes through `inspect_model` before llama.cpp sees it: a file llama.cpp would reject
(or crash on) gets a clear message naming the file instead. The same reading supplies the metadata
shown in the model picker.
"""

from __future__ import annotations

import math
import os
import re
import struct
import sys
import threading
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType, LlamaFileType
from gguf.gguf_reader import ReaderField, ReaderTensor

from app.core.models.shape import ModelShape, TensorBytes, group_tensors

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)


class ModelFileError(Exception):
    """A model file that cannot be used; the message names the file and says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason


#: Architectures that only embed (encoders): llama.cpp's BERT family and T5's encoder.
EMBEDDING_ARCHITECTURES = frozenset(
    {
        "bert",
        "nomic-bert",
        "nomic-bert-moe",
        "jina-bert-v2",
        "jina-bert-v3",
        "modern-bert",
        "neo-bert",
        "eurobert",
        "t5encoder",
    }
)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the app knows about a GGUF model before loading it."""

    path: Path
    name: str
    architecture: str
    quantization: str
    file_size: int
    context_length: int | None
    block_count: int | None
    parameter_count: int
    chat_template: str | None
    gguf_version: int
    tensor_count: int
    # The shape the memory estimate needs (None where the file does not say).
    embedding_length: int | None = None
    head_count: int | None = None
    head_count_kv: int | None = None
    vocab_size: int | None = None
    key_length: int | None = None
    value_length: int | None = None
    n_ff: int | None = None
    #: Weight bytes of each repeating block, of the input (token embeddings) and output layers, from the
    #: tensor list: what GPU offload places where.
    layer_bytes: tuple[int, ...] = ()
    input_bytes: int = 0
    output_bytes: int = 0
    tied_output_bytes: int = 0
    # Sampling settings the model's authors recommend (general.sampling.*), by SamplingParams name.
    sampling_defaults: dict[str, float] = dataclass_field(default_factory=dict)
    #: How the model pools its token states into one vector (llama.cpp's pooling_type; None: not
    #: said). An embedding model says it; a chat model does not.
    pooling: int | None = None
    #: What the file is (general.type): "model" (or None: not said), or "adapter" (a LoRA adapter,
    #: applied to a base model of its architecture; not a model of its own).
    gguf_type: str | None = None

    @property
    def is_adapter(self) -> bool:
        """A LoRA adapter: weights applied to a base model, not a model one can load alone."""
        return self.gguf_type == "adapter"

    @property
    def is_embedding_model(self) -> bool:
        """A model made for embeddings (search), not for chat: its GGUF names a pooling (mean, CLS,
        last), or its architecture is an encoder of the BERT family."""
        return (self.pooling is not None and self.pooling > 0) or self.architecture in EMBEDDING_ARCHITECTURES

    @property
    def has_chat_template(self) -> bool:
        """True when the GGUF carries its own chat template."""
        return bool(self.chat_template)

    @property
    def shape(self) -> ModelShape:
        """What the memory estimate needs, read from the file."""
        return ModelShape(
            n_params=self.parameter_count,
            n_layers=self.block_count,
            n_embd=self.embedding_length,
            n_head=self.head_count,
            n_head_kv=self.head_count_kv,
            n_vocab=self.vocab_size,
            context_length=self.context_length,
            head_dim_k=self.key_length,
            head_dim_v=self.value_length,
            n_ff=self.n_ff,
            tensors=TensorBytes(self.layer_bytes, self.input_bytes, self.output_bytes, self.tied_output_bytes)
            if self.layer_bytes
            else None,
        )


class UnknownTensorType(Exception):
    """The file uses a tensor type this version of the gguf package does not know."""

    def __init__(self, type_id: int) -> None:
        super().__init__(type_id)
        self.type_id = type_id


class _Damaged(Exception):
    """The metadata is cut off or impossible (a count larger than the file, a nested array, a name
    listed twice); turned into a ModelFileError by _inspect, with this reason."""


#: The fewest bytes a key-value (key length, value type, a one-byte value) and a tensor info (name
#: length, dimension count, type, offset) take: a count of them that the file could not hold is damage.
_MIN_KV_BYTES, _MIN_TENSOR_INFO_BYTES = 8 + 4 + 1, 8 + 4 + 4 + 8
#: ggml's GGML_MAX_DIMS: llama.cpp refuses a tensor with more dimensions.
_MAX_DIMS = 4
#: The most texts one metadata array may hold: 16 times the largest vocabulary in use (262,144 tokens),
#: so that a damaged count over a zero-filled region cannot walk millions of empty strings.
MAX_ARRAY_STRINGS = 1 << 22


class _StringArrayParts(Sequence[np.ndarray]):
    """The parts of a key-value whose value is an array of strings, laid out as the stock reader lays
    them out ([key length, key, type, item type, count, length 0, text 0, length 1, text 1, ...]), but
    made on demand from the offsets of the strings: a vocabulary of 49k tokens would otherwise be
    ~100k numpy views made once per inspection, and most are never looked at."""

    def __init__(self, head: list[np.ndarray], plain: np.ndarray, starts: np.ndarray, end: int) -> None:
        self._head, self._plain, self._starts, self._end = head, plain, starts, end

    def __len__(self) -> int:
        return len(self._head) + 2 * len(self._starts)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if index < 0:
            index += len(self)
        if index < len(self._head):
            return self._head[index]
        item, is_text = divmod(index - len(self._head), 2)
        if not 0 <= item < len(self._starts):
            raise IndexError(index)
        start = int(self._starts[item])
        if not is_text:
            return self._plain[start : start + 8].view(np.uint64)
        stop = int(self._starts[item + 1]) if item + 1 < len(self._starts) else self._end
        return self._plain[start + 8 : stop]

    def texts(self) -> list[bytes]:
        """Every string's bytes, without a numpy view each."""
        view = memoryview(self._plain)  # type: ignore[arg-type]
        starts = self._starts.tolist()
        ends = [*starts[1:], self._end] if starts else []  # an empty array has no end to pair
        return [bytes(view[a + 8 : b]) for a, b in zip(starts, ends, strict=True)]


class _BoundsReader(GGUFReader):
    """GGUFReader that checks every count and length against the file before walking it.

    The stock reader slices the memory map for every tensor, so a truncated file fails with an
    unhelpful reshape error; here the extents are checked against the file size first. It also walks
    arrays element by element in Python, so one damaged count makes it loop over the rest of the file
    (hours for a 7 GB model): here a count the file cannot hold is refused at once, arrays of numbers
    are read in one slice and arrays of strings in a tight loop over their lengths.
    """

    data_end: int = 0
    _plain: np.ndarray | None = None
    _itemsizes: dict[Any, int]

    def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> np.ndarray:
        # Same as the stock _get, but slices a plain ndarray view of the memory map: slicing the
        # np.memmap itself runs memmap.__array_finalize__ per slice, which made reading a
        # 49k-token vocabulary take ~5 s instead of ~0.5 s.
        plain = self._plain_view()
        itemsize = self._itemsizes.get(dtype)
        if itemsize is None:
            itemsize = self._itemsizes[dtype] = int(np.dtype(dtype).itemsize)
        count = int(count)
        arr = plain[offset : offset + itemsize * count].view(dtype=dtype)[:count]
        order = self.byte_order if override_order is None else override_order
        return arr if order == "I" else arr.view(arr.dtype.newbyteorder(order))

    def _plain_view(self) -> np.ndarray:
        if self._plain is None:
            self._plain = self.data.view(np.ndarray)
            self._itemsizes = {}
        return self._plain

    def _whole(self, offset: int, dtype: Any, count: int = 1) -> np.ndarray:
        """`count` items at `offset`, all of them: a file that ends first is damage."""
        size = len(self._plain_view())
        itemsize = int(np.dtype(dtype).itemsize)
        if offset + itemsize * count > size:
            raise _Damaged("the file ends inside its metadata")
        return self._get(offset, dtype, count)

    def _get_str(self, offset: int) -> tuple[np.ndarray, np.ndarray]:
        length = self._whole(offset, np.uint64)
        return length, self._whole(offset + 8, np.uint8, int(length[0]))

    def _build_fields(self, offs: int, count: int) -> int:
        # The stock loop, with each count checked first and each value read whole.
        count = int(count)
        if count * _MIN_KV_BYTES > len(self._plain_view()) - offs:
            raise _Damaged(f"it claims {count:,} metadata entries, more than the file could hold")
        for _ in range(count):
            orig_offs = offs
            key_len, key_data = self._get_str(offs)
            offs += 8 + len(key_data)
            # A key that is not UTF-8 raises UnicodeDecodeError: _inspect names it.
            key = str(bytes(key_data), encoding="utf-8")
            raw_type = self._whole(offs, np.uint32)
            offs += 4
            head: list[np.ndarray] = [key_len, key_data, raw_type]
            size, parts, idxs, types = self._value_parts(key, offs, int(raw_type[0]), head)
            if key in self.fields:
                raise _Damaged(f"it lists the metadata “{key}” twice")
            self.fields[key] = ReaderField(orig_offs, key, parts, idxs, types)
            offs += size
        return offs

    def _value_parts(
        self, key: str, offs: int, raw_type: int, head: list[np.ndarray]
    ) -> tuple[int, Any, Any, list[GGUFValueType]]:
        """One value's (size, parts with `head` before them, data indexes, types)."""
        try:
            kind = GGUFValueType(raw_type)
        except ValueError:
            raise _Damaged(f"its metadata “{key}” has the unknown value type {raw_type}") from None
        if kind == GGUFValueType.STRING:
            length, text = self._get_str(offs)
            return 8 + len(text), [*head, length, text], [len(head) + 1], [kind]
        scalar = self.gguf_scalar_to_np.get(kind)
        if scalar is not None:
            value = self._whole(offs, scalar)
            return int(value.nbytes), [*head, value], [len(head)], [kind]
        # An array: its item type and count, then the items.
        raw_item = self._whole(offs, np.uint32)
        n_items = self._whole(offs + 4, np.uint64)
        head = [*head, raw_item, n_items]
        count, start = int(n_items[0]), offs + 12
        try:
            item = GGUFValueType(int(raw_item[0]))
        except ValueError:
            raise _Damaged(
                f"its metadata “{key}” is an array of the unknown type {int(raw_item[0])}"
            ) from None
        if item == GGUFValueType.ARRAY:
            raise _Damaged(f"its metadata “{key}” is an array of arrays, which llama.cpp cannot read")
        types: list[GGUFValueType] = [kind, item] if count else [kind]
        room = len(self._plain_view()) - start
        scalar = self.gguf_scalar_to_np.get(item)
        if scalar is not None:
            if count * int(np.dtype(scalar).itemsize) > room:
                raise _Damaged(f"its metadata “{key}” claims {count:,} values, more than the file holds")
            values = self._get(start, scalar, count)
            return 12 + int(values.nbytes), [*head, values], [len(head)] if count else [], types
        if count * 8 > room:
            raise _Damaged(f"its metadata “{key}” claims {count:,} texts, more than the file holds")
        if count > MAX_ARRAY_STRINGS:
            raise _Damaged(f"its metadata “{key}” claims {count:,} texts, more than any model has")
        starts, end = self._string_starts(start, count)
        parts = _StringArrayParts(head, self._plain_view(), starts, end)
        return end - offs, parts, range(len(head) + 1, len(head) + 2 * count, 2), types

    def _string_starts(self, offs: int, count: int) -> tuple[np.ndarray, int]:
        """Where each of `count` strings from `offs` starts, and where the last one ends."""
        plain = self._plain_view()
        size = len(plain)
        order = "<" if (sys.byteorder == "little") == (self.byte_order == "I") else ">"
        unpack = struct.Struct(order + "Q").unpack_from
        view = memoryview(plain)  # type: ignore[arg-type]
        starts = array("q")
        append = starts.append
        for _ in range(count):
            if offs + 8 > size:
                raise _Damaged("the file ends inside its metadata")
            append(offs)
            offs += 8 + unpack(view, offs)[0]
            if offs > size:
                raise _Damaged("the file ends inside its metadata")
        return np.frombuffer(starts, dtype=np.int64), offs

    def _build_tensor_info(self, offs: int, count: int) -> tuple[int, list[ReaderField]]:
        count = int(count)
        if count * _MIN_TENSOR_INFO_BYTES > len(self._plain_view()) - offs:
            raise _Damaged(f"it claims {count:,} tensors, more than the file could hold")
        fields, names = [], set()
        for _ in range(count):
            orig_offs = offs
            name_len, name_data = self._get_str(offs)
            offs += 8 + len(name_data)
            try:
                name = str(bytes(name_data), encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise _Damaged(
                    f"the name of a tensor is not valid UTF-8 text (byte {exc.start} of it)"
                ) from None
            if name in names:
                # llama.cpp refuses a file that names one tensor twice.
                raise _Damaged(f"it lists the tensor “{name[:80]}” twice")
            names.add(name)
            n_dims = self._whole(offs, np.uint32)
            if int(n_dims[0]) > _MAX_DIMS:
                raise _Damaged(
                    f"the tensor “{name[:80]}” has {int(n_dims[0]):,} dimensions (at most {_MAX_DIMS})"
                )
            dims = self._whole(offs + 4, np.uint64, int(n_dims[0]))
            offs += 4 + int(dims.nbytes)
            raw_dtype = self._whole(offs, np.uint32)
            offset_tensor = self._whole(offs + 4, np.uint64)
            offs += 12
            parts = [name_len, name_data, n_dims, dims, raw_dtype, offset_tensor]
            fields.append(ReaderField(orig_offs, name, parts, [1, 3, 4, 5]))
        return offs, fields

    def _build_tensors(self, start_offs: int, fields: list[ReaderField]) -> None:
        tensors = []
        end = 0  # a file with no tensors needs no data section
        for field in fields:
            _name_len, _name_data, _n_dims, dims, raw_dtype, offset_tensor = field.parts
            try:
                ggml_type = GGMLQuantizationType(int(raw_dtype[0]))
            except ValueError:
                raise UnknownTensorType(int(raw_dtype[0])) from None
            # In Python integers: numpy's uint64 product wraps around silently.
            n_elems = math.prod(int(d) for d in dims)
            block_size, type_size = GGML_QUANT_SIZES[ggml_type]
            n_bytes = n_elems * type_size // block_size
            data_offs = int(start_offs + int(offset_tensor[0]))
            end = max(end, data_offs + n_bytes)
            tensors.append(
                ReaderTensor(
                    name=field.name,
                    tensor_type=ggml_type,
                    shape=dims,
                    n_elements=n_elems,
                    n_bytes=n_bytes,
                    data_offset=data_offs,
                    data=np.empty(0, dtype=np.uint8),  # never read: metadata only
                    field=field,
                )
            )
        self.tensors = tensors
        self.data_end = end


#: Strings llama.cpp acts on: one that is not valid UTF-8 makes the file unusable. Any other string
#: (name, description, author, license, ...) is only shown, so a damaged byte is shown as U+FFFD.
ESSENTIAL_STRINGS = ("general.architecture", "tokenizer.ggml.model", "tokenizer.chat_template")


def _field(reader: GGUFReader, key: str) -> Any:
    """A metadata value; strings are decoded here, not by gguf (which raises on invalid UTF-8). Every
    key read this way holds one number or one text: an array there (a damaged type) says nothing."""
    field = reader.fields.get(key)
    if field is None or field.types[:1] == [GGUFValueType.ARRAY]:
        return None
    if field.types == [GGUFValueType.STRING]:
        raw = bytes(field.parts[field.data[0]])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if key in ESSENTIAL_STRINGS:
                raise _BadText(key, exc.start) from None
            return raw.decode("utf-8", "replace")
    return field.contents()


def _check_unique(path: Path, reader: GGUFReader, tokens: Any) -> None:
    """A vocabulary that lists one token twice makes llama.cpp abort the whole process as it loads
    (GGML_ASSERT in llama_vocab::load): refuse it here with a message instead."""
    parts = tokens.parts
    pieces = parts.texts() if isinstance(parts, _StringArrayParts) else [bytes(parts[i]) for i in tokens.data]
    if len(set(pieces)) == len(pieces):
        return
    seen: set[bytes] = set()
    twice = next(p for p in pieces if p in seen or seen.add(p))  # type: ignore[func-returns-value]
    raise ModelFileError(
        path,
        f"the file is damaged: its vocabulary lists the token {twice.decode('utf-8', 'replace')!r} twice, "
        "which llama.cpp cannot load; download it again or convert it anew",
    )


class _BadText(Exception):
    """An essential metadata string is not valid UTF-8 (turned into a ModelFileError by _inspect)."""

    def __init__(self, key: str, at: int) -> None:
        super().__init__(key)
        self.key, self.at = key, at


def _quantization(reader: _BoundsReader) -> str:
    file_type = _field(reader, "general.file_type")
    if isinstance(file_type, int):
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # No (or an unknown) file type: name it after the type holding most of the weights.
    weights: Counter[str] = Counter()
    for tensor in reader.tensors:
        if len(tensor.shape) >= 2:
            weights[tensor.tensor_type.name] += tensor.n_bytes
    return weights.most_common(1)[0][0] if weights else "unknown"


#: GGUF's general.sampling.* keys, by the SamplingParams field each one sets.
SAMPLING_KEYS = {
    "temperature": "general.sampling.temp",
    "top_p": "general.sampling.top_p",
    "top_k": "general.sampling.top_k",
    "min_p": "general.sampling.min_p",
    "repeat_penalty": "general.sampling.penalty_repeat",
}


def _sampling_defaults(reader: GGUFReader) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, key in SAMPLING_KEYS.items():
        value = _field(reader, key)
        # Finite only: int() of an infinite top_k raises, and a NaN temperature samples nothing.
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = int(value) if name == "top_k" else round(float(value), 4)
    return out


def _read_header(path: Path) -> tuple[bytes, int]:
    with open(path, "rb") as handle:
        head = handle.read(8)
    magic = head[:4]
    if len(head) < 8:
        return magic, -1
    version = struct.unpack("<I", head[4:8])[0]
    if version & 0xFFFF == 0:  # written by a big-endian machine
        version = struct.unpack(">I", head[4:8])[0]
    return magic, version


#: The parts of a model cut by gguf-split: "name-00001-of-00003.gguf".
SPLIT_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def split_parts(path: Path) -> list[Path]:
    """All files of a model: the file itself, or every part of a split model that exists beside it."""
    match = SPLIT_PART.search(path.name)
    if not match:
        return [path]
    stem = path.name[: match.start()]
    total = int(match.group(2))
    parts = [path.with_name(f"{stem}-{i:05d}-of-{total:05d}.gguf") for i in range(1, total + 1)]
    return [p for p in parts if p.exists()]


_memo: dict[tuple[str, int, int], ModelInfo] = {}
_memo_lock = threading.Lock()


def inspect_model(path: str | os.PathLike[str]) -> ModelInfo:
    """Validate a GGUF file and return its metadata, or raise ModelFileError with a clear reason.

    A file already inspected in this process, unchanged since (same size and modification time),
    is not read again: the model picker's scan and the engine's pre-load check share the work.
    """
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = None
    if key is not None:
        with _memo_lock:
            known = _memo.get(key)
        if known is not None:
            return known
    info = _inspect(path)
    if key is not None:
        with _memo_lock:
            _memo[key] = info
    return info


def remember(info: ModelInfo, size: int, mtime_ns: int) -> None:
    """Record a reading made earlier (the library's disk cache) so this process does not redo it."""
    with _memo_lock:
        _memo[(str(info.path.resolve()), size, mtime_ns)] = info


def _inspect(path: Path) -> ModelInfo:
    if not path.exists():
        raise ModelFileError(path, f"file not found ({path})")
    if path.is_dir():
        raise ModelFileError(path, "this is a folder, not a model file")
    try:
        size = path.stat().st_size
        if size == 0:
            raise ModelFileError(path, "the file is empty (0 bytes); download it again")
        magic, version = _read_header(path)
    except PermissionError:
        raise ModelFileError(path, "permission denied: Fireside may not read this file") from None
    except OSError as exc:
        raise ModelFileError(path, f"the file cannot be read: {exc.strerror or exc}") from None
    if magic != GGUF_MAGIC:
        raise ModelFileError(path, "not a GGUF model file (it does not start with the GGUF signature)")
    if version not in SUPPORTED_VERSIONS:
        shown = "unknown" if version < 0 else str(version)
        raise ModelFileError(path, f"GGUF version {shown} is not supported (Fireside reads versions 2 and 3)")
    try:
        reader = _BoundsReader(path, "r")
    except PermissionError:
        raise ModelFileError(path, "permission denied: Fireside may not read this file") from None
    except UnknownTensorType as exc:
        raise ModelFileError(
            path,
            f"it uses tensor type {exc.type_id}, which this version of Fireside does not know; "
            "the model is probably newer than Fireside (update Fireside and its gguf package)",
        ) from None
    except _Damaged as exc:
        raise ModelFileError(path, f"the file is truncated or damaged: {exc}; download it again") from None
    except UnicodeDecodeError as exc:
        raise ModelFileError(
            path,
            f"the file is damaged: the name of a metadata key is not valid UTF-8 text (byte {exc.start} "
            "of it); download it again",
        ) from None
    except (ValueError, IndexError, KeyError, OverflowError, struct.error) as exc:
        raise ModelFileError(
            path, f"the file is truncated or damaged: its metadata cannot be read ({exc})"
        ) from None
    if reader.data_end > size:
        raise ModelFileError(
            path,
            f"the file is truncated: it has {size:,} bytes but its tensors need {reader.data_end:,}; "
            "download it again",
        )
    try:
        return _metadata(path, reader, size, version)
    except _BadText as exc:
        raise ModelFileError(
            path,
            f"the file is damaged: its metadata “{exc.key}” is not valid UTF-8 text (at byte {exc.at}), "
            "and llama.cpp needs it to use the model; download it again or convert it anew",
        ) from None


def _metadata(path: Path, reader: _BoundsReader, size: int, version: int) -> ModelInfo:
    """What the validated file's metadata says (raises _BadText for a damaged essential string)."""
    architecture = _field(reader, "general.architecture")
    if not isinstance(architecture, str) or not architecture:
        raise ModelFileError(path, "the file names no model architecture (general.architecture is missing)")

    name = _field(reader, "general.name")
    context_length = _field(reader, f"{architecture}.context_length")
    block_count = _field(reader, f"{architecture}.block_count")
    template = _field(reader, "tokenizer.chat_template")
    _field(reader, "tokenizer.ggml.model")  # only checked: llama.cpp picks the tokenizer by it
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    if tokens is not None:
        if tokens.types not in ([GGUFValueType.ARRAY, GGUFValueType.STRING], [GGUFValueType.ARRAY]):
            # llama.cpp fails to load a vocabulary of another type.
            raise ModelFileError(
                path,
                "the file is damaged: its vocabulary (tokenizer.ggml.tokens) is not a list of texts; "
                "download it again or convert it anew",
            )
        _check_unique(path, reader, tokens)

    def number(key: str) -> int | None:
        value = _field(reader, f"{architecture}.{key}")
        return int(value) if isinstance(value, int) else None

    grouped = group_tensors((t.name, int(t.n_bytes)) for t in reader.tensors)
    split_count = _field(reader, "split.count")
    if isinstance(split_count, int) and split_count > 1:
        # The first part of a gguf-split model holds only some of the tensors: per-layer sizes from it
        # would be far too small. Use the size of every part, spread evenly (offload.split's fallback).
        grouped = TensorBytes((), 0, 0)
        size = sum(p.stat().st_size for p in split_parts(path))
    return ModelInfo(
        path=path,
        name=name if isinstance(name, str) and name.strip() else path.stem,
        architecture=architecture,
        quantization=_quantization(reader),
        file_size=size,
        context_length=int(context_length) if isinstance(context_length, int) else None,
        block_count=int(block_count) if isinstance(block_count, int) else None,
        parameter_count=sum(t.n_elements for t in reader.tensors),
        chat_template=template if isinstance(template, str) and template.strip() else None,
        gguf_version=version,
        tensor_count=len(reader.tensors),
        embedding_length=number("embedding_length"),
        head_count=number("attention.head_count"),
        head_count_kv=number("attention.head_count_kv"),
        vocab_size=len(tokens.data) if tokens is not None else None,
        key_length=number("attention.key_length"),
        value_length=number("attention.value_length"),
        n_ff=number("feed_forward_length"),
        layer_bytes=grouped.layers,
        input_bytes=grouped.input,
        output_bytes=grouped.output,
        tied_output_bytes=grouped.tied_output,
        sampling_defaults=_sampling_defaults(reader),
        pooling=number("pooling_type"),
        gguf_type=gguf_type if isinstance(gguf_type := _field(reader, "general.type"), str) else None,
    )
