"""Preferences → "Tools (MCP servers)": add a server by command (stdio) or URL (streamable HTTP), with
environment variables whose secret values live in the keyring; test it; see its tools and choose the
ones that may run without asking.

The dialog only shows and edits; ToolsController does the work off the GUI thread (keyring, servers).
"""

from __future__ import annotations

import shlex

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.tools.mcp_config import DEFAULT_TIMEOUT_S, McpConfigError, McpServerConfig
from app.core.tools.toolbox import Listing
from app.ui.common.accessible import describe_buttons, set_description
from app.ui.common.icons import decorate
from app.ui.common.theme import is_dark
from app.ui.remote.endpoint_form import COLORS
from app.ui.tools.controller import ToolsController

ToolRole = Qt.ItemDataRole.UserRole + 1


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    """NAME=value lines (blank lines skipped). Raises McpConfigError naming a line that is not one."""
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise McpConfigError(f"Line {number} of {what} is not NAME=value.")
        pairs.append((name.strip(), value))
    return pairs


def _lines_high(edit: QPlainTextEdit, lines: int) -> int:
    """A text box's height for `lines` lines of its font (large text included) and its frame."""
    margins = edit.contentsMargins()
    document = round(edit.document().documentMargin() * 2)
    return edit.fontMetrics().lineSpacing() * lines + document + margins.top() + margins.bottom() + 4


