"""GPU and CPU options for the loaded model: GPU layers (Auto or a slider with its memory estimate), flash
attention, KV cache type and CPU threads, each explained in one line. Changes apply on reload."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.inference.options import LoadedModel
from app.core.models.gguf_file import ModelInfo
from app.core.models.offload import (
    KV_TYPE_HINTS,
    KV_TYPES,
    OffloadSettings,
    choose_gpu_layers,
    layer_count,
    split,
)
from app.core.system.hardware import Hardware
from app.core.values.units import format_size
from app.ui.common.icons import decorate
from app.ui.common.theme import HINT_SCALE, scaled_font

FLASH_CHOICES = [("Auto", None), ("On", True), ("Off", False)]
HINTS = {
    "layers": "Layers on the GPU run much faster. Auto puts as many there as fit in free GPU memory.",
    "flash": "A faster attention that also saves memory on long contexts. Auto lets llama.cpp decide.",
    "threads": "CPU threads for the layers on the CPU. Auto uses one per core on small machines.",
}


def _hint(text: str, name: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setProperty("muted", True)
    label.setFont(scaled_font(label.font(), HINT_SCALE))
    return label


class OffloadPanel(QWidget):
    """Edits an OffloadSettings for one model; `applyRequested` asks the window to reload with it."""

    applyRequested = Signal(object)  # OffloadSettings
    hardwareRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("offloadPanel")
        self.info: ModelInfo | None = None
        self.hardware: Hardware | None = None
        self.context_length = 4096
        self.sequences = 1
        self.applied = OffloadSettings()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 0, 4, 8)
        outer.setSpacing(6)
        summary_row = QHBoxLayout()
        self.summary = QLabel("Looking for GPUs…")
        self.summary.setObjectName("hardwareSummary")
        self.summary.setWordWrap(True)
        details = QPushButton("Hardware…")
        decorate(details, "hardware")
        details.setObjectName("hardwareButton")
        details.setToolTip(
            "The backend llama.cpp was built with, each GPU and its memory, RAM and CPU threads"
        )
        details.clicked.connect(self.hardwareRequested)
        summary_row.addWidget(self.summary, 1)
        summary_row.addWidget(details, 0, Qt.AlignmentFlag.AlignTop)
        outer.addLayout(summary_row)

        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(4)
        layers_box = QWidget()
        layers_layout = QVBoxLayout(layers_box)
        layers_layout.setContentsMargins(0, 0, 0, 6)
        layers_layout.setSpacing(2)
        self.auto = QCheckBox("Auto (as many as fit)")
        self.auto.setObjectName("gpuLayersAuto")
        self.auto.setChecked(True)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("gpuLayersSlider")
        self.slider.setAccessibleName("GPU layers")
        self.estimate = QLabel("")
        self.estimate.setObjectName("gpuLayersEstimate")
        self.estimate.setWordWrap(True)
        # Room for four lines up front: a wrapped label that grows later overlaps its neighbours in a
        # scroll area whose layout has already settled.
        self.estimate.setMinimumHeight(4 * self.estimate.fontMetrics().lineSpacing() + 2)
        layers_layout.addWidget(self.auto)
        layers_layout.addWidget(self.slider)
        layers_layout.addWidget(self.estimate)
        layers_layout.addWidget(_hint(HINTS["layers"], "gpuLayersHint"))
        form.addRow("GPU layers", layers_box)

        self.flash = QComboBox()
        self.flash.setObjectName("flashAttentionPicker")
        for label, value in FLASH_CHOICES:
            self.flash.addItem(label, value)
        form.addRow("Flash attention", self._with_hint(self.flash, HINTS["flash"], "flashAttentionHint"))

        self.kv = QComboBox()
        self.kv.setObjectName("kvCacheTypePicker")
        for name in KV_TYPES:
            self.kv.addItem(name, name)
        self.kv_hint = _hint("", "kvCacheTypeHint")
        kv_box = QWidget()
        kv_layout = QVBoxLayout(kv_box)
        kv_layout.setContentsMargins(0, 0, 0, 6)
        kv_layout.setSpacing(2)
        kv_layout.addWidget(self.kv)
        kv_layout.addWidget(self.kv_hint)
        form.addRow("KV cache", kv_box)

        self.threads = QSpinBox()
        self.threads.setObjectName("cpuThreadsInput")
        self.threads.setAccessibleName("CPU threads")
        self.threads.setSpecialValueText("Auto")
        form.addRow("CPU threads", self._with_hint(self.threads, HINTS["threads"], "cpuThreadsHint"))
        outer.addLayout(form)

        self.apply_button = QPushButton("Apply (reloads the model)")
        decorate(self.apply_button, "retry")
        self.apply_button.setObjectName("applyOffloadButton")
        self.apply_button.clicked.connect(lambda: self.applyRequested.emit(self.settings()))
        outer.addWidget(self.apply_button)

        self.auto.toggled.connect(self._changed)
        self.slider.valueChanged.connect(self._changed)
        self.flash.currentIndexChanged.connect(self._changed)
        self.kv.currentIndexChanged.connect(self._changed)
        self.threads.valueChanged.connect(self._changed)
        self.set_hardware(None)

    @staticmethod
    def _with_hint(field: QWidget, text: str, name: str) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 6)
        layout.setSpacing(2)
        layout.addWidget(field)
        layout.addWidget(_hint(text, name))
        return box

    # ----- state in --------------------------------------------------------------------------------

    def set_hardware(self, hardware: Hardware | None) -> None:
        """Show what llama.cpp can use; a CPU-only build disables the GPU layer controls."""
        self.hardware = hardware
        # Until the hardware is read, allow every CPU: a saved choice must not be clamped to 1.
        threads = hardware.cpu_threads if hardware is not None else (os.cpu_count() or 1)
        self.threads.setRange(0, max(1, threads, self.applied.n_threads))
        self.threads.setSpecialValueText(f"Auto ({_auto_threads(threads)})")
        if hardware is None:
            self.summary.setText("Looking for GPUs…")
        elif not hardware.gpu_offload:
            self.summary.setText("CPU only: this llama.cpp was built without GPU support (see Hardware…).")
        elif not hardware.devices:
            self.summary.setText(f"{hardware.backend} build, but no GPU was found.")
        else:
            self.summary.setText(hardware.summary())
        can_offload = hardware is not None and hardware.gpu_offload and bool(hardware.devices)
        self.auto.setEnabled(can_offload)
        self.slider.setEnabled(can_offload and not self.auto.isChecked())
        self._update_estimate()

    def set_model(
        self, info: ModelInfo | None, settings: OffloadSettings, context_length: int, sequences: int = 1
    ) -> None:
        """The model the options are for, its saved options, the context length it runs at, and how many
        replies it generates at once (each a KV cache of its own)."""
        self.info = info
        self.context_length = context_length
        self.sequences = sequences
        self.applied = settings
        top = layer_count(info.shape) if info is not None else 1
        widgets = (self.auto, self.slider, self.flash, self.kv, self.threads)
        for widget in widgets:
            widget.blockSignals(True)
        self.slider.setRange(0, top)
        self.auto.setChecked(settings.n_gpu_layers is None)
        self.slider.setValue(top if settings.n_gpu_layers is None else min(top, settings.n_gpu_layers))
        self.flash.setCurrentIndex(
            next(i for i, (_l, v) in enumerate(FLASH_CHOICES) if v == settings.flash_attn)
        )
        self.kv.setCurrentIndex(max(0, self.kv.findData(settings.kv_type)))
        self.threads.setValue(settings.n_threads)
        for widget in widgets:
            widget.blockSignals(False)
        self._changed()

    def set_context_length(self, context_length: int) -> None:
        """The estimate follows the context length setting."""
        self.context_length = context_length
        self._update_estimate()

    # ----- state out -------------------------------------------------------------------------------

    def settings(self) -> OffloadSettings:
        """What the controls show."""
        kv = str(self.kv.currentData())
        flash = self.flash.currentData()
        if kv != "f16":
            flash = True  # llama.cpp quantizes the V cache only with flash attention
        return OffloadSettings(
            n_gpu_layers=None if self.auto.isChecked() else self.slider.value(),
            flash_attn=flash,
            kv_type=kv,
            n_threads=self.threads.value(),
        )

    def _changed(self, *_: object) -> None:
        kv = str(self.kv.currentData())
        self.kv_hint.setText(KV_TYPE_HINTS.get(kv, ""))
        # A quantized KV cache forces flash attention on: say so rather than let the load fail.
        self.flash.setEnabled(kv == "f16")
        if kv != "f16":
            self.flash.setToolTip("A quantized KV cache needs flash attention, so it is on.")
        else:
            self.flash.setToolTip("")
        can_offload = self.auto.isEnabled()
        self.slider.setEnabled(can_offload and not self.auto.isChecked())
        self.apply_button.setEnabled(self.info is not None and self.settings() != self.applied)
        self._update_estimate()

    def layers_shown(self) -> int:
        """The GPU layers the estimate is for: Auto's choice, or the slider's."""
        if self.info is None or self.hardware is None or not self.hardware.devices:
            return 0
        if self.auto.isChecked():
            return self._plan_layers()
        return self.slider.value()

    def _plan_layers(self) -> int:
        assert self.info is not None and self.hardware is not None
        s = self.settings()
        return choose_gpu_layers(
            self.info.shape,
            self.info.file_size,
            self._n_ctx(),
            self.hardware.gpu_free,
            s.kv_type,
            s.flash_attn is not False,
            self.sequences,
        ).n_gpu_layers

    def _n_ctx(self) -> int:
        trained = self.info.context_length if self.info is not None else None
        return min(self.context_length, trained) if trained else self.context_length

    def _update_estimate(self) -> None:
        if self.info is None:
            self.estimate.setText("Load a model to see where its memory goes.")
            return
        s = self.settings()
        layers = self.layers_shown()
        if self.auto.isChecked():  # the slider shows Auto's choice (0 without a GPU)
            self.slider.blockSignals(True)
            self.slider.setValue(layers)
            self.slider.blockSignals(False)
        flash = s.flash_attn is not False
        parts = split(
            self.info.shape, self.info.file_size, self._n_ctx(), layers, s.kv_type, flash, self.sequences
        )
        top = layer_count(self.info.shape)
        free = self.hardware.gpu_free if self.hardware is not None else 0
        if layers == 0:
            self.estimate.setText(f"All on the CPU\nRAM ≈ {format_size(parts.cpu_bytes)}")
            return
        gpu = f"GPU ≈ {format_size(parts.gpu_bytes)}" + (f" of {format_size(free)} free" if free else "")
        text = f"{layers} of {top} layers on the GPU\n{gpu} · RAM ≈ {format_size(parts.cpu_bytes)}"
        if not self.auto.isChecked() and free and layers > self._plan_layers():
            text += "\nMore than fits: if loading fails, Fireside uses fewer layers."
        self.estimate.setText(text)


def _auto_threads(available: int) -> int:
    from app.core.inference.options import default_threads

    return default_threads() if available else 1


def describe_loaded(model: LoadedModel) -> str:
    """Where the loaded model runs, for the status bar."""
    if model.n_gpu_layers <= 0:
        return f"CPU · {model.n_threads} threads"
    return f"{model.backend} · {model.n_gpu_layers}/{model.max_gpu_layers} layers on GPU"
