"""Sampling controls beside the chat: each with its range enforced and a one-line hint."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.values.sampling import RANGES, SamplingParams
from app.ui.common.accessible import set_description
from app.ui.common.section import Section
from app.ui.common.theme import HINT_SCALE, scaled_font

#: (field, label, objectName, decimals, step) in display order.
FIELDS: list[tuple[str, str, str, int, float]] = [
    ("temperature", "Temperature", "temperatureInput", 2, 0.05),
    ("top_p", "Top-p", "topPInput", 2, 0.01),
    ("top_k", "Top-k", "topKInput", 0, 1),
    ("min_p", "Min-p", "minPInput", 2, 0.01),
    ("repeat_penalty", "Repeat penalty", "repeatPenaltyInput", 2, 0.01),
    ("max_tokens", "Max tokens", "maxTokensInput", 0, 64),
    ("seed", "Seed", "seedInput", 0, 1),
    ("context_length", "Context length", "contextLengthInput", 0, 256),
]
#: The fields shown up front; the others fold under "More sampling settings".
BASIC = ("temperature", "max_tokens", "context_length")


def _form() -> QFormLayout:
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
    form.setVerticalSpacing(4)
    return form


class SamplingPanel(QWidget):
    """Edits a SamplingParams; `changed` fires with the new (valid) value. Applies to the next reply."""

    changed = Signal(object)

    def __init__(self, params: SamplingParams | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("samplingPanel")
        self._inputs: dict[str, QSpinBox | QDoubleSpinBox] = {}
        self._max_context = int(RANGES["context_length"].maximum)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 0, 4, 8)
        outer.setSpacing(6)
        note = QLabel("Changes apply to the next reply.")
        note.setWordWrap(True)
        note.setProperty("muted", True)
        outer.addWidget(note)
        form, more_form = _form(), _form()
        more = QWidget()
        more.setLayout(more_form)
        more_form.setContentsMargins(0, 0, 0, 0)
        order = [f for f in FIELDS if f[0] in BASIC] + [f for f in FIELDS if f[0] not in BASIC]
        for name, label, object_name, decimals, step in order:
            rng = RANGES[name]
            box: QSpinBox | QDoubleSpinBox
            if rng.integer:
                box = QSpinBox()
                box.setRange(int(rng.minimum), int(rng.maximum))
                box.setSingleStep(int(step))
            else:
                box = QDoubleSpinBox()
                box.setDecimals(decimals)
                box.setRange(rng.minimum, rng.maximum)
                box.setSingleStep(step)
            if name == "seed":
                box.setSpecialValueText("Random")
            box.setObjectName(object_name)
            box.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
            box.setKeyboardTracking(False)
            box.setToolTip(f"{rng.hint}\nAllowed: {rng.describe()}")
            box.setAccessibleName(label)
            box.setAccessibleDescription(rng.hint)
            box.valueChanged.connect(self._emit_changed)
            hint = QLabel(f"{rng.describe()} · {rng.hint}")
            hint.setObjectName(f"{object_name}Hint")
            hint.setWordWrap(True)
            hint.setProperty("muted", True)
            hint.setFont(scaled_font(hint.font(), HINT_SCALE))
            field_box = QWidget()
            field_layout = QVBoxLayout(field_box)
            field_layout.setContentsMargins(0, 0, 0, 6)
            field_layout.setSpacing(2)
            field_layout.addWidget(box)
            field_layout.addWidget(hint)
            (form if name in BASIC else more_form).addRow(label, field_box)
            self._inputs[name] = box
        outer.addLayout(form)
        self.more = Section("More sampling settings", more, False, "moreSampling", inset=False)
        outer.addWidget(self.more)
        reset = QPushButton("Reset to defaults")
        reset.setObjectName("resetSamplingButton")
        set_description(reset, "Put every sampling setting back to its default")
        reset.clicked.connect(self.reset)
        outer.addWidget(reset)
        outer.addStretch(1)
        self.set_params(params or SamplingParams())

    def input(self, name: str) -> QSpinBox | QDoubleSpinBox:
        """The input widget for a SamplingParams field."""
        return self._inputs[name]

    def params(self) -> SamplingParams:
        """The current values (always valid: the inputs clamp to the ranges)."""
        values = {name: box.value() for name, box in self._inputs.items()}
        for name, box in self._inputs.items():
            if isinstance(box, QSpinBox):
                values[name] = int(values[name])
        return SamplingParams(**values)  # type: ignore[arg-type]

    def set_params(self, params: SamplingParams) -> None:
        """Show `params` without emitting `changed` once per field."""
        for name, box in self._inputs.items():
            box.blockSignals(True)
            box.setValue(getattr(params, name))
            box.blockSignals(False)
        self._emit_changed()

    def reset(self) -> None:
        """Restore every default."""
        defaults = SamplingParams()
        self.set_params(defaults.with_changes(context_length=min(defaults.context_length, self._max_context)))

    def set_max_context(self, n_ctx_train: int | None) -> None:
        """Limit the context length input to what the loaded model was trained for."""
        limit = int(RANGES["context_length"].maximum)
        if n_ctx_train:
            limit = max(int(RANGES["context_length"].minimum), min(limit, n_ctx_train))
        self._max_context = limit
        box = self._inputs["context_length"]
        box.setMaximum(limit)
        hint = self.findChild(QLabel, "contextLengthInputHint")
        if hint is not None:
            rng = RANGES["context_length"]
            hint.setText(f"{int(rng.minimum)} – {limit} (this model's maximum) · {rng.hint}")

    def _emit_changed(self, *_: object) -> None:
        self.changed.emit(self.params())
