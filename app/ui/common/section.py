"""A titled section that folds: a header button with a chevron, and the content under it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QSizePolicy, QToolButton, QVBoxLayout, QWidget

from app.ui.common.icons import icon
from app.ui.common.theme import SECTION_SCALE, icon_size, scaled_font


class Section(QWidget):
    """`content` under a header that shows or hides it (click, or Space on the focused header);
    `inset`: margins at the sides (False for a section inside another)."""

    toggled = Signal(bool)

    def __init__(
        self, title: str, content: QWidget, expanded: bool = True, object_name: str = "", inset: bool = True
    ) -> None:
        super().__init__()
        self.content = content
        self.header = QToolButton()
        self.header.setText(title)
        self.header.setProperty("section", True)
        self.header.setCheckable(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.header.setAccessibleName(title)
        self.header.setFont(scaled_font(self.header.font(), SECTION_SCALE, bold=True))
        self.header.setIconSize(icon_size(self.header.font(), 0.8))
        if object_name:
            self.setObjectName(object_name)
            self.header.setObjectName(f"{object_name}Header")
        layout = QVBoxLayout(self)
        margin = 8 if inset else 0  # a section inside another lines up with its fields
        layout.setContentsMargins(margin, 2, margin, 2)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(content)
        self.header.toggled.connect(self._show)
        self.header.setChecked(expanded)
        self._show(expanded)

    def _show(self, expanded: bool) -> None:
        self.content.setVisible(expanded)
        self.header.setIcon(icon("collapse" if expanded else "expand"))
        verb = "hide" if expanded else "show"
        self.header.setAccessibleDescription(f"Press to {verb} these settings")
        self.header.setToolTip(f"Click to {verb} these settings")
        self.toggled.emit(expanded)

    @property
    def expanded(self) -> bool:
        """Whether the content shows."""
        return self.header.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        """Unfold (True) or fold the section."""
        self.header.setChecked(expanded)
