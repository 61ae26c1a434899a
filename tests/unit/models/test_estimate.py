"""The memory estimate: the formula by hand, against what llama.cpp really allocates, and the fit rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.core.hub.files import FileGroup, RemoteFile, group_files
from app.core.hub.plan import FileFit, plan
from app.core.inference.engine import Engine
from app.core.inference.options import LoadOptions
from app.core.models import estimate as memory
from app.core.models.estimate import Fit, kv_bytes_per_token
from app.core.models.gguf_file import inspect_model
from app.core.models.parallel import AUTO_PARALLEL, auto_parallel
from app.core.models.shape import DEFAULT_VOCAB, GIB, MIB, ModelShape
from app.core.system.hardware import detect_machine
from app.core.system.machine import Gpu, Machine, total_ram

#: Llama 3.1 8B as its GGUF describes it.
LLAMA_8B = ModelShape(
    n_params=8_030_261_248, n_layers=32, n_embd=4096, n_head=32, n_head_kv=8, n_vocab=128_256,
    context_length=131_072,
)  # fmt: skip


def test_estimate_formula_by_hand() -> None:
    est = memory.estimate(4_920_000_000, LLAMA_8B, 8192)
    # kv_dim = 4096 * 8 / 32 = 1024; K and V, f16: 8192 * 32 * 2 * 1024 * 2 = 1 GiB.
    assert est.kv_cache == 8192 * 32 * 2 * 1024 * 2 == GIB
    # One micro-batch of 512: 4 * 512 * (128256 + 8 * 4096) + 16 MiB.
    assert est.compute == 4 * 512 * (128_256 + 32_768) + 16 * MIB == 346_554_368
    assert est.weights == 4_920_000_000
    assert est.total == 4_920_000_000 + GIB + 346_554_368
    assert (est.context_length, est.basis) == (8192, "model shape")


def test_estimate_caps_the_context_at_the_training_length() -> None:
    shape = ModelShape(n_layers=2, n_embd=64, n_head=4, n_head_kv=4, n_vocab=1000, context_length=2048)
    est = memory.estimate(1000, shape, 32_768)
    assert est.context_length == 2048
    assert est.kv_cache == 2048 * 2 * 2 * 64 * 2
    # Without a known training length the request stands; missing n_head_kv means plain multi-head.
    no_train = ModelShape(n_layers=2, n_embd=64, n_head=4, n_vocab=1000)
    assert memory.estimate(1000, no_train, 32_768).kv_cache == 32_768 * 2 * 2 * 64 * 2


def test_parameter_count_is_the_fallback_basis_when_the_shape_is_unknown() -> None:
    per_token, basis = memory.kv_bytes_per_token(ModelShape(n_params=8_000_000_000), 0)
    assert (per_token, basis) == (131_072, "parameter count")  # 128 KiB per token at 8B
    one_b, _ = memory.kv_bytes_per_token(ModelShape(n_params=1_000_000_000), 0)
    assert 32 * 1024 <= one_b <= 40 * 1024  # Llama 3.2 1B has 32 KiB: the curve errs on the safe side
    tiny, _ = memory.kv_bytes_per_token(ModelShape(n_params=1_000_000), 0)
    assert tiny == 8 * 1024  # never below the floor
    # Nothing known at all: parameters guessed from the file size (about 4 bits a weight).
    guessed, basis = memory.kv_bytes_per_token(ModelShape(), 4_000_000_000)
    assert (guessed, basis) == (131_072, "parameter count")
    est = memory.estimate(4_000_000_000, ModelShape(n_params=8_000_000_000, context_length=8192), 4096)
    assert est.basis == "parameter count"
    assert est.kv_cache == 4096 * 131_072
    assert est.compute == 4 * 512 * (DEFAULT_VOCAB + 8 * 4096) + 16 * MIB  # Llama 3 assumed
    assert "from the parameter count" in memory.describe(est)


def test_starter_shape_read_from_the_file(starter_model: Path) -> None:
    shape = inspect_model(starter_model).shape
    assert replace(shape, tensors=None) == ModelShape(
        n_params=134_515_008, n_layers=30, n_embd=576, n_head=9, n_head_kv=3, n_vocab=49_152,
        context_length=8192, n_ff=1536,
    )  # fmt: skip
    assert shape.tensors is not None and len(shape.tensors.layers) == 30


def test_estimate_covers_what_llama_cpp_allocates_for_the_starter(starter_model: Path) -> None:
    info = inspect_model(starter_model)
    est = memory.estimate(info.file_size, info.shape, 4096)
    assert est.kv_cache == 4096 * 30 * 2 * 192 * 2  # kv_dim = 576 * 3 / 9 = 192
    assert est.basis == "model shape"
    engine = Engine()
    try:
        loaded = engine.load(starter_model, LoadOptions(context_length=4096))
        assert loaded.context_length == 4096
        measured = loaded.memory_bytes
    finally:
        engine.unload()
    # As loaded: a KV cache for each of the replies the context generates at once.
    est = memory.estimate(info.file_size, info.shape, 4096, sequences=loaded.n_parallel)
    assert loaded.n_parallel >= 1 and est.kv_cache == loaded.n_parallel * 4096 * 30 * 2 * 192 * 2
    assert measured is not None and measured > est.kv_cache + info.file_size // 2
    # Never below what llama.cpp allocates, and not wildly above it either.
    assert measured <= est.total <= 1.35 * measured, (est, measured)


def test_parallel_replies_on_auto_fit_the_memory() -> None:
    # Llama 3.1 8B: 1 GiB of KV cache per sequence at 8192 tokens.
    assert auto_parallel(GIB, ram_total=64 * GIB) == AUTO_PARALLEL
    assert auto_parallel(GIB, ram_total=8 * GIB) == 2, "a quarter of RAM: two sequences' KV caches"
    assert auto_parallel(GIB, ram_total=2 * GIB) == 1, "never fewer than one"
    assert auto_parallel(GIB, ram_total=64 * GIB, gpu_free=5 * GIB) == 2, "on the GPU: its free memory"
    assert auto_parallel(0, ram_total=GIB) == AUTO_PARALLEL  # shape unknown: the usual number
    small = Machine(ram_total=8 * GIB)
    assert memory.replies_at_once(0, 4_920_000_000, LLAMA_8B, 8192, small) == 2
    assert memory.replies_at_once(3, 4_920_000_000, LLAMA_8B, 8192, small) == 3, "a choice is kept"


def test_badges_count_the_kv_cache_of_every_reply_at_once() -> None:
    box = Machine(ram_total=16 * GIB)
    _fit, one = memory.fit_model(4_920_000_000, LLAMA_8B, 8192, box, parallel=1)
    _fit, auto = memory.fit_model(4_920_000_000, LLAMA_8B, 8192, box, parallel=0)
    _fit, six = memory.fit_model(4_920_000_000, LLAMA_8B, 8192, box, parallel=6)
    assert (one.kv_cache, auto.kv_cache, six.kv_cache) == (GIB, 4 * GIB, 6 * GIB)
    fits = plan(_groups(Q4_K_M=4.9), LLAMA_8B, Machine(ram_total=8 * GIB), 8192, parallel=0)
    assert fits[0].estimate.kv_cache == 2 * GIB, "Auto on a small machine: as the load would be"


# ----- fit ----------------------------------------------------------------------------------------

GPU_BOX = Machine(ram_total=16 * GIB, gpus=(Gpu("small", 4 * GIB, 2 * GIB), Gpu("big", 12 * GIB, 8 * GIB)))
CPU_BOX = Machine(ram_total=16 * GIB)


def test_gpu_free_is_the_largest_gpu() -> None:
    assert GPU_BOX.gpu_free == 8 * GIB
    assert CPU_BOX.gpu_free == 0


@pytest.mark.parametrize(
    ("need", "machine", "expected"),
    [
        (7 * GIB, GPU_BOX, Fit.GPU),  # within the largest GPU's free memory less the margin
        (int(7.5 * GIB), GPU_BOX, Fit.GPU),  # 8 GiB free less max(512 MiB, 6 %) = 7.5 GiB usable
        (int(7.5 * GIB) + 1, GPU_BOX, Fit.RAM),
        (12 * GIB, GPU_BOX, Fit.RAM),  # <= 75 % of RAM
        (12 * GIB + 1, GPU_BOX, Fit.SLOW),
        (24 * GIB, GPU_BOX, Fit.SLOW),  # <= RAM + GPU: swapping or a partial offload
        (24 * GIB + 1, GPU_BOX, Fit.TOO_LARGE),
        (7 * GIB, CPU_BOX, Fit.RAM),  # no GPU: never the GPU badge
        (16 * GIB, CPU_BOX, Fit.SLOW),
        (16 * GIB + 1, CPU_BOX, Fit.TOO_LARGE),
    ],
)
def test_fit_classes(need: int, machine: Machine, expected: Fit) -> None:
    assert memory.fit(need, machine) is expected


def test_fits_with_headroom_is_stricter_than_fit() -> None:
    assert memory.fits_with_headroom(int(0.9 * 7.5 * GIB), GPU_BOX)
    small_ram = Machine(ram_total=4 * GIB, gpus=GPU_BOX.gpus)
    assert not memory.fits_with_headroom(int(0.9 * 7.5 * GIB) + 1, small_ram)
    assert memory.fits_with_headroom(int(0.6 * 16 * GIB), CPU_BOX)
    assert not memory.fits_with_headroom(int(0.6 * 16 * GIB) + 1, CPU_BOX)
    assert memory.fit(int(0.7 * 16 * GIB), CPU_BOX) is Fit.RAM
    assert not memory.fits_with_headroom(int(0.7 * 16 * GIB), CPU_BOX)
    assert {f.label for f in Fit} == {"fits in GPU memory", "fits in RAM", "may be slow", "too large"}


# ----- plan ---------------------------------------------------------------------------------------

GB = 1_000_000_000


def _groups(**sizes: float) -> list[FileGroup]:
    return group_files(
        [RemoteFile(f"Llama-3.1-8B-Instruct-{q}.gguf", int(gb * GB), None) for q, gb in sizes.items()]
    )


def _recommended(fits: list[FileFit]) -> list[str | None]:
    return [f.group.quant for f in fits if f.recommended]


def test_plan_recommends_the_best_quant_that_fits_with_headroom() -> None:
    groups = _groups(F16=16.1, Q8_0=8.5, Q6_K=6.6, Q4_K_M=4.9, Q2_K=3.2)
    # 8B at 4096 tokens: weights + 512 MiB KV + 330 MiB compute.
    roomy = plan(groups, LLAMA_8B, Machine(ram_total=16 * GIB), 4096)
    assert [f.group.quant for f in roomy] == ["F16", "Q8_0", "Q6_K", "Q4_K_M", "Q2_K"]
    assert _recommended(roomy) == ["Q8_0"]  # 9.4 GB needed; 60 % of 16 GiB is 10.3 GB
    smaller = plan(groups, LLAMA_8B, Machine(ram_total=12 * GIB), 4096)
    assert _recommended(smaller) == ["Q6_K"]  # Q8_0 would still "fit", but without headroom
    q8 = next(f for f in smaller if f.group.quant == "Q8_0")
    assert q8.fit is Fit.RAM and not q8.recommended
    gpu = plan(groups, LLAMA_8B, Machine(ram_total=8 * GIB, gpus=(Gpu("g", 12 * GIB, 10 * GIB),)), 4096)
    assert _recommended(gpu) == ["Q6_K"]  # 7.5 GB needed; 90 % of the usable 9.4 GiB is 9.1 GB
    assert {f.group.quant: f.fit for f in gpu}["Q8_0"] is Fit.GPU  # it fits, only without the headroom
    assert {f.group.quant: f.fit for f in gpu}["Q6_K"] is Fit.GPU
    for f in roomy:
        assert f.estimate.total == memory.estimate(f.group.size, LLAMA_8B, 4096).total


def test_plan_prefers_a_quantized_file_over_full_precision() -> None:
    groups = _groups(F32=32.1, BF16=16.1, F16=16.1, Q8_0=8.5, Q4_K_M=4.9)
    fits = plan(groups, LLAMA_8B, Machine(ram_total=256 * GIB), 4096)
    assert all(f.fit is Fit.RAM for f in fits)
    assert _recommended(fits) == ["Q8_0"]


def test_plan_recommends_full_precision_when_it_is_all_there_is() -> None:
    fits = plan(_groups(F16=16.1), LLAMA_8B, Machine(ram_total=64 * GIB), 4096)
    assert _recommended(fits) == ["F16"]
    both = plan(_groups(BF16=2.5, Q4_K_M=0.8), LLAMA_8B, Machine(ram_total=64 * GIB), 4096)
    assert _recommended(both) == ["Q4_K_M"]


def test_plan_recommends_nothing_when_nothing_fits() -> None:
    fits = plan(_groups(Q8_0=8.5, Q4_K_M=4.9, Q2_K=3.2), LLAMA_8B, Machine(ram_total=4 * GIB), 4096)
    assert _recommended(fits) == []
    assert [f.fit for f in fits] == [Fit.TOO_LARGE, Fit.TOO_LARGE, Fit.SLOW]


def test_plan_never_recommends_an_incomplete_split() -> None:
    files = [
        RemoteFile("Llama-Q8_0-00001-of-00002.gguf", 4 * GB, None),  # part 2 is missing
        RemoteFile("Llama-Q4_K_M.gguf", int(4.9 * GB), None),
    ]
    groups = group_files(files)
    assert [(g.quant, g.complete) for g in groups] == [("Q8_0", False), ("Q4_K_M", True)]
    fits = plan(groups, LLAMA_8B, Machine(ram_total=64 * GIB), 4096)
    assert _recommended(fits) == ["Q4_K_M"]
    only_incomplete = plan(groups[:1], LLAMA_8B, Machine(ram_total=64 * GIB), 4096)
    assert _recommended(only_incomplete) == []


def test_plan_with_an_unknown_shape_uses_the_parameter_count() -> None:
    shape = ModelShape(n_params=8_030_261_248, context_length=131_072)  # what the Hub's API gives
    fits = plan(_groups(Q8_0=8.5, Q4_K_M=4.9), shape, Machine(ram_total=16 * GIB), 8192)
    assert {f.estimate.basis for f in fits} == {"parameter count"}
    assert all(f.estimate.kv_cache == 8192 * 131_369 for f in fits)  # 8.03B: just over 128 KiB a token
    assert _recommended(fits) == ["Q8_0"]


# ----- this machine -------------------------------------------------------------------------------


def test_this_machine_has_ram() -> None:
    assert total_ram() > 256 * MIB
    machine = detect_machine()
    assert machine.ram_total == total_ram()


def test_kv_cache_uses_the_models_own_head_width() -> None:
    # Qwen3-0.6B: 28 layers, n_embd 1024, 16 heads, 8 KV heads, but heads 128 wide (not 1024 / 16 = 64).
    shape = ModelShape(n_layers=28, n_embd=1024, n_head=16, n_head_kv=8, head_dim_k=128, head_dim_v=128)
    per_token, basis = kv_bytes_per_token(shape, 600_000_000)
    assert (per_token, basis) == (28 * 8 * (128 + 128) * 2, "model shape")
    assert (
        kv_bytes_per_token(ModelShape(n_layers=28, n_embd=1024, n_head=16, n_head_kv=8), 0)[0]
        == per_token // 2
    )


def test_a_vision_projector_counts_in_the_estimate_and_on_the_gpu() -> None:
    from app.core.models.projector import projector_bytes

    plain = memory.estimate(4_920_000_000, LLAMA_8B, 8192)
    seeing = memory.estimate(4_920_000_000, LLAMA_8B, 8192, projector=600_000_000)
    # Its weights and the encoder's working memory (a quarter of them, at least 32 MiB).
    assert seeing.projector == projector_bytes(600_000_000) == 600_000_000 + 150_000_000
    assert seeing.total == plain.total + 750_000_000
    assert "vision projector 750.0 MB" in memory.describe(seeing)
    assert "vision projector" not in memory.describe(plain)
    assert projector_bytes(1_000_000) == 1_000_000 + 32 * MIB and projector_bytes(0) == 0
    _, gpu_plain = memory.estimate_with_gpu(4_920_000_000, LLAMA_8B, 8192)
    _, gpu_seeing = memory.estimate_with_gpu(4_920_000_000, LLAMA_8B, 8192, projector=600_000_000)
    assert gpu_plain is not None and gpu_seeing == gpu_plain + 750_000_000
    # A model that just fits a GPU without its projector does not with it.
    gpu = Machine(ram_total=64 * GIB, gpus=(Gpu("GPU", gpu_plain + 600_000_000, gpu_plain + 600_000_000),))
    tight = replace(gpu, gpus=(Gpu("GPU", int(gpu_plain * 1.12), int(gpu_plain * 1.12)),))
    assert memory.fit_model(4_920_000_000, LLAMA_8B, 8192, tight, 1)[0] is Fit.GPU
    assert memory.fit_model(4_920_000_000, LLAMA_8B, 8192, tight, 1, projector=600_000_000)[0] is not Fit.GPU
    assert memory.fit_model(4_920_000_000, LLAMA_8B, 8192, gpu, 1, projector=600_000_000)[0] is not None


def test_discover_counts_the_projector_that_comes_with_each_model() -> None:
    groups = _groups(Q4_K_M=4.9, Q8_0=8.5)
    projectors = [RemoteFile("mmproj-model-f16.gguf", 600_000_000, None)]
    plain = plan(groups, LLAMA_8B, Machine(ram_total=32 * GIB), 8192)
    seeing = plan(groups, LLAMA_8B, Machine(ram_total=32 * GIB), 8192, projectors=projectors)
    for without, with_projector in zip(plain, seeing, strict=True):
        assert with_projector.estimate.total == without.estimate.total + 750_000_000
