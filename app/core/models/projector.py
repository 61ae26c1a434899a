"""Vision projectors (`mmproj*.gguf`): the files that turn images into tokens for the model beside them.
They are not models one can chat with, so lists of models leave them out and show them with theirs."""

from __future__ import annotations

import re
from pathlib import Path

#: Projector precisions, best first: f16 unless memory is short (a projector is small next to its
#: model, and a quantized one costs image understanding more than a quantized model costs text).
PROJECTOR_ORDER = ("F16", "BF16", "F32", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0")


def is_projector(filename: str) -> bool:
    """A vision projector (`mmproj*.gguf`), by its file name (a path's last part)."""
    name = filename.lower().replace("\\", "/").rsplit("/", 1)[-1]
    return name.endswith(".gguf") and "mmproj" in name


def projector_rank(filename: str) -> int:
    """Where a projector's precision stands in PROJECTOR_ORDER (unknown ones last)."""
    upper = filename.upper().replace("-", "_")
    for rank, precision in enumerate(PROJECTOR_ORDER):
        if re.search(rf"(^|[_./]){precision}([_.]|$)", upper):
            return rank
    return len(PROJECTOR_ORDER)


def projector_bytes(file_size: int) -> int:
    """Memory a projector takes once loaded: its weights, and the encoder's working memory for one
    image (about a quarter of the weights, at least 32 MiB: measured by llama.cpp's buffer report on
    CLIP-L/336 f16, 600 MB of weights and a 110 MB compute buffer, rounded up)."""
    if file_size <= 0:
        return 0
    return file_size + max(32 << 20, file_size // 4)


def projector_beside(model: Path) -> Path | None:
    """The projector in a model's folder (the best precision when there are several), or None. The
    Hub's vision repositories ship model and projector side by side, and so do LM Studio's folders."""
    try:
        found = [p for p in model.parent.iterdir() if p.is_file() and is_projector(p.name)]
    except OSError:
        return None
    return min(found, key=lambda p: (projector_rank(p.name), p.name.lower())) if found else None
