"""The two GGUF parsers, fuzzed: the validator (`inspect_model`) and the Hub header reader
(`read_shape`, `read_adapter` over a `ByteSource`).

Inputs are real files written with the repository's writers (a tiny llama model with a vocabulary and
a chat template, a BERT embedder, a LoRA adapter, a vision projector) and the starter model's header,
damaged where their fields lie (found once with gguf.GGUFReader): flipped bits, overwritten ranges,
cuts at field boundaries, counts and lengths made absurd, invalid UTF-8 in names and texts, unknown
value types; and GGUF headers built from scratch, key-values of every type, nested arrays included.
The rule: a result, or the module's own error with a message, within time and memory. Where the
input is intact, the result is what gguf.GGUFReader reads.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.models.gguf_file import ModelFileError, ModelInfo, inspect_model
from app.core.models.gguf_header import (
    AdapterShape,
    ByteSource,
    HeaderError,
    file_source,
    read_adapter,
    read_shape,
)
from app.core.models.shape import ModelShape, group_tensors
from tests.fuzz.bounds import bounded

#: Values that break careless count and length handling: none, one, sign bits, all ones.
ABSURD = (0, 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1)
#: Byte sequences that are not UTF-8: stray continuation bytes, a cut sequence, an overlong form,
#: a UTF-16 surrogate, a code point past U+10FFFF.
BAD_UTF8 = (
    b"\x80",
    b"\xff",
    b"\xc3",
    b"\xc3(",
    b"\xe2\x82",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
)
#: Strings llama.cpp acts on (the validator refuses them damaged; every other text is only shown).
ESSENTIAL = ("general.architecture", "tokenizer.ggml.model", "tokenizer.chat_template")

_names = itertools.count()


# --- Where the fields of a real file lie ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """One part of a GGUF field in the file: its offset, size, what it is and whose it is."""

    offset: int
    size: int
    role: str
    owner: str


@dataclass(frozen=True, slots=True)
class Sample:
    """A real GGUF file to damage: its bytes (the header only, for the starter), where its fields lie,
    the size the whole file has, and what gguf.GGUFReader reads from it."""

    name: str
    data: bytes
    spans: tuple[Span, ...]
    full_size: int
    architecture: str
    tensor_count: int
    vocab_size: int | None
    tensors: tuple[tuple[str, int], ...]

    def __repr__(self) -> str:  # Hypothesis prints the drawn sample: its name says enough
        return f"Sample({self.name})"


def _layout(path: Path, name: str, header_only: bool = False) -> Sample:
    """Read `path` once with gguf.GGUFReader and note where each part of each field lies."""
    reader = gguf.GGUFReader(path, "r")
    base = reader.data.__array_interface__["data"][0]
    spans: list[Span] = []

    def note(part: np.ndarray, role: str, owner: str) -> None:
        spans.append(Span(part.__array_interface__["data"][0] - base, int(part.nbytes), role, owner))

    for key, field in reader.fields.items():
        parts = field.parts
        if key.startswith("GGUF."):
            note(parts[0], "version" if key == "GGUF.version" else "count", key)
            continue
        note(parts[0], "length", key)
        note(parts[1], "text", key)
        note(parts[2], "type", key)
        kind = field.types[0]
        if kind == gguf.GGUFValueType.STRING:
            note(parts[3], "length", key)
            note(parts[4], "text", key)
        elif kind == gguf.GGUFValueType.ARRAY:
            note(parts[3], "type", key)
            note(parts[4], "count", key)
            items = list(range(5, len(parts)))
            # A few items of each array (first, second, last): a 49k vocabulary need not be 98k spans.
            for index in items[:4] + items[-2:]:
                role = "text" if field.types[-1] == gguf.GGUFValueType.STRING and (index - 5) % 2 else None
                if field.types[-1] == gguf.GGUFValueType.STRING:
                    role = "text" if (index - 5) % 2 else "length"
                note(parts[index], role or "scalar", key)
        else:
            note(parts[3], "scalar", key)
    for tensor in reader.tensors:
        name_len, name_data, n_dims, dims, kind, offset = tensor.field.parts
        owner = f"tensor {tensor.name}"
        for part, role in (
            (name_len, "length"),
            (name_data, "text"),
            (n_dims, "count"),
            (dims, "dims"),
            (kind, "type"),
            (offset, "offset"),
        ):
            note(part, role, owner)
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        data = handle.read(reader.data_offset if header_only else size)
    return Sample(
        name=name,
        data=data,
        spans=tuple(spans),
        full_size=size,
        architecture=str(reader.fields["general.architecture"].contents()),
        tensor_count=len(reader.tensors),
        vocab_size=len(tokens.data) if tokens is not None else None,
        tensors=tuple((t.name, int(t.n_bytes)) for t in reader.tensors),
    )


TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    """Small real GGUF files, one of each kind the app reads, with their layouts."""
    from tests.gguf_writer import write_bert, write_model
    from tests.lora_writer import write_lora
    from tests.projector_writer import write_projector

    folder = tmp_path_factory.mktemp("gguf-corpus")
    model = folder / "tiny.gguf"
    strings = {"tokenizer.chat_template": TEMPLATE, "general.description": "a tiny model for fuzzing"}
    write_model(model, layers=2, dim=32, ffn=64, heads=2, kv_heads=1, vocab=300, strings=strings)
    write_bert(folder / "bert.gguf", dim=16, layers=1, heads=2, ffn=32, ctx=64)
    write_lora(folder / "lora.gguf", model, rank=4)
    write_projector(folder / "mmproj.gguf", width=32, image_size=32, patch_size=16, dim=16, ffn=16, layers=1)
    return [_layout(folder / name, name) for name in ("tiny.gguf", "bert.gguf", "lora.gguf", "mmproj.gguf")]


@pytest.fixture(scope="module")
def starter_header(starter_model: Path) -> Sample:
    """The starter model's header (its 49k vocabulary, ~1.8 MB) and layout; the file is 98 MB."""
    return _layout(starter_model, "starter", header_only=True)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the damaged files (one new name per input: the validator remembers by path)."""
    return tmp_path_factory.mktemp("gguf-fuzz")


def _write(folder: Path, data: bytes, full_size: int | None = None) -> Path:
    """Write `data`, then extend the file to `full_size` (sparse: no disk used) so a damaged header
    of a big model still sits in a file as large as the model."""
    path = folder / f"damaged-{next(_names)}.gguf"
    path.write_bytes(data)
    if full_size is not None and full_size > len(data):
        os.truncate(path, full_size)
    return path


# --- Mutations ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mutation:
    """One change to a file's bytes: `what` says it (Hypothesis prints it when a property fails)."""

    what: str
    at: int
    data: bytes = b""
    cut: bool = False

    def apply(self, blob: bytearray) -> bytearray:
        """The bytes with this change made."""
        if self.cut:
            return blob[: self.at]
        blob[self.at : self.at + len(self.data)] = self.data
        return blob


