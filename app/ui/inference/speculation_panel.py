"""Speculative decoding in the settings drawer: the mode (Auto, n-gram lookup only, Off) and the
draft model, chosen among the smaller installed models with the model's vocabulary (the smallest
offered first), with a line saying what is in use or why not."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from app.core.models.drafts import draft_candidates
from app.core.models.gguf_file import ModelInfo
from app.core.values.speculation import SpeculationMode
from app.core.values.units import format_size
from app.ui.common.theme import HINT_SCALE, scaled_font

HINT = (
    "Guesses the next words and checks them in one step: the same reply, faster when it repeats what "
    "it was given (code edits, quotes, JSON). Auto guesses from the conversation itself (n-gram "
    "lookup) and with the draft model below, if one is chosen: a draft model helps most on a GPU."
)


def _narrow(box: QComboBox) -> None:
    """Let `box` be narrower than its longest item (a model's name): the drawer keeps its width."""
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(12)
    box.view().setTextElideMode(Qt.TextElideMode.ElideMiddle)


class SpeculationPanel(QWidget):
    """Chooses how replies are guessed ahead; `changed(mode, draft path or None)` when the user does
    (the draft model chosen is kept while the mode leaves it out)."""

    changed = Signal(str, object)

    def __init__(self, mode: str, draft: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("speculationPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 8)
        layout.setSpacing(4)
        self.mode = QComboBox()
        self.mode.setObjectName("speculativePicker")
        _narrow(self.mode)
        self.mode.setAccessibleName("Speculative decoding")
        for choice in SpeculationMode:
            self.mode.addItem(choice.label, choice.value)
        layout.addWidget(self.mode)
        hint = QLabel(HINT)
        hint.setObjectName("speculationHint")
        hint.setWordWrap(True)
        hint.setProperty("muted", True)
        hint.setFont(scaled_font(hint.font(), HINT_SCALE))
        layout.addWidget(hint)
        label = QLabel("Draft model")
        layout.addWidget(label)
        self.draft = QComboBox()
        self.draft.setObjectName("draftModelPicker")
        _narrow(self.draft)
        self.draft.setAccessibleName("Draft model")
        label.setBuddy(self.draft)
        layout.addWidget(self.draft)
        self.note = QLabel("")
        self.note.setObjectName("draftModelNote")
        self.note.setWordWrap(True)
        self.note.setProperty("muted", True)
        self.note.setFont(scaled_font(self.note.font(), HINT_SCALE))
        layout.addWidget(self.note)
        self._chosen = draft
        self.mode.setCurrentIndex(max(0, self.mode.findData(mode)))
        self.set_candidates(None, [])
        self.mode.currentIndexChanged.connect(self._on_change)
        self.draft.currentIndexChanged.connect(self._on_change)

    def set_candidates(self, target: ModelInfo | None, models: list[ModelInfo]) -> None:
        """Offer the installed `models` that may draft for `target` (the loaded model), smallest
        first; the draft model chosen stays listed even when it is not among them."""
        self.draft.blockSignals(True)
        self.draft.clear()
        self.draft.addItem("None (n-gram lookup only)", None)
        candidates = draft_candidates(target, models) if target is not None else []
        for i, info in enumerate(candidates):
            offered = " · smallest of its family" if i == 0 else ""
            self.draft.addItem(f"{info.path.stem} · {format_size(info.file_size)}{offered}", str(info.path))
        if self._chosen is not None and self.draft.findData(self._chosen) < 0:
            self.draft.addItem(Path(self._chosen).name, self._chosen)
        self.draft.setCurrentIndex(max(0, self.draft.findData(self._chosen)))
        self.draft.setEnabled(self.mode.currentData() == SpeculationMode.AUTO.value)
        if target is None:
            self.note.setText("Load a model to see the models that can draft for it.")
        elif not candidates and self._chosen is None:
            self.note.setText(f"No smaller installed model shares {target.name}'s vocabulary.")
        else:
            self.note.setText("")
        self.draft.blockSignals(False)

    def show_result(self, draft: Path | None, message: str | None) -> None:
        """Say what the engine uses: the draft model open, or why the one chosen is not."""
        if message:
            self.note.setText(message)
        elif draft is not None:
            self.note.setText(f"Drafting with {draft.name}.")
        elif self.mode.currentData() == SpeculationMode.OFF.value:
            self.note.setText("Replies are written one token at a time.")

    def _on_change(self) -> None:
        mode = str(self.mode.currentData())
        self.draft.setEnabled(mode == SpeculationMode.AUTO.value)
        self._chosen = self.draft.currentData()
        self.changed.emit(mode, self._chosen)
