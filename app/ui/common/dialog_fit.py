"""Dialogs that grow to fit their wrapped text, so large text or a note that arrives later (the
keyring's answer) is never cut off."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QDialog

from app.ui.common.theme import chars


class FitsItsText(QObject):
    """Watches a dialog's layout requests and makes it tall enough for its wrapped labels at its
    width. (Qt sizes a dialog from its layout's size hint once, which ignores how many lines a
    wrapped label takes at the width the dialog really gets.)"""

    def __init__(self, dialog: QDialog, width_chars: int = 0) -> None:
        super().__init__(dialog)
        self.dialog = dialog
        if width_chars:  # text that wraps in fewer lines: wider, in characters of its font
            dialog.setMinimumWidth(max(dialog.minimumWidth(), chars(dialog.font(), width_chars)))
        dialog.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """After the dialog is shown or its layout changes: grow it if its text needs more height."""
        if watched is self.dialog and event.type() in (QEvent.Type.Show, QEvent.Type.LayoutRequest):
            self.fit()
        return False

    def fit(self) -> None:
        """Grow the dialog (never shrink it): as wide as its widest line of controls (a minimum width
        set in characters must not cut a check box's text), and as tall as its text at that width."""
        layout = self.dialog.layout()
        if layout is None:
            return
        width = max(self.dialog.width(), layout.totalMinimumSize().width())
        height = self.dialog.height()
        if layout.hasHeightForWidth():
            height = max(height, layout.totalHeightForWidth(width))
        if (width, height) != (self.dialog.width(), self.dialog.height()):
            self.dialog.resize(width, height)