def _int_bytes(value: int, size: int) -> bytes:
    return (value % (1 << (8 * size))).to_bytes(size, "little")


def mutations(sample: Sample) -> st.SearchStrategy[Mutation]:
    """Damage of every kind, placed where the sample's fields lie."""
    spans = sample.spans
    numbers = [s for s in spans if s.role in ("length", "count", "dims", "offset", "version")]
    types = [s for s in spans if s.role == "type"]
    texts = [s for s in spans if s.role == "text" and s.size]
    essential = [s for s in texts if s.owner in ESSENTIAL or s.owner == "tokenizer.ggml.tokens"] or texts
    scalars = [s for s in spans if s.role == "scalar"]
    size = len(sample.data)

    flip = st.builds(
        lambda at, bit, old=sample.data: Mutation(
            f"flip bit {bit} at {at}", at, bytes([old[at] ^ (1 << bit)])
        ),
        st.integers(0, size - 1),
        st.integers(0, 7),
    )
    overwrite = st.builds(
        lambda at, data: Mutation(f"overwrite {len(data)} bytes at {at}", at, data),
        st.integers(0, size - 1),
        st.binary(min_size=1, max_size=16),
    )
    # Cuts at each kind of boundary: the start and end of a field's part, a byte or two either side.
    cut = st.builds(
        lambda span, end, nudge: Mutation(
            f"cut at {max(0, span.offset + end * span.size + nudge)} ({span.role} of {span.owner})",
            max(0, span.offset + end * span.size + nudge),
            cut=True,
        ),
        st.sampled_from(spans),
        st.integers(0, 1),
        st.integers(-2, 2),
    )

    def number(span: Span, value: int) -> Mutation:
        return Mutation(
            f"{span.role} of {span.owner} := {value}", span.offset, _int_bytes(value, min(span.size, 8))
        )

    absurd = st.builds(number, st.sampled_from(numbers), st.sampled_from(ABSURD) | st.integers(0, 2**64 - 1))
    wrong_type = st.builds(
        lambda span, value: Mutation(f"type of {span.owner} := {value}", span.offset, _int_bytes(value, 4)),
        st.sampled_from(types),
        st.integers(0, 15) | st.sampled_from((31, 99, 2**31, 2**32 - 1)),
    )

    def bad_text(pool: list[Span]) -> st.SearchStrategy[Mutation]:
        return st.builds(
            lambda span, where, bad: Mutation(
                f"invalid UTF-8 {bad!r} in {span.owner}",
                span.offset + where % span.size,
                bad[: span.size - where % span.size],
            ),
            st.sampled_from(pool),
            st.integers(0, 2**16),
            st.sampled_from(BAD_UTF8),
        )

    kinds = [flip, overwrite, cut, absurd, wrong_type, bad_text(texts), bad_text(essential)]
    if scalars:
        kinds.append(
            st.builds(
                lambda span, data: Mutation(f"value of {span.owner} := {data.hex()}", span.offset, data),
                st.sampled_from(scalars),
                st.sampled_from(
                    (
                        b"\xff" * 8,
                        b"\x00" * 8,
                        struct.pack("<d", float("inf")),
                        struct.pack("<f", float("nan")),
                    )
                ),
            )
        )
    return st.one_of(kinds)


