"""The "Local API server" dialog: the switch, port, network access and API key, status and request log.

It only shows and edits: ServerController does the work, off the GUI thread.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.api.config import ServerSettings, new_api_key
from app.core.settings import MAX_PARALLEL
from app.ui.api.controller import LOG_LINES, ServerController, ServerState, activity_text
from app.ui.api.models_section import ServerModelsSection
from app.ui.common.accessible import describe_buttons, set_description
from app.ui.common.icons import decorate

if TYPE_CHECKING:  # the HTTP stack is imported when the server first starts, not at launch
    from app.core.api.request_log import RequestLog


class ServerDialog(QDialog):
    """Turn the server on and off, choose its port, network access and key, and watch its log."""

    def __init__(self, controller: ServerController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("serverDialog")
        self.setWindowTitle("Local API server")
        self.setMinimumSize(760, 520)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Serve your models to other programs through an OpenAI-compatible API "
            "(/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models). A model writes several "
            "replies at once, the window's and the programs' together; more wait for one to finish."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        self.switch = QCheckBox("Serve models to other programs")
        self.switch.setObjectName("serverSwitch")
        set_description(self.switch, "Serve your models to other programs at the address below")
        layout.addWidget(self.switch)
        form = QFormLayout()
        self.port = QSpinBox()
        self.port.setObjectName("serverPort")
        self.port.setRange(1024, 65535)
        self.port.setValue(controller.settings.port)
        self.port.setToolTip("The TCP port clients connect to. Change it if another program uses it.")
        form.addRow("Port", self.port)
        self.network = QCheckBox("Allow other computers on the network (requires an API key)")
        self.network.setObjectName("serverNetwork")
        set_description(
            self.network,
            "Let other computers on your network use the server (an API key is then required)",
        )
        self.network.setChecked(controller.settings.allow_network)
        form.addRow("", self.network)
        self.fetch_images = QCheckBox("Fetch images that requests give by web address (network traffic)")
        self.fetch_images.setObjectName("serverFetchImages")
        set_description(
            self.fetch_images,
            "Let API clients send image_url parts with http or https addresses: Fireside then downloads "
            "those images itself. Off: only images sent inside the request (data: URLs) are read",
        )
        self.fetch_images.setChecked(controller.settings.fetch_images)
        form.addRow("", self.fetch_images)
        key_row = QHBoxLayout()
        self.key = QLineEdit()
        self.key.setObjectName("serverApiKey")
        self.key.setAccessibleName("API key")
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("None: any program on this computer may use the server")
        self.key.setText(controller.api_key or "")
        self.show_key = QPushButton("Show")
        decorate(self.show_key, "show")
        self.show_key.setToolTip("Show or hide the API key")
        self.show_key.setCheckable(True)
        self.show_key.toggled.connect(self._toggle_echo)
        self.generate = QPushButton("Generate")
        decorate(self.generate, "retry")
        self.generate.setToolTip("Make a new random API key (clients must then use it)")
        self.generate.setObjectName("serverGenerateKey")
        self.generate.setToolTip("Make a new random key (copy it into your client)")
        self.generate.clicked.connect(lambda: self._set_key(new_api_key()))
        key_row.addWidget(self.key, 1)
        key_row.addWidget(self.show_key)
        key_row.addWidget(self.generate)
        form.addRow("API key", key_row)
        self.key_note = QLabel()
        self.key_note.setObjectName("serverKeyNote")
        self.key_note.setWordWrap(True)
        self.key_note.setProperty("muted", True)
        form.addRow("", self.key_note)
        parallel_row = QHBoxLayout()
        self.parallel = QSpinBox()
        self.parallel.setObjectName("serverParallel")
        self.parallel.setAccessibleName("Parallel replies")
        self.parallel.setRange(0, MAX_PARALLEL)
        self.parallel.setSpecialValueText("Auto")
        self.parallel.setValue(controller.parallel_choice)
        self.parallel.setToolTip(
            "How many replies the model writes at once, the window's and API clients' together, each with "
            "a context of its own. Auto: up to 4, fewer when their KV caches would crowd the memory. "
            "Changing it reloads the model."
        )
        self.parallel_note = QLabel()
        self.parallel_note.setObjectName("serverParallelNow")
        self.parallel_note.setProperty("muted", True)
        parallel_row.addWidget(self.parallel)
        parallel_row.addWidget(self.parallel_note, 1)
        form.addRow("Parallel replies", parallel_row)
        layout.addLayout(form)
        models_heading = QLabel("Models by name")
        bold = models_heading.font()
        bold.setBold(True)
        models_heading.setFont(bold)
        layout.addWidget(models_heading)
        self.models = ServerModelsSection(controller, self)
        layout.addWidget(self.models)

        status_row = QHBoxLayout()
        self.status = QLabel()
        self.status.setObjectName("serverStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy = QPushButton("Copy address")
        decorate(self.copy, "copy")
        self.copy.setObjectName("serverCopyAddress")
        set_description(self.copy, "Copy the server's address to the clipboard")
        self.copy.clicked.connect(self._copy_address)
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.copy)
        layout.addLayout(status_row)
        self.activity = QLabel()
        self.activity.setObjectName("serverActivity")
        layout.addWidget(self.activity)

        layout.addWidget(QLabel("Requests"))
        self.log_view = QPlainTextEdit()
        self.log_view.setObjectName("serverLog")
        set_description(self.log_view, "Every request the server handled, newest last")
        self.log_view.setAccessibleName("Request log")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_LINES)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log_view.setPlaceholderText("Requests, their speed and any errors appear here.")
        self.log_view.setPlainText("\n".join(controller.history))
        layout.addWidget(self.log_view, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        describe_buttons(buttons)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

        self.switch.setChecked(controller.state in (ServerState.RUNNING, ServerState.STARTING))
        self.switch.toggled.connect(self._on_switch)
        self.network.toggled.connect(self._on_network)
        self.port.valueChanged.connect(self._remember)
        self.network.toggled.connect(self._remember)
        self.fetch_images.toggled.connect(self._remember)
        controller.keyLoaded.connect(self._show_loaded_key)
        controller.stateChanged.connect(self._show_state)
        controller.logged.connect(self._on_logged)
        controller.activityChanged.connect(self._show_activity)
        controller.parallelChanged.connect(self._show_parallel)
        self.parallel.editingFinished.connect(lambda: controller.choose_parallel(self.parallel.value()))
        self._show_parallel()
        self._show_state(controller.state, controller.message)
        self._show_activity(*controller.activity)
        self._show_key_note()
        self._on_network(self.network.isChecked())

    # ----- actions ------------------------------------------------------------------------

    def _settings(self) -> ServerSettings:
        return replace(
            self.controller.settings,
            port=self.port.value(),
            allow_network=self.network.isChecked(),
            fetch_images=self.fetch_images.isChecked(),
        )

    def _on_switch(self, on: bool) -> None:
        if not on:
            self.controller.stop()
            return
        key = self.key.text().strip()
        if self.network.isChecked() and not key:
            self.status.setText("Set an API key first: the server will be reachable from other computers.")
            self.status.setProperty("error", True)
            self.switch.blockSignals(True)
            self.switch.setChecked(False)
            self.switch.blockSignals(False)
            return
        if key != (self.controller.api_key or ""):
            self.controller.set_api_key(key or None, lambda _kept: self._show_key_note())
        self.controller.start(self._settings())

    def _remember(self) -> None:
        # Port and network choices are kept even when the server is not switched on now.
        if self.controller.state not in (ServerState.RUNNING, ServerState.STARTING):
            self.controller.update_settings(self._settings())

    def _show_loaded_key(self) -> None:
        if not self.key.isModified():  # never overwrite what the user is typing
            self.key.setText(self.controller.api_key or "")
        self._show_key_note()

    def _on_network(self, on: bool) -> None:
        self.key.setPlaceholderText(
            "Required when other computers may connect"
            if on
            else "None: any program on this computer may use it"
        )

    def _set_key(self, key: str) -> None:
        self.key.setText(key)
        self.show_key.setChecked(True)

    def _toggle_echo(self, shown: bool) -> None:
        self.key.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_key.setText("Hide" if shown else "Show")

    def _copy_address(self) -> None:
        address = self.controller.address
        if address:
            QGuiApplication.clipboard().setText(address)

    # ----- display ------------------------------------------------------------------------

    def _show_key_note(self) -> None:
        if self.controller.key_is_kept:
            self.key_note.setText(
                "The key is kept in the system keyring. Clients send it as “Authorization: Bearer KEY” "
                "(the api_key of OpenAI's libraries)."
            )
        else:
            self.key_note.setText(
                "No secure keyring is available: the key is kept for this session only, never written to "
                "a file. Enter it again after restarting Fireside."
            )

    def _show_state(self, state: str, message: str) -> None:
        self.status.setText(message)
        self.status.setProperty("error", state == ServerState.ERROR)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.copy.setEnabled(state == ServerState.RUNNING)
        running = state in (ServerState.RUNNING, ServerState.STARTING, ServerState.STOPPING)
        if self.switch.isChecked() != running and state not in (ServerState.STARTING, ServerState.STOPPING):
            self.switch.blockSignals(True)
            self.switch.setChecked(running)
            self.switch.blockSignals(False)
        for widget in (self.port, self.network, self.fetch_images, self.key, self.generate):
            widget.setEnabled(not running)

    def _show_parallel(self) -> None:
        now = self.controller.parallel_now
        self.parallel_note.setText(f"Now: {now} at once" if now else "No model is loaded")
        if not self.parallel.hasFocus():
            self.parallel.blockSignals(True)
            self.parallel.setValue(self.controller.parallel_choice)
            self.parallel.blockSignals(False)

    def _show_activity(self, generating: int, waiting: int) -> None:
        self.activity.setText(activity_text(generating, waiting))

    def _on_logged(self, entry: RequestLog) -> None:
        if entry.state == "done":
            self.log_view.appendPlainText(entry.line())
