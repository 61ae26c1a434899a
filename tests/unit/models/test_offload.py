"""GPU offload: per-layer weights from real GGUF files, the split for each layer count, the Auto choice
against fixture GPUs, the fall-back after an out-of-memory load, and hardware detection on this machine,
whichever llama.cpp build it has (a CPU-only build is a first-class case, not a skip)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.core.inference.engine import Engine
from app.core.inference.errors import EngineError
from app.core.inference.options import LoadOptions
from app.core.models import offload
from app.core.models.gguf_file import inspect_model
from app.core.models.gguf_header import file_source, read_shape
from app.core.models.offload import OffloadSettings, choose_gpu_layers, layer_count, split, usable_gpu_bytes
from app.core.models.shape import GIB, MIB, ModelShape
from app.core.system import binding, hardware
from app.core.system.hardware import Device, Hardware
from tests.gguf_writer import write_model

ROOT = Path(__file__).resolve().parents[3]


def gpu_box(free: int, total: int = 24 * GIB) -> Hardware:
    """A machine with one CUDA GPU with `free` bytes free."""
    return Hardware("CUDA", True, (Device("CUDA0", "Test GPU", "gpu", total, free),), 64 * GIB, 60 * GIB, 16)


# ----- per-layer weights from the GGUF ---------------------------------------------------------------


def test_starter_weights_by_layer(starter_model: Path) -> None:
    info = inspect_model(starter_model)
    tensors = info.shape.tensors
    assert tensors is not None
    assert len(tensors.layers) == 30 and len(set(tensors.layers)) == 1  # 30 identical blocks
    # SmolLM2 ties its output to the token embeddings: llama.cpp copies them to the GPU for the output.
    assert tensors.tied_output == tensors.input > 0
    assert tensors.output == 576 * 4  # only output_norm is stored
    # Every byte of the file's tensor data is in exactly one group.
    assert tensors.total < info.file_size < tensors.total + 2 * MIB
    # The remote reader (HTTP Range over the header) sees the same.
    assert read_shape(file_source(str(starter_model)))[1].tensors == tensors


@pytest.mark.parametrize(
    "shape",
    [
        {"arch": "llama", "layers": 4, "dtype": "f16"},
        {"arch": "llama", "layers": 9, "dtype": "q8_0", "tied": True},
        {"arch": "qwen3", "layers": 3, "dtype": "f32", "head_dim": 32, "heads": 8, "kv_heads": 2},
        {"arch": "gemma", "layers": 6, "dtype": "q8_0", "ffn": 256, "tied": True},
    ],
)
def test_written_models_are_read_layer_by_layer(tmp_path: Path, shape: dict[str, Any]) -> None:
    path = tmp_path / "m.gguf"
    expected = write_model(path, **shape)
    info = inspect_model(path)
    assert info.shape.tensors == expected
    assert info.architecture == shape["arch"]
    assert read_shape(file_source(str(path)))[1].tensors == expected
    # Layers on the GPU hold exactly the bytes of the last blocks plus the output layer.
    n = shape["layers"]
    for g in range(n + 2):
        s = split(info.shape, info.file_size, 512, g)
        blocks = sum(expected.layers[n - (g - 1) :]) if g >= 2 else 0
        output = expected.output + expected.tied_output if g >= 1 else 0
        assert s.gpu_weights == blocks + output
        assert s.cpu_weights == info.file_size - blocks - (expected.output if g else 0)


def test_llama_cpp_allocates_what_the_tensors_say(tmp_path: Path) -> None:
    path = tmp_path / "q8.gguf"
    expected = write_model(path, layers=6, dtype="q8_0", dim=128, ffn=256, vocab=400)
    engine = Engine()
    try:
        # On the CPU whatever the build, so every buffer is in the total compared below.
        loaded = engine.load(path, LoadOptions(context_length=512, n_gpu_layers=0))
    finally:
        engine.unload()
    assert loaded.n_gpu_layers == 0 and loaded.backend == hardware.detect().backend
    assert loaded.memory_bytes is not None
    # 512 tokens * 6 layers * (K + V: 2 KV heads of 32 each) * f16.
    kv = offload.kv_bytes_per_token_layer(inspect_model(path).shape) * 512 * 6
    assert kv == 512 * 6 * (64 + 64) * 2
    assert loaded.memory_bytes >= expected.total + kv


def test_kv_cache_types_scale_the_kv_estimate(starter_model: Path) -> None:
    shape = inspect_model(starter_model).shape
    f16 = offload.kv_bytes_per_token_layer(shape, "f16")
    assert f16 == (192 + 192) * 2
    assert offload.kv_bytes_per_token_layer(shape, "q8_0") == pytest.approx(f16 * 34 / 64)
    assert offload.kv_bytes_per_token_layer(shape, "q4_0") == pytest.approx(f16 * 18 / 64)
    # Without flash attention the attention scores of the whole context join the compute buffer.
    assert offload.compute_bytes(shape, 32_768, False, True) > 4 * offload.compute_bytes(
        shape, 32_768, True, True
    )


# ----- the Auto choice ---------------------------------------------------------------------------------

#: Llama 3.1 8B, Q4_K_M, by its shape (tensor sizes spread evenly: the fall-back path).
LLAMA_8B = ModelShape(
    n_params=8_030_261_248, n_layers=32, n_embd=4096, n_head=32, n_head_kv=8, n_vocab=128_256,
    context_length=131_072, n_ff=14_336,
)  # fmt: skip
Q4_K_M = 4_920_000_000


@pytest.mark.parametrize(
    ("free_gib", "expected"),
    # Everything on the GPU needs 5.77 GiB here (4.45 GiB weights, 1 GiB KV at 8k tokens, 0.33 GiB compute).
    [(0, 0), (0.4, 0), (2, 7), (4, 19), (6, 31), (6.5, 33), (24, 33)],
)
def test_auto_layers_for_gpus_of_every_size(free_gib: float, expected: int) -> None:
    free = int(free_gib * GIB)
    plan = choose_gpu_layers(LLAMA_8B, Q4_K_M, 8192, free)
    assert plan.n_gpu_layers == expected, plan
    assert plan.max_layers == 33
    usable = usable_gpu_bytes(free)
    assert plan.split.gpu_bytes <= usable or plan.n_gpu_layers == 0
    if 0 < plan.n_gpu_layers < plan.max_layers:  # the next layer would not fit
        assert split(LLAMA_8B, Q4_K_M, 8192, plan.n_gpu_layers + 1).gpu_bytes > usable
    assert plan.full == (expected == 33)


def test_more_context_or_a_bigger_kv_type_means_fewer_layers() -> None:
    free = 5 * GIB
    base = choose_gpu_layers(LLAMA_8B, Q4_K_M, 8192, free).n_gpu_layers
    assert choose_gpu_layers(LLAMA_8B, Q4_K_M, 32_768, free).n_gpu_layers < base
    assert choose_gpu_layers(LLAMA_8B, Q4_K_M, 32_768, free, "q4_0").n_gpu_layers > (
        choose_gpu_layers(LLAMA_8B, Q4_K_M, 32_768, free).n_gpu_layers
    )
    assert choose_gpu_layers(LLAMA_8B, Q4_K_M, 8192, free, flash_attn=False).n_gpu_layers <= base


def test_a_model_of_unknown_shape_stays_on_the_cpu() -> None:
    plan = choose_gpu_layers(ModelShape(n_params=8_000_000_000), Q4_K_M, 4096, 24 * GIB)
    assert plan.n_gpu_layers == 0 and "unknown" in plan.reason


def test_offload_settings_validate_and_survive_bad_files() -> None:
    assert OffloadSettings().problems() == []
    assert OffloadSettings(kv_type="q8_0", flash_attn=False).problems() == [
        "a q8_0 KV cache needs flash attention (llama.cpp quantizes V only with it)"
    ]
    assert "KV cache type" in OffloadSettings(kv_type="f8").problems()[0]
    assert "CPU threads" in OffloadSettings(n_threads=-2).problems()[0]
    good = OffloadSettings(n_gpu_layers=12, flash_attn=True, kv_type="q4_0", n_threads=4)
    assert OffloadSettings.from_dict(json.loads(json.dumps(good.to_dict()))) == good
    assert (
        OffloadSettings.from_dict({"n_gpu_layers": "all", "kv_type": "f8", "n_threads": True})
        == OffloadSettings()
    )
    assert OffloadSettings.from_dict(None) == OffloadSettings()


# ----- loading with Auto, and falling back ------------------------------------------------------------


def test_auto_offloads_everything_on_a_roomy_gpu(starter_model: Path) -> None:
    engine = Engine(probe=lambda _llama: gpu_box(8 * GIB))
    try:
        loaded = engine.load(starter_model, LoadOptions(context_length=2048))
    finally:
        engine.unload()
    assert (loaded.n_gpu_layers, loaded.max_gpu_layers) == (31, 31)
    assert loaded.backend == "CUDA" and loaded.offload_note is None
    info = inspect_model(starter_model)
    expected = split(info.shape, info.file_size, 2048, 31, sequences=loaded.n_parallel)
    assert loaded.n_parallel == 4 and loaded.estimated_gpu_bytes == expected.gpu_bytes


def test_auto_on_a_small_gpu_takes_some_layers(starter_model: Path) -> None:
    engine = Engine(probe=lambda _llama: gpu_box(700 * MIB))
    try:
        loaded = engine.load(starter_model, LoadOptions(context_length=4096))
    finally:
        engine.unload()
    assert 0 < loaded.n_gpu_layers < 31


class _OomEngine(Engine):
    """An engine whose "GPU" runs out of memory above `limit` layers, as llama.cpp reports it."""

    def __init__(self, limit: int, free: int = 8 * GIB) -> None:
        super().__init__(probe=lambda _llama: gpu_box(free))
        self.limit = limit
        self.tried: list[int] = []

    def _load_weights(self, llama_cpp: Any, info: Any, n_gpu_layers: int, progress: Any) -> None:
        self.tried.append(n_gpu_layers)
        if n_gpu_layers > self.limit:
            # What llama.cpp logs when a GPU buffer cannot be allocated (the engine reads the cause there).
            binding.log_tail.append(
                "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 1981.26 MiB on device 0: "
                "cudaMalloc failed: out of memory"
            )
            raise EngineError(
                f"{info.path.name}: llama.cpp could not load this model. cudaMalloc failed: out of memory"
            )
        super()._load_weights(llama_cpp, info, n_gpu_layers, progress)


def test_out_of_memory_retries_with_fewer_layers(starter_model: Path) -> None:
    engine = _OomEngine(limit=20)
    try:
        loaded = engine.load(starter_model, LoadOptions(context_length=2048))
        assert engine.tried == [31, 15]
        assert loaded.n_gpu_layers == 15
        assert loaded.offload_note is not None
        assert "ran out of memory with 31 of 31 layers" in loaded.offload_note
        assert "15 on the GPU" in loaded.offload_note
        # The model works after the fall-back.
        assert engine.count_tokens([{"role": "user", "content": "hello"}]) > 0
    finally:
        engine.unload()


def test_a_forced_choice_beyond_what_fits_falls_back_to_what_fits(starter_model: Path) -> None:
    # 700 MiB free: Auto would take 8 layers (one sequence). The user forces all 31; llama.cpp runs out
    # of memory.
    engine = _OomEngine(limit=10, free=700 * MIB)
    try:
        options = LoadOptions(context_length=4096, n_gpu_layers=31, n_parallel=1)
        loaded = engine.load(starter_model, options)
        assert engine.tried == [31, 8]  # straight to the estimate's choice, not a blind halving to 15
        assert loaded.n_gpu_layers == 8 and "8 on the GPU" in (loaded.offload_note or "")
    finally:
        engine.unload()


def test_out_of_memory_at_any_offload_ends_on_the_cpu(starter_model: Path) -> None:
    engine = _OomEngine(limit=0)
    try:
        loaded = engine.load(starter_model, LoadOptions(context_length=2048, n_gpu_layers=10))
        assert engine.tried == [10, 5, 0]
        assert loaded.n_gpu_layers == 0 and loaded.offload_note is not None
        assert "on the CPU only" in loaded.offload_note
    finally:
        engine.unload()


def test_a_model_that_fails_on_the_cpu_too_reports_the_real_error(
    tmp_path: Path, starter_model: Path
) -> None:
    engine = _OomEngine(limit=-1)  # fails even with 0 layers
    with pytest.raises(EngineError, match="out of memory"):
        engine.load(starter_model, LoadOptions(context_length=2048, n_gpu_layers=4))
    assert engine.tried == [4, 2, 0]
    assert engine.loaded is None


def test_a_failure_that_is_not_out_of_memory_is_not_retried(starter_model: Path) -> None:
    tried: list[int] = []

    class Broken(Engine):
        def _load_weights(self, llama_cpp: Any, info: Any, n_gpu_layers: int, progress: Any) -> None:
            tried.append(n_gpu_layers)
            binding.log_tail.clear()  # as the real load does
            binding.log_tail.append("llama_model_load: error loading model: unknown architecture")
            raise EngineError("llama.cpp could not load this model. unknown model architecture")

    engine = Broken(probe=lambda _llama: gpu_box(8 * GIB))
    with pytest.raises(EngineError, match="unknown model architecture"):
        engine.load(starter_model, LoadOptions(context_length=2048))
    assert tried == [31]  # a damaged or unsupported file fails the same way every time


def test_a_bad_kv_type_is_refused(starter_model: Path) -> None:
    with pytest.raises(EngineError, match="Unknown KV cache type"):
        Engine().load(starter_model, LoadOptions(kv_type="f8"))


def test_a_quantized_kv_cache_loads_and_is_smaller(starter_model: Path) -> None:
    sizes = {}
    for kind in ("f16", "q8_0"):
        engine = Engine()
        try:
            loaded = engine.load(starter_model, LoadOptions(context_length=2048, kv_type=kind, n_parallel=2))
            assert loaded.kv_type == kind
            assert engine.count_tokens([{"role": "user", "content": "hi"}]) > 0
            sizes[kind] = sum(size for _name, what, size in loaded.buffers if what == "KV")
        finally:
            engine.unload()
    # llama.cpp's KV buffers are the estimate's, to its log's rounding (0.01 MiB).
    for kind in sizes:
        expected = offload.kv_bytes_per_token_layer(inspect_model(starter_model).shape, kind) * 2048 * 30 * 2
        assert sizes[kind] == pytest.approx(expected, abs=0.01 * MIB)
    assert sizes["q8_0"] < 0.6 * sizes["f16"]


# ----- hardware detection ----------------------------------------------------------------------------


def test_this_machine_is_detected_as_its_llama_cpp_build_sees_it() -> None:
    # Both builds are first-class: a CPU-only build must offer no GPU whatever is plugged in, and a
    # GPU build must list the devices it will use with their memory. Which one is installed decides.
    found = hardware.detect()
    assert found.ram_total > 1 * GIB and 0 < found.ram_available <= found.ram_total
    assert found.cpu_threads >= 1
    assert found.source == "ggml"  # llama.cpp's own device registry answered
    if binding.gpu_offload_supported():
        _detected_as_a_gpu_build(found)
    else:
        _detected_as_a_cpu_only_build(found)


def _detected_as_a_cpu_only_build(found: Hardware) -> None:
    assert found.backend == "CPU" and not found.gpu_offload and found.devices == ()
    assert found.gpu_free == 0 and found.best_gpu is None
    assert any("GPU acceleration" in note for note in found.notes)
    assert "no GPU" in found.summary()
    assert hardware.from_json(found.to_json()).devices == ()
    assert found.machine().gpus == ()


def _detected_as_a_gpu_build(found: Hardware) -> None:
    assert found.backend != "CPU" and found.gpu_offload
    assert found.devices, "a GPU build on a machine with a GPU lists it"
    for device in found.devices:
        assert device.kind in ("gpu", "igpu") and device.name
        assert device.total_bytes >= device.free_bytes > 0
    assert found.gpu_free == max(d.free_bytes for d in found.devices) > 0
    assert found.best_gpu is not None and found.best_gpu.free_bytes == found.gpu_free
    assert not any("GPU acceleration" in note for note in found.notes)  # no advice to reinstall
    assert "no GPU" not in found.summary() and "GiB free" in found.summary()
    assert hardware.from_json(found.to_json()).devices == found.devices
    machine = found.machine()
    assert len(machine.gpus) == len(found.devices) and machine.gpu_free == found.gpu_free


def test_json_round_trip_and_gpu_summary() -> None:
    box = gpu_box(20 * GIB)
    again = hardware.from_json(json.loads(json.dumps(box.to_json())))
    assert again.devices == box.devices and again.backend == "CUDA"
    assert "Test GPU" in box.summary() and "20.0 GiB free" in box.summary()
    assert box.machine().gpu_free == 20 * GIB


def test_nvidia_smi_output_is_parsed() -> None:
    text = "NVIDIA H100 80GB HBM3, 81559, 80000\nNVIDIA GeForce RTX 4090, 24564, 1200\nbad line\n"
    devices = hardware.parse_nvidia_smi(text)
    assert [d.description for d in devices] == ["NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090"]
    assert devices[1].free_bytes == 1200 * MIB and devices[0].total_bytes == 81559 * MIB


def test_layer_count_counts_the_output_layer() -> None:
    assert layer_count(LLAMA_8B) == 33
    assert layer_count(ModelShape()) == 1


def test_selftest_reports_backend_devices_and_layers(starter_model: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--selftest", "--json", "--data-dir", str(tmp_path),
         "--model", str(starter_model), "--gpu-layers", "0"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    if binding.gpu_offload_supported():  # a GPU build names its backend and devices, even with 0 layers there
        assert report["backend"] != "CPU" and report["devices"] and report["gpu_offload_supported"] is True
    else:
        assert report["backend"] == "CPU" and report["devices"] == []
        assert report["gpu_offload_supported"] is False
    assert report["n_gpu_layers"] == 0 and report["estimated_gpu_bytes"] == 0
    assert report["max_gpu_layers"] == 31
    assert report["cpu_threads"] >= 1


def test_a_split_model_is_sized_by_all_its_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gguf
    import tqdm

    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)  # the copier's progress bar: no monitor thread

    first = tmp_path / "big-00001-of-00002.gguf"
    write_model(first, layers=4)
    # Mark it as the first of two gguf-split parts, as llama.cpp's gguf-split does.
    reader = gguf.GGUFReader(first, "r")
    marked = tmp_path / "marked.gguf"
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    writer = gguf.GGUFWriter(marked, arch="llama")
    copy_with_new_metadata(reader, writer, {"split.count": MetadataDetails(gguf.GGUFValueType.UINT16, 2)}, [])
    marked.replace(first)
    second = tmp_path / "big-00002-of-00002.gguf"
    second.write_bytes(b"\0" * 5_000_000)  # the rest of the weights
    info = inspect_model(first)
    assert info.file_size == first.stat().st_size + 5_000_000
    assert info.shape.tensors is None  # part 1's tensors are not the model's: spread the total evenly
    s = split(info.shape, info.file_size, 512, layer_count(info.shape))
    assert s.gpu_weights >= info.file_size * 4 // 6


def test_auto_gpu_layers_leave_room_for_the_vision_projector(starter_model: Path, tmp_path: Path) -> None:
    from app.core.inference.load_plan import gpu_layer_attempts
    from app.core.inference.options import LoadOptions
    from app.core.models.projector import projector_bytes

    info = inspect_model(starter_model)
    everything = split(info.shape, info.file_size, 1024, layer_count(info.shape)).gpu_bytes
    projector = tmp_path / "mmproj-f16.gguf"
    with projector.open("wb") as handle:
        handle.truncate(40 * MIB)  # a sparse file: only its size matters here
    # A GPU where the whole model just fits, but not with the projector too.
    free = everything
    while usable_gpu_bytes(free) < everything + 4 * MIB:
        free += MIB
    assert usable_gpu_bytes(free - projector_bytes(40 * MIB)) < everything
    box = gpu_box(free)
    text_only = gpu_layer_attempts(info, LoadOptions(context_length=1024, n_parallel=1), 1024, box)
    seeing = gpu_layer_attempts(
        info, LoadOptions(context_length=1024, n_parallel=1, projector=projector), 1024, box
    )
    assert text_only[0] == layer_count(info.shape)
    assert 0 < seeing[0] < text_only[0]