def _damage(sample: Sample, changes: list[Mutation]) -> tuple[bytes, bool]:
    """The sample's bytes with `changes` made; and whether the file was cut (not to be extended)."""
    blob = bytearray(sample.data)
    for change in changes:
        blob = change.apply(blob)
    return bytes(blob), any(c.cut for c in changes)


# --- The properties each parser keeps ----------------------------------------------------------------


def validate(path: Path) -> ModelInfo | ModelFileError:
    """Run the validator on one file within the bounds; a ModelInfo is checked for sense."""
    outcome = bounded(lambda: inspect_model(path), ModelFileError)
    if isinstance(outcome, ModelFileError):
        assert outcome.path == path and path.name in str(outcome)
        return outcome
    assert isinstance(outcome, ModelInfo)
    assert isinstance(outcome.architecture, str) and outcome.architecture
    assert outcome.file_size == path.stat().st_size
    assert outcome.tensor_count >= 0 and outcome.parameter_count >= 0
    assert outcome.vocab_size is None or outcome.vocab_size >= 0
    assert outcome.chat_template is None or isinstance(outcome.chat_template, str)
    return outcome


def _serve(blob: bytes, chunk: int | None, size: int | None = None) -> Callable[[int, int], bytes]:
    """A fetch over `blob` as HTTP Range reads serve it: `chunk` caps each answer (a server that sends
    fewer bytes than asked), and past the blob, zeros up to `size` (the rest of a big file)."""
    total = len(blob) if size is None else size

    def fetch(offset: int, want: int) -> bytes:
        want = min(want, chunk or want, max(0, total - offset))
        part = blob[offset : offset + want]
        return part + bytes(want - len(part))

    return fetch


