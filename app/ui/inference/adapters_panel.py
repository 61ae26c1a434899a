"""LoRA adapters in the settings drawer: the adapters beside the loaded model (and any the
conversation uses), each with a switch and a scale from 0 to 2. The choice belongs to the
conversation (and to a preset saved from it); switching adapters never reloads the model."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from app.core.inference.adapters import MAX_SCALE
from app.ui.common.theme import HINT_SCALE, scaled_font

#: The slider's steps per unit of scale (0.05 a step).
STEPS = 20
EMPTY = (
    "No LoRA adapters for this model. Put GGUF adapters made for it (general.type = adapter) in its "
    "folder, or in a folder of their own under the models folder."
)


class AdapterRow(QWidget):
    """One adapter: a switch named after it and its scale."""

    changed = Signal()

    def __init__(self, path: str, available: bool, scale: float, used: bool) -> None:
        super().__init__()
        self.path = path
        self.setObjectName("adapterRow")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(0)
        name = Path(path).stem + ("" if available else " (not beside this model)")
        self.toggle = QCheckBox(name)
        self.toggle.setObjectName("adapterToggle")
        self.toggle.setToolTip(path)
        self.toggle.setChecked(used)
        row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("adapterScale")
        self.slider.setAccessibleName(f"Scale of {Path(path).stem}")
        self.slider.setRange(0, int(MAX_SCALE * STEPS))
        self.slider.setValue(round(scale * STEPS))
        self.value = QLabel()
        self.value.setObjectName("adapterScaleValue")
        self.value.setMinimumWidth(self.value.fontMetrics().horizontalAdvance("0.00") + 4)
        row.addWidget(self.slider, 1)
        row.addWidget(self.value)
        layout.addWidget(self.toggle)
        layout.addLayout(row)
        self._show()
        self.toggle.toggled.connect(self._changed)
        self.slider.valueChanged.connect(self._changed)

    @property
    def scale(self) -> float:
        """The scale chosen (0 gives exactly the base model)."""
        return self.slider.value() / STEPS

    def _show(self) -> None:
        self.value.setText(f"{self.scale:.2f}")
        self.slider.setEnabled(self.toggle.isChecked())

    def _changed(self) -> None:
        self._show()
        self.changed.emit()


class AdaptersPanel(QWidget):
    """The adapters a conversation applies; `changed((path, scale), ...)` when the user changes them."""

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("adaptersPanel")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 0, 4, 8)
        self._layout.setSpacing(2)
        self.empty = QLabel(EMPTY)
        self.empty.setObjectName("adaptersEmpty")
        self.empty.setWordWrap(True)
        self.empty.setProperty("muted", True)
        self.empty.setFont(scaled_font(self.empty.font(), HINT_SCALE))
        self._layout.addWidget(self.empty)
        self.rows: list[AdapterRow] = []
        self._available: list[str] = []
        self._used: tuple[tuple[str, float], ...] = ()
        self._rebuild()

    def set_available(self, paths: list[Path]) -> None:
        """The adapters made for the loaded model (none: no model, or a remote one)."""
        self._available = [str(path) for path in paths]
        self._rebuild()

    def show_value(self, adapters: tuple[tuple[str, float], ...]) -> None:
        """Show a conversation's (or a preset's) adapters, without announcing a change."""
        self._used = tuple(adapters)
        self._rebuild()

    def value(self) -> tuple[tuple[str, float], ...]:
        """The adapters switched on, with their scales."""
        return tuple((row.path, row.scale) for row in self.rows if row.toggle.isChecked())

    def _rebuild(self) -> None:
        for row in self.rows:
            self._layout.removeWidget(row)
            row.hide()  # at once: deleteLater waits for the event loop, and it would paint till then
            row.deleteLater()
        used = dict(self._used)
        paths = self._available + [path for path in used if path not in self._available]
        self.rows = [AdapterRow(p, p in self._available, used.get(p, 1.0), p in used) for p in paths]
        for row in self.rows:
            self._layout.addWidget(row)
            row.show()  # now: a layout shows a widget added later only once the event loop runs
            row.changed.connect(self._on_change)
        self.empty.setVisible(not self.rows)

    def _on_change(self) -> None:
        self._used = self.value()
        self.changed.emit(self._used)
