"""A model's vision projector (its mmproj file), through llama.cpp's multimodal library (mtmd).

mtmd turns a prompt's text and images into chunks: runs of text tokens, and images, each of which
its encoder turns into embeddings that take a number of positions in the sequence. The engine keeps
a prompt as one list of ints either way: text tokens as they are, and each image chunk as a run of
one negative placeholder per position it takes, derived from the image's sha256. So a sequence's
tokens still say what its KV cache holds, a follow-up that repeats the same image shares the same
start (its prefix is reused like any text), and a different image parts from it at its first
position. Reading a prompt, text goes into the shared batch as always, and each image chunk is
evaluated into its sequence on its own (mtmd's helper: encode, then decode the embeddings), as
llama.cpp's server does.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.inference.errors import EngineError
from app.core.media.images import DecodedImage
from app.core.system import binding


class ProjectorError(EngineError):
    """A projector could not be used with the loaded model; the message says why."""


@dataclass(slots=True)
class MediaPrompt:
    """A prompt with images: its tokens (placeholders where images go), the chunk each placeholder
    stands for, and the number of positions each image takes. Frees its chunks with `close`."""

    tokens: list[int]
    chunks: dict[int, Any] = field(default_factory=dict)
    image_tokens: list[int] = field(default_factory=list)
    _owner: Any = None
    _mtmd: Any = None

    def close(self) -> None:
        """Free the chunks (the prompt's images are in the KV cache, or no longer wanted)."""
        if self._owner is not None:
            self._mtmd.mtmd_input_chunks_free(self._owner)
            self._owner = None
            self.chunks = {}


def is_placeholder(token: int) -> bool:
    """True for a position an image takes (see the module's docstring)."""
    return token < 0


def placeholder(image_id: bytes, occurrence: int) -> int:
    """The placeholder of the `occurrence`-th chunk with `image_id` in a prompt (a negative int32)."""
    digest = hashlib.sha256(image_id + b":" + str(occurrence).encode()).digest()
    return -1 - (int.from_bytes(digest[:4], "little") & 0x3FFFFFFF)


class Vision:
    """An open projector bound to one loaded model (only the inference thread uses it)."""

    def __init__(self, mtmd: Any, ctx: Any, path: os.PathLike[str] | str) -> None:
        self._mtmd, self._ctx, self.path = mtmd, ctx, path
        self.marker = mtmd.mtmd_default_marker().decode("utf-8")

    @classmethod
    def open(
        cls, llama_cpp: Any, model: Any, path: os.PathLike[str] | str, n_threads: int, use_gpu: bool
    ) -> Vision:
        """Open the projector at `path` for `model` (ProjectorError saying why it cannot be)."""
        name = os.path.basename(os.fspath(path))
        if not os.path.isfile(path):
            raise ProjectorError(f"The vision projector “{name}” is missing (it was moved or deleted).")
        try:
            mtmd = binding.import_mtmd()
        except (ImportError, OSError) as exc:
            raise ProjectorError(f"This build of llama.cpp has no vision support ({exc}).") from exc
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.print_timings = False
        params.n_threads = n_threads
        params.warmup = False  # measured on the first image instead of at every load
        binding.log_tail.clear()
        ctx = mtmd.mtmd_init_from_file(os.fspath(path).encode(), model, params)
        if not ctx:
            raise ProjectorError(_why_not(name))
        if not mtmd.mtmd_support_vision(ctx):
            mtmd.mtmd_free(ctx)
            raise ProjectorError(f"“{name}” is not a vision projector (it reads no images).")
        del llama_cpp
        return cls(mtmd, ctx, path)

    def close(self) -> None:
        """Free the projector."""
        if self._ctx is not None:
            self._mtmd.mtmd_free(self._ctx)
            self._ctx = None

    def tokenize(self, text: str, images: Sequence[DecodedImage], add_special: bool) -> MediaPrompt:
        """`text`, in which each marker stands for the next of `images`, as a MediaPrompt."""
        mtmd = self._mtmd
        data = text.encode("utf-8", "replace")
        inp = mtmd.mtmd_input_text()
        inp.text, inp.text_len = data, len(data)
        inp.add_special, inp.parse_special = add_special, True
        bitmaps = []
        try:
            for image in images:
                pixels = (ctypes.c_uint8 * len(image.pixels)).from_buffer_copy(image.pixels)
                bitmap = mtmd.mtmd_bitmap_init(image.width, image.height, pixels)
                if not bitmap:
                    raise EngineError("llama.cpp could not take the image's pixels.")
                mtmd.mtmd_bitmap_set_id(bitmap, image.digest.encode())
                bitmaps.append(bitmap)
            chunks = mtmd.mtmd_input_chunks_init()
            array = (mtmd.mtmd_bitmap_p_ctypes * max(1, len(bitmaps)))(*bitmaps)
            rc = int(mtmd.mtmd_tokenize(self._ctx, chunks, ctypes.byref(inp), array, len(bitmaps)))
        finally:
            for bitmap in bitmaps:
                mtmd.mtmd_bitmap_free(bitmap)
        if rc != 0:
            mtmd.mtmd_input_chunks_free(chunks)
            if rc == 1:
                raise EngineError("The message's images and their places in the text do not match.")
            raise EngineError(f"The vision projector could not prepare the image (mtmd error {rc}).")
        return self._read(chunks)

    def _read(self, chunks: Any) -> MediaPrompt:
        mtmd = self._mtmd
        prompt = MediaPrompt([], _owner=chunks, _mtmd=mtmd)
        seen: dict[bytes, int] = {}
        for i in range(int(mtmd.mtmd_input_chunks_size(chunks))):
            chunk = mtmd.mtmd_input_chunks_get(chunks, i)
            if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                count = ctypes.c_size_t()
                tokens = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                prompt.tokens.extend(tokens[: count.value])
                continue
            image_id = mtmd.mtmd_input_chunk_get_id(chunk) or b""
            occurrence = seen.get(image_id, 0)
            seen[image_id] = occurrence + 1
            mark = placeholder(image_id, occurrence)
            positions = int(mtmd.mtmd_input_chunk_get_n_pos(chunk))
            prompt.chunks[mark] = chunk
            prompt.tokens.extend([mark] * positions)
            prompt.image_tokens.append(int(mtmd.mtmd_input_chunk_get_n_tokens(chunk)))
        return prompt

    def evaluate(self, llama_ctx: Any, chunk: Any, n_past: int, seq_id: int, n_batch: int) -> int:
        """Encode an image chunk and decode its embeddings into sequence `seq_id` from position
        `n_past`; the position after it (EngineError if llama.cpp failed)."""
        new_n_past = ctypes.c_int32(0)
        rc = int(
            self._mtmd.mtmd_helper_eval_chunk_single(
                self._ctx, llama_ctx, chunk, n_past, seq_id, n_batch, False, ctypes.byref(new_n_past)
            )
        )
        if rc != 0:
            raise EngineError(f"The vision projector failed to read the image (error {rc}).")
        return int(new_n_past.value)


def _why_not(name: str) -> str:
    """The user's message for a projector mtmd refused, from what llama.cpp logged."""
    tail = " ".join(binding.log_tail)
    if "mismatch between text model" in tail:
        found = re.search(r"text model \(n_embd = (\d+)\) and mmproj \(n_embd = (\d+)\)", tail)
        if found:
            model_width, projector_width = found.groups()
            return (
                f"The vision projector “{name}” does not fit this model: it gives each image token "
                f"{int(projector_width):,} numbers and the model reads {int(model_width):,}. Choose "
                "the projector made for this model (from the same repository)."
            )
        return (
            f"The vision projector “{name}” was made for another model. Choose the one made for this model."
        )
    if "unknown projector type" in tail:
        return f"“{name}” is a kind of vision projector this version of llama.cpp does not know."
    last = binding.log_tail[-1] if binding.log_tail else ""
    return f"The vision projector “{name}” could not be loaded (damaged, or not a projector). {last}".strip()