def read_header(fetch: Callable[[int, int], bytes]) -> tuple[Any, Any]:
    """Run both header readers on one source each, within the bounds; results are checked for sense."""
    shape = bounded(lambda: read_shape(ByteSource(fetch)), HeaderError)
    if not isinstance(shape, HeaderError):
        arch, model = shape
        assert isinstance(arch, str) and isinstance(model, ModelShape)
        assert model.n_vocab is None or model.n_vocab >= 0
        if model.tensors is not None:
            assert all(n >= 0 for n in model.tensors.layers) and len(model.tensors.layers) <= 100_000
    adapter = bounded(lambda: read_adapter(ByteSource(fetch)), HeaderError)
    assert adapter is None or isinstance(adapter, AdapterShape | HeaderError)
    if isinstance(adapter, AdapterShape):
        assert adapter.n_layers >= 0 and isinstance(adapter.architecture, str)
    return shape, adapter


def _agrees_with_gguf(sample: Sample, info: ModelInfo | ModelFileError, shape: Any) -> None:
    """For an intact file: both parsers read what gguf.GGUFReader reads."""
    assert isinstance(info, ModelInfo), info
    assert (info.architecture, info.tensor_count, info.vocab_size) == (
        sample.architecture,
        sample.tensor_count,
        sample.vocab_size,
    )
    arch, model = shape
    assert (arch, model.n_vocab) == (sample.architecture, sample.vocab_size)
    assert model.tensors == group_tensors(sample.tensors)


# --- Mutation fuzzing of real files ------------------------------------------------------------------


@given(data=st.data())
def test_validator_on_damaged_small_files(corpus: list[Sample], scratch: Path, data: st.DataObject) -> None:
    """Any damage to a small real GGUF file: a ModelInfo or a ModelFileError, within the bounds."""
    sample = data.draw(st.sampled_from(corpus), label="file")
    changes = data.draw(st.lists(mutations(sample), min_size=1, max_size=3), label="changes")
    blob, _cut = _damage(sample, changes)
    outcome = validate(_write(scratch, blob))
    if isinstance(outcome, ModelInfo) and blob == sample.data:
        assert (outcome.architecture, outcome.tensor_count) == (sample.architecture, sample.tensor_count)


@given(data=st.data(), chunk=st.none() | st.integers(1, 4096))
def test_header_reader_on_damaged_small_files(
    corpus: list[Sample], data: st.DataObject, chunk: int | None
) -> None:
    """Any damage to a small real GGUF file, served in Range reads that may come back short: a shape,
    an adapter (or None) or a HeaderError, within the bounds."""
    sample = data.draw(st.sampled_from(corpus), label="file")
    changes = data.draw(st.lists(mutations(sample), min_size=1, max_size=3), label="changes")
    blob, _cut = _damage(sample, changes)
    read_header(_serve(blob, chunk))


@settings(
    max_examples=12, deadline=None
)  # each input writes and reads a 1.8 MB header; bounded() times the parse
@given(data=st.data())
def test_both_parsers_on_the_damaged_starter_header(
    starter_header: Sample, scratch: Path, data: st.DataObject
) -> None:
    """Damage to the starter model's header (a real 49k vocabulary and chat template) in a file as
    large as the model: both parsers keep the rule; the header reader reads it through its file and
    through Range reads of the header followed by the zeros of the sparse rest."""
    changes = data.draw(st.lists(mutations(starter_header), min_size=1, max_size=2), label="changes")
    blob, cut = _damage(starter_header, changes)
    path = _write(scratch, blob, None if cut else starter_header.full_size)
    validate(path)
    read_header(file_source(str(path)).__dict__["_fetch"])
    chunk = data.draw(st.none() | st.integers(1 << 10, 1 << 20), label="chunk")
    read_header(_serve(blob, chunk, path.stat().st_size))
    path.unlink()


def test_intact_files_read_as_gguf_reads_them(
    corpus: list[Sample], starter_header: Sample, scratch: Path
) -> None:
    """Unmutated, every sample (the starter's header extended to its size included) is read by both
    parsers as gguf.GGUFReader reads it, through the file and through short Range reads."""
    for sample in [*corpus, starter_header]:
        path = _write(scratch, sample.data, sample.full_size)
        shape, adapter = read_header(_serve(sample.data, 777, sample.full_size))
        _agrees_with_gguf(sample, validate(path), shape)
        assert read_header(file_source(str(path)).__dict__["_fetch"])[0] == shape
        assert isinstance(adapter, AdapterShape) == (sample.name == "lora.gguf")


