"""The model picker: installed models with name, quantization, size and context length from the GGUF."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QSizePolicy, QWidget

from app.core.gguf_info import format_params, format_size
from app.core.library import ModelEntry
from app.core.memory import Machine, fit_model, total_ram
from app.core.memory import describe as describe_estimate

PathRole = Qt.ItemDataRole.UserRole + 1


def describe(entry: ModelEntry, name: str | None = None) -> str:
    """'SmolLM2 135M Instruct · Q4_1 · 98.4 MB · 8,192 ctx', or the file name and its problem.

    `name` replaces the file name where it means nothing to people (Ollama's blobs are named by hash)."""
    info = entry.info
    if info is None:
        return f"{name or entry.path.name} — cannot be used"
    ctx = f"{info.context_length:,} ctx" if info.context_length else "ctx unknown"
    params = format_params(info.parameter_count)
    size = format_size(info.file_size)
    return f"{name or entry.path.stem} · {params} {info.architecture} · {info.quantization} · {size} · {ctx}"


class ModelPicker(QComboBox):
    """Lists ModelEntry rows; `modelChosen(path)` fires when the user picks a usable model."""

    modelChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelPicker")
        self.setAccessibleName("Model")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(28)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setPlaceholderText("No models installed")
        self.entries: list[ModelEntry] = []
        #: Friendly names by resolved path, for files whose own name is a hash (set by the window).
        self.names: dict[str, str] = {}
        #: What the fit line in each tooltip is judged against (RAM only until GPUs are known).
        self.machine = Machine(ram_total=total_ram())
        self.context_length = 4096
        self.activated.connect(self._on_activated)

    def set_machine(self, machine: Machine, context_length: int) -> None:
        """Judge the fit lines against `machine` at `context_length` tokens."""
        self.machine, self.context_length = machine, context_length
        for row, entry in enumerate(self.entries):
            if entry.info is not None:
                self.setItemData(row, self._tooltip(entry), Qt.ItemDataRole.ToolTipRole)

    def set_entries(self, entries: list[ModelEntry], current: str | None = None) -> None:
        """Replace the list, keeping `current` selected when present."""
        self.blockSignals(True)
        self.clear()
        self.entries = list(entries)
        for entry in self.entries:
            self.addItem(describe(entry, self.names.get(str(entry.path))))
            row = self.count() - 1
            self.setItemData(row, str(entry.path), PathRole)
            tip = entry.error or self._tooltip(entry)
            self.setItemData(row, tip, Qt.ItemDataRole.ToolTipRole)
            if entry.info is None:
                item = self.model().item(row)  # type: ignore[attr-defined]
                item.setEnabled(False)
        self.select_path(current)
        self.blockSignals(False)

    def _tooltip(self, entry: ModelEntry) -> str:
        info = entry.info
        assert info is not None
        template = "its own chat template" if info.has_chat_template else "no chat template (ChatML is used)"
        badge, est = fit_model(info.file_size, info.shape, self.context_length, self.machine)
        return (
            f"{info.name}\n{info.path}\n{info.block_count or '?'} layers · {template}\n"
            f"{badge.label}: {describe_estimate(est)}"
        )

    def select_path(self, path: str | None) -> None:
        """Show `path` as the current item (no signal)."""
        if path is None:
            self.setCurrentIndex(-1)
            return
        wanted = str(Path(path).resolve())
        for row in range(self.count()):
            if self.itemData(row, PathRole) == wanted:
                self.setCurrentIndex(row)
                return

    def current_path(self) -> str | None:
        """Path of the selected model."""
        data = self.currentData(PathRole)
        return str(data) if data else None

    def _on_activated(self, row: int) -> None:
        path = self.itemData(row, PathRole)
        entry = self.entries[row] if 0 <= row < len(self.entries) else None
        if path and entry is not None and entry.info is not None:
            self.modelChosen.emit(str(path))
