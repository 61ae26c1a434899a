"""The drawer's "Reply format": free text, any JSON object, or JSON of a schema the user writes.

A schema is checked as it is typed (JSON? an object? can a grammar hold a reply to it?) and only a
schema that passes reaches the conversation; the message under it says what is wrong otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from app.core.tools.json_output import SchemaError, json_grammar

#: A typed schema is checked after typing pauses this long.
CHECK_DELAY_MS = 400
EXAMPLE = (
    '{\n  "type": "object",\n  "properties": {"answer": {"type": "string"}},\n  "required": ["answer"]\n}'
)


def schema_problem(text: str) -> tuple[dict[str, Any] | None, str]:
    """The schema typed, or None and what is wrong with it, in words."""
    try:
        schema = json.loads(text)
    except ValueError as exc:
        return None, f"This is not JSON yet: {exc.args[0] if exc.args else exc}."
    if not isinstance(schema, dict):
        return None, "A schema is a JSON object: { … }."
    try:
        json_grammar(schema, "The schema")
    except SchemaError as exc:
        return None, str(exc)
    return schema, ""


class ReplyFormatPanel(QWidget):
    """A picker (`replyFormatPicker`), the schema (`jsonSchemaInput`) and its check (`jsonSchemaMessage`)."""

    #: The conversation's JSON mode changed: a schema ({}: any JSON object), or None for free text.
    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 8)
        self.picker = QComboBox()
        self.picker.setObjectName("replyFormatPicker")
        self.picker.setAccessibleName("Reply format")
        self.picker.addItem("Text", "text")
        self.picker.addItem("JSON", "json")
        self.picker.addItem("JSON of a schema", "schema")
        self.picker.setToolTip(
            "JSON: every reply is a JSON object (a grammar holds the model to it, token by token). "
            "With a schema, the JSON follows it. Tools are not offered while JSON is on."
        )
        self.schema = QPlainTextEdit()
        self.schema.setObjectName("jsonSchemaInput")
        self.schema.setAccessibleName("JSON schema of the replies")
        self.schema.setPlaceholderText(EXAMPLE)
        self.schema.setFixedHeight(self.schema.fontMetrics().lineSpacing() * 6 + 12)
        self.schema.setTabChangesFocus(True)
        self.message = QLabel("")
        self.message.setObjectName("jsonSchemaMessage")
        self.message.setWordWrap(True)
        self.message.setProperty("muted", True)
        layout.addWidget(self.picker)
        layout.addWidget(self.schema)
        layout.addWidget(self.message)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(CHECK_DELAY_MS)
        self._timer.timeout.connect(self._check)
        self.picker.currentIndexChanged.connect(lambda _i: self._on_kind())
        self.schema.textChanged.connect(self._timer.start)
        self._show_kind()

    def value(self) -> dict[str, Any] | None:
        """The JSON mode shown now (a schema with a problem counts as none yet)."""
        kind = self.picker.currentData()
        if kind == "text":
            return None
        if kind == "json":
            return {}
        schema, _problem = schema_problem(self.schema.toPlainText())
        return schema

    def show_value(self, schema: dict[str, Any] | None) -> None:
        """Show a conversation's (or a preset's) JSON mode without announcing it."""
        self.blockSignals(True)
        self.picker.blockSignals(True)
        self.schema.blockSignals(True)
        self.picker.setCurrentIndex(0 if schema is None else 1 if not schema else 2)
        self.schema.setPlainText(json.dumps(schema, indent=2) if schema else "")
        self.schema.blockSignals(False)
        self.picker.blockSignals(False)
        self.blockSignals(False)
        self._show_kind()
        self.message.setText("")

    def _show_kind(self) -> None:
        self.schema.setVisible(self.picker.currentData() == "schema")
        self.message.setVisible(self.picker.currentData() != "text")
        if self.picker.currentData() == "json":
            self.message.setText("Every reply is a JSON object.")

    def _on_kind(self) -> None:
        self._show_kind()
        if self.picker.currentData() == "schema":
            self._check()
        else:
            self.changed.emit(self.value())

    def _check(self) -> None:
        if self.picker.currentData() != "schema":
            return
        text = self.schema.toPlainText().strip()
        if not text:
            self.message.setText("Write the schema the replies must follow.")
            return
        schema, problem = schema_problem(text)
        self.message.setText(problem or "Every reply follows this schema.")
        if schema is not None:
            self.changed.emit(schema)