# --- Headers built from scratch ----------------------------------------------------------------------

#: GGUF value types by code: struct format of the scalars (8 is a string, 9 an array).
SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
STRING, ARRAY = 8, 9
#: Keys both parsers read, given values of random types (the "key of mutated type" damage).
KNOWN_KEYS = (
    "general.name",
    "general.type",
    "general.file_type",
    "general.sampling.top_k",
    "general.sampling.temp",
    "split.count",
    "tokenizer.ggml.model",
    "tokenizer.chat_template",
    "llama.block_count",
    "llama.context_length",
    "llama.embedding_length",
    "llama.attention.head_count",
    "llama.pooling_type",
    "adapter.type",
)
#: Text without lone surrogates (those have no UTF-8 form at all).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


def _scalar(code: int) -> st.SearchStrategy[Any]:
    fmt = SCALARS[code]
    if fmt in ("<f", "<d"):
        return st.floats(width=32 if fmt == "<f" else 64)
    if fmt == "<?":
        return st.booleans()
    bits = struct.calcsize(fmt) * 8
    signed = fmt[1].islower()
    return st.integers(-(2 ** (bits - 1)) if signed else 0, 2 ** (bits - 1) - 1 if signed else 2**bits - 1)


def _encode_string(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


@st.composite
def _typed(draw: st.DrawFn, code: int, depth: int) -> bytes:
    """The bytes of one value of type `code` (no type in front: arrays share their items' type)."""
    if code in SCALARS:
        return struct.pack(SCALARS[code], draw(_scalar(code)))
    if code == STRING:
        return _encode_string(draw(TEXT).encode())
    inner = draw(st.sampled_from([*SCALARS, STRING] + ([ARRAY] if depth < 3 else [])))
    items = draw(st.lists(_typed(inner, depth + 1), max_size=5))
    return struct.pack("<IQ", inner, len(items)) + b"".join(items)


@st.composite
def value(draw: st.DrawFn) -> tuple[int, bytes]:
    """A value of any GGUF type, its type code first: nested arrays (array of array of ...) included."""
    code = draw(st.sampled_from([*SCALARS, STRING, ARRAY]))
    return code, draw(_typed(code, 0))


@dataclass(frozen=True, slots=True)
class Built:
    """A GGUF file built from scratch and what it holds (when `intact`: counts that match, no
    nested array, architecture and vocabulary as written)."""

    data: bytes
    intact: bool
    architecture: str | None
    vocab: tuple[str, ...] | None
    tensors: tuple[tuple[str, int], ...]


def _nested(data: bytes) -> bool:
    return data[:4] == struct.pack("<I", ARRAY)


@st.composite
def gguf_files(draw: st.DrawFn) -> Built:
    """A whole GGUF file: magic, version, counts, key-values of random types and keys (known ones with
    values of any type), a vocabulary, tensor infos and their data, aligned as GGUF aligns them; then,
    for half of them, counts or a cut that no longer match the rest."""
    entries: list[tuple[bytes, int, bytes]] = []
    arch = draw(st.none() | st.sampled_from(["llama", "qwen2", "bert"]) | TEXT.filter(bool))
    if arch is not None:
        entries.append((b"general.architecture", STRING, _encode_string(arch.encode())))
    vocab = draw(st.none() | st.lists(TEXT, unique=True, max_size=40).map(tuple))
    if vocab is not None:
        items = b"".join(_encode_string(t.encode()) for t in vocab)
        entries.append((b"tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, len(vocab)) + items))
    keys = draw(st.lists(st.sampled_from(KNOWN_KEYS) | TEXT.map(lambda k: f"x.{k}"), unique=True, max_size=8))
    for key in keys:
        code, data = draw(value())
        entries.append((key.encode(), code, data))
    entries = draw(st.permutations(entries))
    tensor_names = draw(st.lists(TEXT, unique=True, max_size=6))
    infos, sizes, offset = [], [], 0
    for name in tensor_names:
        dims = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
        kind = draw(st.sampled_from([gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16]))
        n_bytes = int(np.prod(dims)) * (4 if kind == gguf.GGMLQuantizationType.F32 else 2)
        infos.append(
            _encode_string(name.encode())
            + struct.pack("<I", len(dims))
            + struct.pack(f"<{len(dims)}Q", *dims)
            + struct.pack("<IQ", int(kind), offset)
        )
        sizes.append((name, n_bytes))
        offset += -(-n_bytes // 32) * 32
    version = draw(st.sampled_from([3, 3, 3, 2]))
    n_tensors, n_kv = len(infos), len(entries)
    damaged = draw(st.booleans())
    if damaged:
        n_tensors = draw(st.sampled_from([n_tensors, n_tensors + 1, *ABSURD]))
        n_kv = draw(st.sampled_from([n_kv, max(0, n_kv - 1), n_kv + 1, *ABSURD]))
    body = b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)
    body += b"".join(_encode_string(k) + struct.pack("<I", code) + data for k, code, data in entries)
    body += b"".join(infos)
    body += bytes(-len(body) % 32) + bytes(offset)
    if damaged:
        body = body[: draw(st.integers(0, len(body)))]
    nested = any(code == ARRAY and _nested(data) for _k, code, data in entries)
    intact = not damaged and not nested
    return Built(body, intact, arch, vocab, tuple(sizes))


@given(built=gguf_files(), chunk=st.none() | st.integers(1, 64))
def test_built_headers_keep_the_rule_and_read_as_written(
    scratch: Path, built: Built, chunk: int | None
) -> None:
    """Headers built from scratch, fed to both parsers: the rule holds for all; an intact one with an
    architecture is read as written, and as gguf.GGUFReader reads it."""
    path = _write(scratch, built.data)
    info = validate(path)
    shape, _adapter = read_header(_serve(built.data, chunk))
    if not built.intact or not built.architecture:
        return
    assert isinstance(info, ModelInfo), f"an intact file was refused: {info}"
    reader = gguf.GGUFReader(path, "r")
    assert info.architecture == built.architecture == reader.fields["general.architecture"].contents()
    assert info.tensor_count == len(built.tensors) == len(reader.tensors)
    expected_vocab = None if built.vocab is None else len(built.vocab)
    assert info.vocab_size == expected_vocab
    assert not isinstance(shape, HeaderError), shape
    assert shape[0] == built.architecture and shape[1].n_vocab == expected_vocab
    assert shape[1].tensors == group_tensors(built.tensors)


# --- The inputs of the bugs found, kept as plain regression tests ------------------------------------


def _file(*entries: bytes, n_tensors: int = 0, infos: bytes = b"", data: int = 0) -> bytes:
    """A GGUF v3 file of the given key-value entries and tensor infos, then `data` bytes of tensor
    data where GGUF aligns it."""
    head = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, len(entries)) + b"".join(entries) + infos
    return head + bytes(-len(head) % 32 if data else 0) + bytes(data)


def _kv(key: str, code: int, data: bytes) -> bytes:
    return _encode_string(key.encode()) + struct.pack("<I", code) + data


ARCH = _kv("general.architecture", STRING, _encode_string(b"llama"))


def _refused(tmp_path: Path, blob: bytes, full_size: int | None = None) -> tuple[str, str]:
    """The validator's reason and the header reader's message for one input (both must refuse)."""
    path = _write(tmp_path, blob, full_size)
    info = validate(path)
    assert isinstance(info, ModelFileError), info
    shape = bounded(lambda: read_shape(ByteSource(_serve(blob, None, full_size))), HeaderError)
    assert isinstance(shape, HeaderError), shape
    return info.reason, str(shape)


def test_regression_inputs(tmp_path: Path, corpus: list[Sample]) -> None:
    """The smallest inputs of the bugs this fuzzing found, each with the message it now gets."""
    # An architecture turned into an array of strings holding invalid UTF-8: gguf's contents()
    # decoded it strictly and the validator let a raw UnicodeDecodeError out.
    bad_array = _kv("general.architecture", ARRAY, struct.pack("<IQ", STRING, 1) + _encode_string(b"\xff"))
    info = validate(_write(tmp_path, _file(bad_array)))
    assert isinstance(info, ModelFileError) and "names no model architecture" in info.reason

    # Arrays nested 100,000 deep (1.2 MB): both parsers recursed into a RecursionError.
    deep = struct.pack("<IQ", ARRAY, 1) * 100_000 + struct.pack("<IQ", 0, 0)
    reason, message = _refused(tmp_path, _file(ARCH, _kv("x", ARRAY, deep)))
    assert "array of arrays" in reason and "array of arrays" in message

    # A damaged count of zero-length strings over a zero-filled region (a sparse or preallocated
    # file): the stock reader walked millions of empty strings; now refused at once.
    zeros = _file(ARCH, _kv("tokenizer.ggml.merges", ARRAY, struct.pack("<IQ", STRING, 2**23)))
    reason, message = _refused(tmp_path, zeros, 80 << 20)
    assert "more than any model has" in reason and "ended inside" not in message

    # A tensor count made huge in a file of zeros past its header: the stock reader walked ~3 million
    # empty tensor infos; now a count the file cannot hold is refused, and a name listed twice too.
    path = _write(tmp_path, _file(ARCH, n_tensors=2**31), 64 << 20)
    info = validate(path)
    assert isinstance(info, ModelFileError) and "2,147,483,648 tensors" in info.reason
    path = _write(tmp_path, _file(ARCH, n_tensors=2**20), 64 << 20)
    info = validate(path)
    assert isinstance(info, ModelFileError) and "twice" in info.reason
    assert bounded(
        lambda: read_shape(ByteSource(_serve(_file(ARCH, n_tensors=2**20), None, 64 << 20))), HeaderError
    )

    # A count of 16M one-byte values in a 64 MB file: the stock reader made one numpy view per value.
    many = _file(ARCH, _kv("x", ARRAY, struct.pack("<IQ", 0, 1 << 24)))
    info = validate(_write(tmp_path, many, 64 << 20))
    assert isinstance(info, ModelInfo) and info.architecture == "llama"

    # An infinite top_k (a float where an integer belongs): int(inf) raised OverflowError.
    top_k = _kv("general.sampling.top_k", 6, struct.pack("<f", float("inf")))
    info = validate(_write(tmp_path, _file(ARCH, top_k)))
    assert isinstance(info, ModelInfo) and "top_k" not in info.sampling_defaults

    # A NaN block count (a float where an integer belongs): int(nan) raised ValueError in the reader.
    nan_blocks = _kv("llama.block_count", 12, struct.pack("<d", float("nan")))
    arch, shape = read_shape(ByteSource(_serve(_file(ARCH, nan_blocks), None)))
    assert arch == "llama" and shape.n_layers is None

    # A scalar value cut off by the end of the file: gguf read it as an empty array, then IndexError.
    cut = _file(ARCH, _kv("llama.block_count", 4, b""))
    assert "ends inside its metadata" in _refused(tmp_path, cut)[0]

    # Tensor names "blk.²." (a digit int() refuses) and "blk.<5,000 digits>." (past int()'s limit),
    # and "blk.999999999." (a tuple of a billion layers): a raw ValueError, or no memory left.
    for layer in ("²", "9" * 5000, "999999999"):
        name = f"blk.{layer}.attn_q.weight.lora_a".encode()
        info_bytes = _encode_string(name) + struct.pack("<I2QIQ", 2, 32, 4, 0, 0)
        kind = _kv("general.type", STRING, _encode_string(b"adapter"))
        adapter = _file(ARCH, kind, n_tensors=1, infos=info_bytes, data=32 * 4 * 4)
        shape_outcome = bounded(lambda blob=adapter: read_shape(ByteSource(_serve(blob, None))), HeaderError)
        assert not isinstance(shape_outcome, HeaderError)
        found = bounded(lambda blob=adapter: read_adapter(ByteSource(_serve(blob, None))), HeaderError)
        assert isinstance(found, AdapterShape) and found.n_layers == 0 and found.width == 32
        assert isinstance(validate(_write(tmp_path, adapter)), ModelInfo | ModelFileError)
