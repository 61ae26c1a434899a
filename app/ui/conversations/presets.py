"""Presets: named system prompts with sampling settings, applied to the open conversation."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QInputDialog, QToolButton, QWidget

from app.core.store import Preset


class PresetBar(QWidget):
    """A picker (`presetPicker`) and Save / Rename / Delete. Signals ask; the controller acts."""

    applyRequested = Signal(object)  # Preset
    saveRequested = Signal(str)
    renameRequested = Signal(int, str)
    deleteRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.presets: list[Preset] = []
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 4, 12, 0)
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
        self.rename_button.clicked.connect(self._ask_rename)
        self.delete_button = QToolButton()
        self.delete_button.setText("Delete")
        self.delete_button.clicked.connect(self._delete)
        layout.addWidget(self.picker, 1)
        for button in (self.save_button, self.rename_button, self.delete_button):
            layout.addWidget(button)
        self.set_presets([])

    def set_presets(self, presets: list[Preset], current: int | None = None) -> None:
        """Fill the picker; `current` is selected when given."""
        self.presets = list(presets)
        self.picker.blockSignals(True)
        self.picker.clear()
        self.picker.addItem("Presets…")
        for preset in self.presets:
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
