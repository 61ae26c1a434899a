"""The GPU and CPU panel and the hardware panel, in the real window with the real model: on this CPU-only
machine as it is, and with a fixture GPU standing in for llama.cpp's device report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea
from pytestqt.qtbot import QtBot

from app.core.inference.engine import Engine
from app.core.inference.errors import EngineError
from app.core.models.shape import GIB, MIB
from app.core.settings import Settings
from app.core.system import binding, hardware
from app.core.system.hardware import Device, Hardware
from app.ui.models.hardware_dialog import HardwareDialog
from app.ui.shell.main_window import MainWindow
from tests.window_fixtures import shot


def _hardware_known(qtbot: QtBot, window: MainWindow) -> Hardware:
    qtbot.waitUntil(lambda: window.models.hardware is not None, timeout=10_000)
    assert window.models.hardware is not None
    return window.models.hardware


def _reloaded(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.loaded is None, timeout=10_000)
    qtbot.waitUntil(lambda: window.loaded is not None, timeout=60_000)


def test_cpu_only_machine_panel_and_a_kv_cache_change(qtbot: QtBot, window: MainWindow) -> None:
    found = _hardware_known(qtbot, window)
    panel = window.offload
    assert found.backend == "CPU"
    qtbot.waitUntil(lambda: "CPU only" in panel.summary.text(), timeout=5_000)
    assert not panel.auto.isEnabled() and not panel.slider.isEnabled()
    assert panel.estimate.text().startswith("All on the CPU")
    assert panel.slider.value() == 0
    assert "CPU" in window.status.state_label.text()
    assert not panel.apply_button.isEnabled()  # nothing changed yet
    tip = str(window.picker.itemData(0, Qt.ItemDataRole.ToolTipRole))
    assert "fits in RAM: about" in tip  # the picker's badge: the browser's rule

    panel.kv.setCurrentIndex(panel.kv.findData("q8_0"))
    assert not panel.flash.isEnabled()  # a quantized KV cache needs flash attention: forced on
    assert panel.settings().flash_attn is True
    assert "Half the memory" in panel.kv_hint.text()
    assert panel.apply_button.isEnabled()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    _reloaded(qtbot, window)
    assert window.loaded is not None and window.loaded.kv_type == "q8_0"
    path = str(window.loaded.info.path)
    assert Settings.load().options_for(path).kv_type == "q8_0"  # kept for next time
    assert not panel.apply_button.isEnabled()

    window.models.show_hardware()
    dialog = window.findChild(HardwareDialog, "hardwareDialog")
    assert dialog is not None and dialog.isVisible()
    assert dialog.findChild(object, "hardwareBackend").text() == "CPU"  # type: ignore[union-attr]
    assert dialog.cpu_only.isVisible()  # the way to a GPU build is spelled out
    assert "DGGML_CUDA=on" in dialog.commands.toPlainText()
    shot(dialog, "hardware-cpu-only")
    dialog.close()


def _gpu_box(free: int) -> Hardware:
    return Hardware(
        "CUDA", True, (Device("CUDA0", "Test GPU 8GB", "gpu", 8 * GIB, free),), 32 * GIB, 30 * GIB, 8
    )


@pytest.fixture
def small_gpu(monkeypatch: pytest.MonkeyPatch) -> Hardware:
    """llama.cpp reports one GPU with 700 MiB free (the engine and the panels both ask hardware.detect)."""
    box = _gpu_box(700 * MIB)
    monkeypatch.setattr(hardware, "detect", lambda llama_cpp=None: box)
    return box


def test_auto_layers_slider_override_and_out_of_memory_fallback(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, small_gpu: Hardware
) -> None:
    window = make_window()
    _hardware_known(qtbot, window)
    panel = window.offload
    assert window.loaded is not None
    auto_layers = window.loaded.n_gpu_layers
    assert 0 < auto_layers < 31  # Auto: as many as fit in 700 MiB less the margin
    assert f"{auto_layers}/31 layers on GPU" in window.status.state_label.text()
    qtbot.waitUntil(lambda: panel.auto.isEnabled(), timeout=5_000)
    assert panel.slider.value() == auto_layers
    assert f"{auto_layers} of 31 layers on the GPU" in panel.estimate.text()
    assert "free" in panel.estimate.text()
    # The whole model does not fit in 700 MiB, so the picker does not promise the GPU.
    assert "fits in RAM" in str(window.picker.itemData(0, Qt.ItemDataRole.ToolTipRole))
    window.models.hardwareChanged.emit(_gpu_box(4 * GIB))
    assert "fits in GPU memory" in str(window.picker.itemData(0, Qt.ItemDataRole.ToolTipRole))
    window.models.hardwareChanged.emit(small_gpu)
    scroll = window.findChild(QScrollArea, "samplingScroll")
    assert scroll is not None
    scroll.ensureWidgetVisible(panel.apply_button)
    shot(window, "offload-auto")

    panel.auto.setChecked(False)
    assert panel.slider.isEnabled()
    before = panel.estimate.text()
    panel.slider.setValue(31)
    assert "31 of 31 layers" in panel.estimate.text() and panel.estimate.text() != before
    assert "More than fits" in panel.estimate.text()  # the user is warned before choosing it
    # The user asks for more than fits; the "GPU" then runs out of memory above 20 layers.
    real = window.bridge.worker._engine

    class OutOfMemory(Engine):
        def _load_weights(self, llama_cpp: Any, info: Any, n_gpu_layers: int, progress: Any) -> None:
            if n_gpu_layers > 20:
                binding.log_tail.append("alloc_tensor_range: failed to allocate CUDA0 buffer")
                raise EngineError("llama.cpp could not load this model. cudaMalloc failed: out of memory")
            super()._load_weights(llama_cpp, info, n_gpu_layers, progress)

    window.bridge.worker._engine = OutOfMemory(probe=lambda _llama: small_gpu)
    try:
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
        _reloaded(qtbot, window)
        # Straight back to what the estimate says fits, not a blind halving.
        assert window.loaded is not None and window.loaded.n_gpu_layers == auto_layers
        assert "ran out of memory with 31 of 31 layers" in window.banner.label.text()
        assert f"{auto_layers} on the GPU" in window.banner.label.text()
        assert window.settings.options_for(str(window.loaded.info.path)).n_gpu_layers == 31
    finally:
        window.bridge.worker._engine.unload()
        window.bridge.worker._engine = real
