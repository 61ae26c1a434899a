"""Files of a Hub repository: quantization names and their order, split models as one download, and
safe local paths for names the Hub gives (no network here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from app.core.models.projector import PROJECTOR_ORDER, is_projector, projector_rank

#: Quantization types from best to worst quality. Quality, not size, orders them: K-quants beat the
#: legacy types of the same size (Q4_K_M over Q4_1), importance-matrix types sit between.
QUANT_ORDER = [
    "F32", "BF16", "F16",
    "Q8_K_XL", "Q8_0", "Q6_K_XL", "Q6_K_L", "Q6_K",
    "Q5_K_XL", "Q5_K_L", "Q5_K_M", "Q5_K", "Q5_K_S", "Q5_1", "Q5_0",
    "Q4_K_XL", "Q4_K_L", "Q4_K_M", "Q4_K", "Q4_K_S", "IQ4_NL", "IQ4_XS", "Q4_1", "Q4_0", "MXFP4",
    "Q3_K_XL", "Q3_K_L", "Q3_K_M", "Q3_K", "IQ3_M", "IQ3_S", "Q3_K_S", "IQ3_XS", "IQ3_XXS",
    "Q2_K_XL", "Q2_K_L", "Q2_K", "Q2_K_S", "IQ2_M", "IQ2_S", "IQ2_XS", "IQ2_XXS",
    "TQ2_0", "IQ1_M", "TQ1_0", "IQ1_S",
]  # fmt: skip
#: Other spellings in file names: Qwen's and Microsoft's repositories say "fp16" for F16.
_QUANT_ALIASES = {"FP16": "F16", "FP32": "F32"}
_QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])("
    # A bare K-quant ("Q4_K") must not be the start of a longer word ("Q4_K_Mega").
    + "|".join(
        q + "(?!_)" if q.endswith("_K") else q
        for q in sorted([*QUANT_ORDER, *_QUANT_ALIASES], key=len, reverse=True)
    )
    + r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
#: Full-precision types: recommended only when a repository offers nothing quantized, since Q8_0 is
#: indistinguishable in quality at half the memory and twice the speed on a CPU.
UNQUANTIZED = {"F32", "BF16", "F16"}
_SPLIT_RE = re.compile(r"^(?P<base>.*)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$", re.IGNORECASE)
_WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}
_BAD_CHARS = set('<>:"|?*\\') | {chr(c) for c in range(32)}


class UnsafeFileName(ValueError):
    """A file name from the Hub that must not be written to disk."""


def safe_relative_path(name: str) -> PurePosixPath:
    """`name` as a relative path that stays inside the folder it is joined to, or UnsafeFileName.

    Names come from the network: `..`, absolute paths, drive letters, backslashes, control
    characters and names Windows refuses are rejected, on every system alike.
    """
    if not name or name.startswith("/") or len(name) > 1024:
        raise UnsafeFileName(f"refused file name {name!r}: it must be a relative path")
    path = PurePosixPath(name)
    if not path.parts:  # "." or "./": the folder itself, not a file in it
        raise UnsafeFileName(f"refused file name {name!r}: it names the folder, not a file in it")
    for part in path.parts:
        if part in ("", ".", ".."):
            raise UnsafeFileName(f"refused file name {name!r}: it points outside the models folder")
        if _BAD_CHARS & set(part):
            raise UnsafeFileName(f"refused file name {name!r}: it contains characters file systems refuse")
        if part.split(".")[0].upper() in _WINDOWS_RESERVED or part[-1] in ". " or len(part.encode()) > 255:
            raise UnsafeFileName(f"refused file name {name!r}: not a valid file name on every system")
    return path


def quant_from_name(name: str) -> str | None:
    """The quantization type written in a file name (`...Q4_K_M.gguf` → "Q4_K_M"), or in its folder
    (`BF16/model-00001-of-00002.gguf` → "BF16"), or None."""
    path = PurePosixPath(name)
    matches = _QUANT_RE.findall(path.name) or _QUANT_RE.findall(str(path.parent))
    if not matches:
        return None
    quant = matches[-1].upper()
    return _QUANT_ALIASES.get(quant, quant)


def quant_rank(quant: str | None) -> int:
    """Position in QUANT_ORDER (0 is best); unknown types rank last."""
    return QUANT_ORDER.index(quant) if quant in QUANT_ORDER else len(QUANT_ORDER)


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file in a Hub repository."""

    filename: str
    size: int
    sha256: str | None


