"""Descriptions for assistive technology: the line a screen reader reads after a control's name."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox, QWidget

#: What a dialog's standard buttons do, said once for every dialog.
STANDARD_BUTTONS = {
    QDialogButtonBox.StandardButton.Close: "Close this window",
    QDialogButtonBox.StandardButton.Ok: "Keep the changes and close this window",
    QDialogButtonBox.StandardButton.Save: "Keep the changes and close this window",
    QDialogButtonBox.StandardButton.Cancel: "Close this window without keeping the changes",
}


def set_description(widget: QWidget, text: str) -> None:
    """Say what `widget` is for: its accessible description, and its tooltip when it has none."""
    widget.setAccessibleDescription(text)
    if not widget.toolTip():
        widget.setToolTip(text)


def describe_buttons(box: QDialogButtonBox) -> None:
    """Describe a dialog's standard buttons (Close, OK, Cancel…)."""
    for which, text in STANDARD_BUTTONS.items():
        button = box.button(which)
        if button is not None and not button.accessibleDescription():
            button.setAccessibleDescription(text)
