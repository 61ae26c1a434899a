"""Presets: named system prompts with sampling settings, applied to the open conversation."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QInputDialog, QToolButton, QVBoxLayout, QWidget

from app.core.chat.store import Preset
from app.ui.common.icons import decorate

#: Id of the picker's entry holding the loaded model's own recommended settings (not stored).
MODEL_DEFAULTS_ID = -1


class PresetBar(QWidget):
    """A picker (`presetPicker`) and Save / Rename / Delete. Signals ask; the controller acts."""

    applyRequested = Signal(object)  # Preset
    saveRequested = Signal(str)
    renameRequested = Signal(int, str)
    deleteRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.presets: list[Preset] = []
        self.model_defaults: Preset | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.picker = QComboBox()
        self.picker.setObjectName("presetPicker")
        self.picker.setToolTip("Apply a preset: its system prompt and sampling settings")
        self.picker.activated.connect(self._on_activated)
        self.save_button = QToolButton()
        self.save_button.setObjectName("presetSaveButton")
        self.save_button.setText("Save…")
        self.save_button.setToolTip("Save this system prompt and these sampling settings as a preset")
        self.save_button.clicked.connect(self._ask_save)
        self.rename_button = QToolButton()
        self.rename_button.setText("Rename…")
        self.rename_button.setToolTip("Rename the chosen preset")
        self.rename_button.clicked.connect(self._ask_rename)
        self.delete_button = QToolButton()
        self.delete_button.setText("Delete")
        self.delete_button.setToolTip("Delete the chosen preset")
        self.delete_button.clicked.connect(self._delete)
        decorate(self.save_button, "save")
        decorate(self.rename_button, "edit")
        decorate(self.delete_button, "delete")
        # Two rows: the side panel is narrow (250 px at least), and a cut-off button is worse than a row.
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for button in (self.save_button, self.rename_button, self.delete_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addWidget(self.picker)
        layout.addLayout(buttons)
        self.set_presets([])

    def set_model_defaults(self, model_name: str | None, sampling: dict[str, float] | None) -> None:
        """Offer the loaded model's own recommended sampling settings (from its GGUF) as the first entry."""
        stored = [p for p in self.presets if p.id != MODEL_DEFAULTS_ID]
        self.model_defaults = (
            Preset(MODEL_DEFAULTS_ID, f"{model_name} defaults", "", dict(sampling), builtin=True)
            if model_name and sampling
            else None
        )
        current = self.selected()
        self.set_presets(stored, current.id if current is not None else None)

    def set_presets(self, presets: list[Preset], current: int | None = None) -> None:
        """Fill the picker; `current` is selected when given."""
        stored = [p for p in presets if p.id != MODEL_DEFAULTS_ID]
        self.presets = ([self.model_defaults] if self.model_defaults else []) + stored
        self.picker.blockSignals(True)
        self.picker.clear()
        self.picker.addItem("Presets…")
        for preset in self.presets:
            if preset.id == MODEL_DEFAULTS_ID:
                self.picker.addItem(f"{preset.name} (from the model file)")
                settings = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in preset.sampling.items())
                self.picker.setItemData(
                    self.picker.count() - 1,
                    f"Sampling settings recommended by the model's authors: {settings}. "
                    "The system prompt is left as it is.",
                    Qt.ItemDataRole.ToolTipRole,
                )
            else:
                self.picker.addItem(preset.name + (" (built in)" if preset.builtin else ""))
        row = next((i + 1 for i, p in enumerate(self.presets) if p.id == current), 0)
        self.picker.setCurrentIndex(row)
        self.picker.blockSignals(False)
        self._update_buttons()

    def selected(self) -> Preset | None:
        """The preset shown in the picker."""
        row = self.picker.currentIndex() - 1
        return self.presets[row] if 0 <= row < len(self.presets) else None

    def _update_buttons(self) -> None:
        preset = self.selected()
        own = preset is not None and not preset.builtin
        self.rename_button.setEnabled(own)
        self.delete_button.setEnabled(own)

    def _on_activated(self, _row: int) -> None:
        self._update_buttons()
        preset = self.selected()
        if preset is not None:
            self.applyRequested.emit(preset)

    def _ask_save(self) -> None:
        dialog = QInputDialog(self)
        dialog.setObjectName("presetNameDialog")
        dialog.setWindowTitle("Save preset")
        dialog.setLabelText("Name")
        dialog.textValueSelected.connect(lambda name: self.saveRequested.emit(name) if name.strip() else None)
        dialog.open()

    def _ask_rename(self) -> None:
        preset = self.selected()
        if preset is None or preset.builtin:
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename preset")
        dialog.setLabelText("Name")
        dialog.setTextValue(preset.name)
        dialog.textValueSelected.connect(lambda name: self.renameRequested.emit(preset.id, name))
        dialog.open()

    def _delete(self) -> None:
        preset = self.selected()
        if preset is not None and not preset.builtin:
            self.deleteRequested.emit(preset.id)
