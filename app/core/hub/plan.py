"""Which file of a Hub repository to download: each file's estimate and fit badge, and the recommendation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.core.hub.files import UNQUANTIZED, FileGroup, RemoteFile, companion_projector
from app.core.models.estimate import (
    Estimate,
    Fit,
    estimate_with_gpu,
    fit,
    fits_with_headroom,
    replies_at_once,
)
from app.core.models.shape import ModelShape
from app.core.system.machine import Machine


@dataclass(frozen=True, slots=True)
class FileFit:
    """A downloadable model with its estimate, badge and whether it is the one to pick."""

    group: FileGroup
    estimate: Estimate
    fit: Fit
    recommended: bool = False


def plan(
    groups: Sequence[FileGroup],
    shape: ModelShape,
    machine: Machine,
    context_length: int,
    parallel: int = 1,
    projectors: Sequence[RemoteFile] = (),
) -> list[FileFit]:
    """Badges for every file of a repository, and the recommendation: the best quantization that fits
    with headroom ("Parallel replies" at `parallel`, 0: Auto). `groups` come best quality first;
    full-precision files are recommended only when a repository has nothing quantized that fits (Q8_0
    is as good at half the memory and twice the speed). In a vision repository each model's estimate
    counts the projector that would come with it (`projectors`)."""
    fits = []
    gpu_needs = []
    for group in groups:
        sequences = replies_at_once(parallel, group.size, shape, context_length, machine)
        companion = companion_projector(list(projectors), group, machine.ram_total)
        projector = companion.size if companion is not None else 0
        est, gpu_need = estimate_with_gpu(group.size, shape, context_length, sequences, projector)
        gpu_needs.append(gpu_need)
        fits.append(FileFit(group, est, fit(est.total, machine, gpu_need)))
    candidates = [
        i
        for i, f in enumerate(fits)
        if f.group.complete and fits_with_headroom(f.estimate.total, machine, gpu_needs[i])
    ]
    quantized = [i for i in candidates if fits[i].group.quant not in UNQUANTIZED]
    chosen = next(iter(quantized or candidates), None)
    if chosen is not None:
        fits[chosen] = FileFit(fits[chosen].group, fits[chosen].estimate, fits[chosen].fit, True)
    return fits