class McpServersDialog(QDialog):
    """The servers on the left; the chosen one's settings, its tools and Test / Save on the right."""

    def __init__(self, tools: ToolsController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tools = tools
        self.setObjectName("mcpServersDialog")
        self.setWindowTitle("Tools (MCP servers)")
        self.setMinimumSize(760, 560)
        #: The name of the server being edited (None: a new one).
        self.editing: str | None = None
        self._build()
        self._fill_list()
        self.new_server()
        tools.serversChanged.connect(self._fill_list)
        tools.listed.connect(self._show_listing)

    # ----- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(
            "MCP servers give the model tools: files, search, your own programs. A server is a command "
            "Fireside starts, or a URL it connects to. The model may only ask: each call waits for your "
            "Allow or Deny, unless you always allow that tool below."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        row = QHBoxLayout()
        left = QVBoxLayout()
        self.list = QListWidget()
        self.list.setObjectName("mcpServerList")
        self.list.setAccessibleName("MCP servers")
        set_description(self.list, "The MCP servers you added; choose one to change it")
        self.list.currentItemChanged.connect(lambda item, _prev: self._on_selected(item))
        left.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        self.new_button = QPushButton("New")
        decorate(self.new_button, "add")
        self.new_button.setObjectName("mcpNewButton")
        set_description(self.new_button, "Add another MCP server")
        self.new_button.clicked.connect(self.new_server)
        self.remove_button = QPushButton("Remove")
        decorate(self.remove_button, "delete")
        self.remove_button.setObjectName("mcpRemoveButton")
        set_description(self.remove_button, "Remove the chosen server and forget its secrets")
        self.remove_button.clicked.connect(self.remove)
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.remove_button)
        left.addLayout(buttons)
        row.addLayout(left, 2)
        row.addLayout(self._form(), 5)
        layout.addLayout(row, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        describe_buttons(close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)

    def _form(self) -> QVBoxLayout:
        right = QVBoxLayout()
        form = QFormLayout()
        self.name_input = QLineEdit()
        self.name_input.setObjectName("mcpNameInput")
        self.name_input.setPlaceholderText("e.g. files (its tools: files__…)")
        self.kind_picker = QComboBox()
        self.kind_picker.setObjectName("mcpKindPicker")
        self.kind_picker.addItem("Command (stdio)", "stdio")
        self.kind_picker.addItem("URL (streamable HTTP)", "http")
        self.kind_picker.currentIndexChanged.connect(lambda _i: self._show_kind())
        self.command_input = QLineEdit()
        self.command_input.setObjectName("mcpCommandInput")
        self.command_input.setPlaceholderText("npx, uvx, python3, or a program's path")
        self.args_input = QLineEdit()
        self.args_input.setObjectName("mcpArgsInput")
        self.args_input.setPlaceholderText("-y @modelcontextprotocol/server-filesystem ~/Documents")
        self.url_input = QLineEdit()
        self.url_input.setObjectName("mcpUrlInput")
        self.url_input.setPlaceholderText("http://127.0.0.1:8000/mcp")
        self.env_input = QPlainTextEdit()
        self.env_input.setObjectName("mcpEnvInput")
        self.env_input.setAccessibleName("Environment variables")
        self.env_input.setPlaceholderText("NAME=value, one per line")
        self.env_input.setFixedHeight(_lines_high(self.env_input, 2))
        self.env_input.setTabChangesFocus(True)
        self.secrets_input = QPlainTextEdit()
        self.secrets_input.setObjectName("mcpSecretsInput")
        self.secrets_input.setAccessibleName("Secret environment variables, kept in the keyring")
        self.secrets_input.setPlaceholderText("API_KEY=value: the value goes to the keyring, never to a file")
        self.secrets_input.setFixedHeight(_lines_high(self.secrets_input, 2))
        self.secrets_input.setTabChangesFocus(True)
        self.timeout_input = QSpinBox()
        self.timeout_input.setObjectName("mcpTimeoutInput")
        self.timeout_input.setAccessibleName("Time limit of a tool call")
        self.timeout_input.setRange(1, 3600)
        self.timeout_input.setSuffix(" s")
        self.timeout_input.setToolTip("A call that gives no result within this long ends as timed out")
        self.enabled_check = QCheckBox("On")
        self.enabled_check.setObjectName("mcpEnabledCheck")
        self.enabled_check.setToolTip("Off: the server is kept but not started, and its tools not offered")
        form.addRow("Name", self.name_input)
        form.addRow("Kind", self.kind_picker)
        self._command_label, self._args_label, self._url_label = (
            QLabel("Command"),
            QLabel("Arguments"),
            QLabel("URL"),
        )
        form.addRow(self._command_label, self.command_input)
        form.addRow(self._args_label, self.args_input)
        form.addRow(self._url_label, self.url_input)
        form.addRow("Environment", self.env_input)
        form.addRow("Secrets", self.secrets_input)
        form.addRow("Time limit", self.timeout_input)
        form.addRow("", self.enabled_check)
        right.addLayout(form)
        heading = QLabel("Tools (checked: runs without asking)")
        heading.setProperty("muted", True)
        right.addWidget(heading)
        self.tool_list = QListWidget()
        self.tool_list.setObjectName("mcpToolList")
        self.tool_list.setAccessibleName("The server's tools; a checked one runs without asking")
        right.addWidget(self.tool_list, 1)
        actions = QHBoxLayout()
        self.test_button = QPushButton("Test")
        decorate(self.test_button, "test")
        self.test_button.setObjectName("mcpTestButton")
        set_description(self.test_button, "Start or reach the server and list its tools")
        self.test_button.clicked.connect(self.test)
        self.save_button = QPushButton("Add")
        decorate(self.save_button, "save")
        self.save_button.setObjectName("mcpSaveButton")
        set_description(self.save_button, "Save this server")
        self.save_button.clicked.connect(self.save)
        actions.addWidget(self.test_button)
        actions.addStretch(1)
        actions.addWidget(self.save_button)
        right.addLayout(actions)
        self.message = QLabel("")
        self.message.setObjectName("mcpMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        right.addWidget(self.message)
        return right

    def _show_kind(self) -> None:
        stdio = self.kind_picker.currentData() == "stdio"
        for widget in (self._command_label, self.command_input, self._args_label, self.args_input):
            widget.setVisible(stdio)
        self._url_label.setVisible(not stdio)
        self.url_input.setVisible(not stdio)

    # ----- the list -----------------------------------------------------------------------------

    def _fill_list(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for config in self.tools.toolbox.configs:
            listing = self.tools.listings.get(config.name)
            state = "off" if not config.enabled else (
                "not reachable" if listing is not None and listing.error else
                f"{len(listing.tools)} tools" if listing is not None else "…"
            )  # fmt: skip
            item = QListWidgetItem(f"{config.name}\n{state}")
            item.setData(Qt.ItemDataRole.UserRole, config.name)
            self.list.addItem(item)
            if config.name == self.editing:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        self.remove_button.setEnabled(self.editing is not None)

    def _on_selected(self, item: QListWidgetItem | None) -> None:
        name = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        config = next((c for c in self.tools.toolbox.configs if c.name == name), None)
        if config is not None:
            self.show_server(config)

    def new_server(self) -> None:
        """An empty form for a new server."""
        self.editing = None
        self.list.clearSelection()
        self._fill(McpServerConfig(""))
        self.save_button.setText("Add")
        self.remove_button.setEnabled(False)
        self.name_input.setFocus()

    def show_server(self, config: McpServerConfig) -> None:
        """Edit a saved server."""
        self.editing = config.name
        self._fill(config)
        self.save_button.setText("Save")
        self.remove_button.setEnabled(True)
        self._show_listing()

    def _fill(self, config: McpServerConfig) -> None:
        self.name_input.setText(config.name)
        self.kind_picker.setCurrentIndex(1 if config.url else 0)
        self.command_input.setText(config.command)
        self.args_input.setText(shlex.join(config.args))
        self.url_input.setText(config.url)
        self.env_input.setPlainText("\n".join(f"{k}={v}" for k, v in config.env))
        # Saved secrets show by name only: an empty value keeps the one in the keyring.
        self.secrets_input.setPlainText("\n".join(f"{v}=" for v in config.secret_env))
        self.secrets_input.setToolTip(
            "Values are in the keyring: leave one empty to keep it, type a new one to replace it"
            if config.secret_env
            else ""
        )
        self.timeout_input.setValue(round(config.timeout_s or DEFAULT_TIMEOUT_S))
        self.enabled_check.setChecked(config.enabled)
        self.tool_list.clear()
        self._always = set(config.always_allowed)
        self._show_kind()
        self.say("")

    def _show_listing(self) -> None:
        self._fill_list()
        if self.editing is None:
            return
        listing = self.tools.listings.get(self.editing)
        if listing is not None:
            self._show_tools(listing)

    def _show_tools(self, listing: Listing) -> None:
        self.tool_list.clear()
        for tool in listing.tools:
            item = QListWidgetItem(
                f"{tool.name}: {tool.spec.description}" if tool.spec.description else tool.name
            )
            item.setData(ToolRole, tool.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if tool.name in self._always else Qt.CheckState.Unchecked
            )
            item.setToolTip(tool.spec.description)
            self.tool_list.addItem(item)
        if listing.error:
            self.say(listing.error, "error")

    # ----- actions ------------------------------------------------------------------------------

    def say(self, text: str, kind: str = "") -> None:
        """Show a message under the form (hidden when empty)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))
        colors = COLORS.get(kind)
        self.message.setStyleSheet(
            f"color: {colors[1] if is_dark(self.palette()) else colors[0]};" if colors else ""
        )

    def typed(self) -> tuple[McpServerConfig, dict[str, str]]:
        """The server as typed, checked, and the secret values typed. Raises McpConfigError."""
        stdio = self.kind_picker.currentData() == "stdio"
        try:
            args = tuple(shlex.split(self.args_input.text())) if stdio else ()
        except ValueError as exc:
            raise McpConfigError(f"The arguments cannot be read: {exc} (a quote is not closed?).") from exc
        secrets = _pairs(self.secrets_input.toPlainText(), "Secrets")
        always = {
            str(self.tool_list.item(i).data(ToolRole))
            for i in range(self.tool_list.count())
            if self.tool_list.item(i).checkState() == Qt.CheckState.Checked
        } if self.tool_list.count() else self._always  # fmt: skip
        config = McpServerConfig(
            name=self.name_input.text().strip(),
            command=self.command_input.text().strip() if stdio else "",
            args=args,
            url=self.url_input.text().strip() if not stdio else "",
            env=tuple(_pairs(self.env_input.toPlainText(), "Environment")),
            secret_env=tuple(name for name, _value in secrets),
            timeout_s=float(self.timeout_input.value()),
            enabled=self.enabled_check.isChecked(),
            always_allowed=frozenset(always),
        ).validated()
        if self.editing is not None and self.editing != config.name:
            raise McpConfigError(
                "A server's name cannot change: its tools are named after it. Add it again under the new "
                "name, then remove this one."
            )
        if self.editing != config.name and any(c.name == config.name for c in self.tools.toolbox.configs):
            raise McpConfigError(f"There is a server called “{config.name}” already.")
        saved = {c.name: c for c in self.tools.toolbox.configs}.get(self.editing or "")
        for name, value in secrets:
            if not value and (saved is None or name not in saved.secret_env):
                raise McpConfigError(f"{name} has no value: type it (it goes to the keyring).")
        return config, {name: value for name, value in secrets if value}

    def test(self) -> None:
        """Start or reach the server as typed and list its tools."""
        try:
            config, values = self.typed()
        except McpConfigError as exc:
            self.say(str(exc), "error")
            return
        self.test_button.setEnabled(False)
        self.say(f"Starting {config.name}…" if config.command else f"Connecting to {config.url}…")

        def tested(listing: Listing) -> None:
            self.test_button.setEnabled(True)
            if listing.error:
                self.say(listing.error, "error")
                return
            self._show_tools(listing)
            names = ", ".join(tool.name for tool in listing.tools[:8])
            more = f" and {len(listing.tools) - 8} more" if len(listing.tools) > 8 else ""
            self.say(f"It works: {len(listing.tools)} tools ({names}{more}).", "ok")

        self.tools.test_server(config, values, tested)

    def save(self) -> None:
        """Save the server as typed (its secret values to the keyring)."""
        try:
            config, values = self.typed()
        except McpConfigError as exc:
            self.say(str(exc), "error")
            return
        replacing = self.editing
        self.save_button.setEnabled(False)

        def saved(problem: str) -> None:
            self.save_button.setEnabled(True)
            self.editing = config.name
            self.save_button.setText("Save")
            self._fill_list()
            self.secrets_input.setPlainText("\n".join(f"{v}=" for v in config.secret_env))
            self.say(
                problem or f"{config.name} is saved. Choose its tools in a chat with the Tools button.",
                "warn" if problem else "ok",
            )

        self.tools.save_server(config, values, replacing, saved)

    def remove(self) -> None:
        """Remove the chosen server."""
        if self.editing is not None:
            self.tools.remove_server(self.editing)
            self.new_server()
            self._fill_list()
