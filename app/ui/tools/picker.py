"""The composer's Tools button: which of the MCP servers' tools the open conversation's model may use."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from app.ui.common.accessible import set_description
from app.ui.common.icons import decorate
from app.ui.tools.controller import ToolsController


class ToolsButton(QToolButton):
    """ "Tools" with a menu of every listed tool (checked: the model may call it), "Must use a tool",
    and the way to set up servers."""

    #: "Set up MCP servers…" was chosen.
    setupRequested = Signal()

    def __init__(self, tools: ToolsController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tools = tools
        self.setObjectName("toolsButton")
        decorate(self, "tools")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        set_description(self, "Choose the tools the model may ask to use in this conversation")
        self.menu_ = QMenu(self)
        self.menu_.setObjectName("toolsMenu")
        self.menu_.aboutToShow.connect(self.fill)
        self.setMenu(self.menu_)
        tools.listed.connect(self.update_text)
        self.update_text()

    def update_text(self) -> None:
        """ "Tools", with how many this conversation may use."""
        count = len(self.tools.session.tools)
        self.setText(f"Tools · {count}" if count else "Tools")
        self.setAccessibleName(f"Tools: {count} chosen" if count else "Tools: none chosen")

    def fill(self) -> None:
        """Build the menu from the tools listed now."""
        menu = self.menu_
        menu.clear()
        chosen = set(self.tools.session.tool_names)
        listings = self.tools.listings
        if not self.tools.toolbox.configs:
            empty = menu.addAction("No MCP servers are set up yet")
            empty.setEnabled(False)
        for server, listing in listings.items():
            menu.addSection(server if not listing.error else f"{server} (not reachable)")
            if listing.error:
                problem = menu.addAction(listing.error[:90] + ("…" if len(listing.error) > 90 else ""))
                problem.setEnabled(False)
            for tool in listing.tools:
                action = QAction(tool.name, menu)
                action.setCheckable(True)
                action.setChecked(tool.spec.name in chosen)
                action.setToolTip(tool.spec.description)
                action.setData(tool.spec.name)
                action.toggled.connect(lambda on, name=tool.spec.name: self._choose(name, on))
                menu.addAction(action)
        menu.setToolTipsVisible(True)
        menu.addSeparator()
        require = menu.addAction("Must use a tool")
        require.setObjectName("toolsRequireAction")
        require.setCheckable(True)
        require.setChecked(self.tools.session.require_tool)
        require.setToolTip("Each reply to your message calls one of the chosen tools, then answers in words")
        require.toggled.connect(self.tools.require)
        menu.addAction("Set up MCP servers…").triggered.connect(self.setupRequested)

    def _choose(self, name: str, on: bool) -> None:
        self.tools.choose(name, on)
        self.update_text()