@dataclass(frozen=True, slots=True)
class FileGroup:
    """One downloadable model: a single GGUF file, or all parts of a split one."""

    files: tuple[RemoteFile, ...]
    quant: str | None

    @property
    def name(self) -> str:
        """The first file's name (what llama.cpp opens)."""
        return self.files[0].filename

    @property
    def label(self) -> str:
        """The name shown to users: split models without their part suffix."""
        match = _SPLIT_RE.match(self.name)
        return f"{match['base']}.gguf ({len(self.files)} parts)" if match else self.name

    @property
    def size(self) -> int:
        """Total bytes of all parts."""
        return sum(f.size for f in self.files)

    @property
    def complete(self) -> bool:
        """False for a split model whose repository lacks a part."""
        match = _SPLIT_RE.match(self.name)
        return not match or int(match["total"]) == len(self.files)


def projector_files(files: list[RemoteFile]) -> list[RemoteFile]:
    """The repository's vision projectors, best precision first."""
    found = [f for f in files if is_projector(f.filename)]
    return sorted(found, key=lambda f: (projector_rank(f.filename), f.filename.lower()))


def best_projector(files: list[RemoteFile], memory_short: bool = False) -> RemoteFile | None:
    """The projector to download with a model: the best precision, or the smallest when memory is
    short. None for a repository without one."""
    found = projector_files(files)
    if not found:
        return None
    return min(found, key=lambda f: f.size) if memory_short else found[0]


def group_files(files: list[RemoteFile]) -> list[FileGroup]:
    """GGUF files grouped into models (split parts together), best quantization first.

    Vision projectors (`mmproj`) are left out: they are not models one can chat with on their own."""
    singles: list[FileGroup] = []
    splits: dict[tuple[str, str], list[RemoteFile]] = {}
    for f in files:
        if not f.filename.lower().endswith(".gguf") or is_projector(f.filename):
            continue
        match = _SPLIT_RE.match(f.filename)
        if match:
            splits.setdefault((match["base"], match["total"]), []).append(f)
        else:
            singles.append(FileGroup((f,), quant_from_name(f.filename)))
    for (base, _total), parts in splits.items():
        parts.sort(key=lambda p: p.filename)
        singles.append(FileGroup(tuple(parts), quant_from_name(base)))
    return sorted(singles, key=lambda g: (quant_rank(g.quant), g.label.lower()))


def companion_projector(projectors: list[RemoteFile], group: FileGroup, ram_bytes: int) -> FileGroup | None:
    """The projector to download with model `group` of a repository with these `projectors`, as a
    group of one file: f16, or the smallest one when the model and an f16 projector would not leave
    1 GB of `ram_bytes`. None for a repository without one (or for a projector itself)."""
    if not projectors or is_projector(group.name):
        return None
    best = best_projector(projectors)
    assert best is not None
    short = ram_bytes > 0 and group.size + best.size + (1 << 30) > ram_bytes
    chosen = best_projector(projectors, memory_short=short) or best
    return FileGroup((chosen,), _projector_quant(chosen.filename))


def _projector_quant(filename: str) -> str | None:
    rank = projector_rank(filename)
    return PROJECTOR_ORDER[rank] if rank < len(PROJECTOR_ORDER) else None


def projector_note(projectors: list[RemoteFile]) -> str:
    """What Discover says of a repository's projectors: which one comes with its models ("" for none)."""
    best = best_projector(projectors)
    if best is None:
        return ""
    others = len(projectors) - 1
    more = f" ({others} other precision{'s' if others != 1 else ''} in the repository)" if others else ""
    size = f"{best.size / 1e6:,.0f} MB"
    return (
        f"Vision: its models read images through the projector {best.filename} ({size}), "
        f"downloaded and verified with the model you choose{more}."
    )
