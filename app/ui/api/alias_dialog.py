"""The dialog that defines a model alias: a name, a base model, its adapters with a scale each, a
system prompt and sampling defaults (app.core.api.aliases). It only edits; the caller keeps it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.api.aliases import MAX_SCALE, Alias
from app.core.models.library import ModelEntry
from app.core.values.sampling import RANGES
from app.ui.common.accessible import describe_buttons, set_description

#: The value of a sampling spin box that means "the window's setting" (its special value text).
UNSET = -1


class AliasDialog(QDialog):
    """Define or change one alias; `alias()` is the result once accepted."""

    def __init__(
        self,
        installed: Sequence[ModelEntry],
        taken: Sequence[str],
        alias: Alias | None = None,
        parent: QWidget | None = None,
        shadowed: Sequence[str] = (),
    ) -> None:
        super().__init__(parent)
        self.setObjectName("aliasDialog")
        self.setWindowTitle("Edit alias" if alias else "New alias")
        self.setMinimumWidth(520)
        self._installed = [e for e in installed if e.info is not None and not e.info.is_adapter]
        self._taken = {name.casefold() for name in taken}
        #: Names of installed models (an alias of one of them hides it from the API's list).
        self._shadowed = {name.casefold() for name in shadowed}
        layout = QVBoxLayout(self)
        intro = QLabel(
            "API clients that name this alias get the model with these adapters, this system prompt "
            "(when they send none) and these sampling defaults (for fields they leave out)."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.name = QLineEdit(alias.name if alias else "")
        self.name.setObjectName("aliasName")
        self.name.setPlaceholderText("my-org/support-assistant-v2")
        self.name.setAccessibleName("Alias name")
        form.addRow("Name", self.name)
        self.model = QComboBox()
        self.model.setObjectName("aliasModel")
        self.model.setAccessibleName("Base model")
        for entry in self._installed:
            self.model.addItem(entry.path.stem, str(entry.path))
        if alias is not None and self.model.findData(str(alias.model)) < 0:
            self.model.addItem(f"{alias.model.stem} (no longer installed)", str(alias.model))
        if alias is not None:
            self.model.setCurrentIndex(self.model.findData(str(alias.model)))
        form.addRow("Model", self.model)
        self.adapters_box = QWidget()
        self.adapters_box.setObjectName("aliasAdapters")
        self.adapters_layout = QVBoxLayout(self.adapters_box)
        self.adapters_layout.setContentsMargins(0, 0, 0, 0)
        form.addRow("Adapters", self.adapters_box)
        self.system_prompt = QPlainTextEdit(alias.system_prompt if alias else "")
        self.system_prompt.setObjectName("aliasSystemPrompt")
        self.system_prompt.setAccessibleName("System prompt")
        self.system_prompt.setPlaceholderText("None: the request's, or the model's own")
        self.system_prompt.setMaximumHeight(96)
        form.addRow("System prompt", self.system_prompt)
        sampling = dict(alias.sampling) if alias else {}
        self.temperature = QDoubleSpinBox()
        self.temperature.setObjectName("aliasTemperature")
        self.temperature.setAccessibleName("Temperature")
        self.temperature.setRange(UNSET, RANGES["temperature"].maximum)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(2)
        self.temperature.setSpecialValueText("The window's setting")
        self.temperature.setValue(sampling.get("temperature", UNSET))
        form.addRow("Temperature", self.temperature)
        self.max_tokens = QSpinBox()
        self.max_tokens.setObjectName("aliasMaxTokens")
        self.max_tokens.setAccessibleName("Longest reply, in tokens")
        self.max_tokens.setRange(0, int(RANGES["max_tokens"].maximum))
        self.max_tokens.setSpecialValueText("The request's, or the context")
        self.max_tokens.setValue(int(sampling.get("max_tokens", 0)))
        form.addRow("Longest reply", self.max_tokens)
        layout.addLayout(form)
        self.problems = QLabel()
        self.problems.setObjectName("aliasProblems")
        self.problems.setWordWrap(True)
        self.problems.setProperty("error", True)
        layout.addWidget(self.problems)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        describe_buttons(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._scales: dict[Path, tuple[QCheckBox, QDoubleSpinBox]] = {}
        self._chosen = dict(alias.adapters) if alias else {}
        self._original = alias
        self.model.currentIndexChanged.connect(self._show_adapters)
        self.name.textChanged.connect(self._check)
        self.temperature.valueChanged.connect(self._check)
        self.max_tokens.valueChanged.connect(self._check)
        self._show_adapters()

    def _entry(self) -> ModelEntry | None:
        path = self.model.currentData()
        return next((e for e in self._installed if str(e.path) == path), None)

    def _show_adapters(self) -> None:
        for toggle, scale in self._scales.values():  # keep what was chosen for the model chosen back
            if toggle.isChecked():
                self._chosen[Path(toggle.property("path"))] = scale.value()
        while (item := self.adapters_layout.takeAt(0)) is not None:
            if (widget := item.widget()) is not None:
                widget.deleteLater()
        self._scales = {}
        entry = self._entry()
        adapters = entry.adapters if entry is not None else ()
        if not adapters:
            empty = QLabel("None beside this model (put GGUF LoRA adapters in its folder).")
            empty.setProperty("muted", True)
            empty.setWordWrap(True)
            self.adapters_layout.addWidget(empty)
        for path in adapters:
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            toggle = QCheckBox(path.stem)
            toggle.setObjectName("aliasAdapterToggle")
            toggle.setProperty("path", str(path))
            set_description(toggle, f"Apply the adapter {path.name} for this alias")
            scale = QDoubleSpinBox()
            scale.setObjectName("aliasAdapterScale")
            scale.setAccessibleName(f"Scale of {path.stem}")
            scale.setRange(0.0, MAX_SCALE)
            scale.setSingleStep(0.1)
            scale.setValue(self._chosen.get(path, 1.0))
            toggle.setChecked(path in self._chosen)
            toggle.toggled.connect(self._check)
            scale.valueChanged.connect(self._check)
            line.addWidget(toggle, 1)
            line.addWidget(scale)
            self.adapters_layout.addWidget(row)
            self._scales[path] = (toggle, scale)
        self._check()

    def alias(self) -> Alias:
        """The alias as the dialog shows it now."""
        sampling: list[tuple[str, float]] = []
        if self.temperature.value() != UNSET:
            sampling.append(("temperature", round(self.temperature.value(), 2)))
        if self.max_tokens.value():
            sampling.append(("max_tokens", self.max_tokens.value()))
        adapters = tuple(
            (path, round(scale.value(), 2))
            for path, (toggle, scale) in self._scales.items()
            if toggle.isChecked()
        )
        return Alias(
            self.name.text(),
            Path(self.model.currentData() or ""),
            adapters,
            self.system_prompt.toPlainText().strip(),
            tuple(sampling),
        )

    def _check(self) -> None:
        alias = self.alias()
        problems = alias.problems()
        if alias.name.casefold() in self._taken:
            problems.insert(0, f"Another alias is named “{alias.name}”.")
        note = ""
        if not problems and alias.name.casefold() in self._shadowed:
            note = (
                f"An installed model is named “{alias.name}” too: the API answers that name with this alias."
            )
        self.problems.setText(" ".join(problems) or note)
        self.problems.setProperty("error", bool(problems))
        self.problems.style().unpolish(self.problems)
        self.problems.style().polish(self.problems)
        self.problems.setVisible(bool(problems or note))
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not problems)

    def accept(self) -> None:
        """Close with the alias, if it can be saved now (a last check)."""
        self._check()
        if self.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled():
            super().accept()
