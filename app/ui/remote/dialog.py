"""The "Remote engines" dialog: add, edit, test and remove OpenAI-compatible endpoints (vLLM, a llama.cpp
server, Ollama, LM Studio, a hosted API), and add the local servers found running with one click.

The dialog only shows and edits; RemoteEngines does the work off the GUI thread (keyring, network).
This module holds the list and the actions; the editor is endpoint_form.EndpointForm and the local
servers found are detected.DetectedEngines.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.remote.endpoints import EndpointModels
from app.ui.common.accessible import describe_buttons, set_description
from app.ui.common.icons import decorate
from app.ui.models.model_picker import PROBLEMS
from app.ui.remote.controller import RemoteEngines
from app.ui.remote.detected import DetectedEngines
from app.ui.remote.endpoint_form import EndpointForm

UrlRole = Qt.ItemDataRole.UserRole + 1


class RemoteEnginesDialog(QDialog):
    """Endpoints on the left, the chosen one's name, URL and key on the right, local servers below."""

    def __init__(self, engines: RemoteEngines, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engines = engines
        self.setObjectName("remoteEnginesDialog")
        self.setWindowTitle("Remote engines")
        self.setMinimumSize(720, 480)
        #: The base URL of the endpoint being edited (None: a new one).
        self.editing: str | None = None
        self._build()
        self._fill_list()
        self.new_endpoint()
        engines.endpointsChanged.connect(self._fill_list)
        engines.listsChanged.connect(self._fill_list)  # each endpoint's line shows how its listing went
        engines.key_state(None, lambda _has, secure: self.form.show_store(secure))
        self.detected.detect()

    # ----- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Chat with models served by other programs: vLLM, a llama.cpp server, Ollama, LM Studio or a "
            "hosted OpenAI-compatible API. Their models appear in the model picker, marked “remote”; "
            "chat, stop, statistics, history and presets work as with a local model."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        row = QHBoxLayout()
        left = QVBoxLayout()
        self.list = QListWidget()
        self.list.setObjectName("endpointList")
        set_description(self.list, "The remote engines you added; choose one to change it")
        self.list.setStyleSheet("QListWidget::item { padding: 4px 2px; }")
        self.list.setAccessibleName("Remote engines")
        self.list.currentItemChanged.connect(lambda item, _prev: self._on_selected(item))
        left.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        self.new_button = QPushButton("New")
        decorate(self.new_button, "add")
        self.new_button.setObjectName("endpointNewButton")
        set_description(self.new_button, "Add another remote engine")
        self.new_button.clicked.connect(self.new_endpoint)
        self.remove_button = QPushButton("Remove…")
        decorate(self.remove_button, "delete")
        self.remove_button.setObjectName("endpointRemoveButton")
        set_description(self.remove_button, "Remove the chosen engine and forget its key")
        self.remove_button.clicked.connect(self.ask_remove)
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.remove_button)
        left.addLayout(buttons)
        row.addLayout(left, 2)
        self.form = EndpointForm()
        self.form.forget_key_button.clicked.connect(self.forget_key)
        self.form.test_button.clicked.connect(self.test_connection)
        self.form.save_button.clicked.connect(self.save)
        row.addWidget(self.form, 3)
        layout.addLayout(row, 1)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        heading = QLabel("Running on this computer")
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        layout.addWidget(heading)
        self.detected = DetectedEngines(self.engines, self.form.say)
        layout.addWidget(self.detected)

        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        describe_buttons(close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)

    # ----- the list ---------------------------------------------------------------------------

    def _fill_list(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for endpoint in self.engines.endpoints:
            item = QListWidgetItem(f"{endpoint.name}\n{endpoint.base_url} · {self._state(endpoint.base_url)}")
            item.setData(UrlRole, endpoint.base_url)
            item.setToolTip(endpoint.base_url)
            self.list.addItem(item)
            if endpoint.base_url == self.editing:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        self.remove_button.setEnabled(self.editing is not None)
        self.detected.refresh_buttons()

    def _state(self, base_url: str) -> str:
        listed = self.engines.lists.get(base_url)
        if listed is None or listed.kind == "pending":
            return "listing models…"
        if listed.error is not None:
            return PROBLEMS.get(listed.kind or "", "not available")
        count = len(listed.models)
        return f"{count} model{'s' if count != 1 else ''}"

    def _on_selected(self, item: QListWidgetItem | None) -> None:
        endpoint = self.engines.find(str(item.data(UrlRole))) if item is not None else None
        if endpoint is None:
            return
        self.editing = endpoint.base_url
        self.form.show_endpoint(endpoint)
        self.remove_button.setEnabled(True)
        listed = self.engines.lists.get(endpoint.base_url)
        if listed is not None and listed.kind != "pending":
            self.form.show_listed(listed)
        else:
            self.form.say("")
        self.engines.key_state(endpoint.base_url, lambda has, _s: self._show_key(endpoint.base_url, has))

    def _show_key(self, base_url: str, has: bool) -> None:
        if base_url == self.editing:  # else another endpoint was chosen meanwhile
            self.form.show_key(has)

    def new_endpoint(self) -> None:
        """Empty the form for a new endpoint."""
        self.editing = None
        self.list.blockSignals(True)
        self.list.clearSelection()
        self.list.setCurrentRow(-1)
        self.list.blockSignals(False)
        self.remove_button.setEnabled(False)
        self.form.clear()

    # ----- actions ------------------------------------------------------------------------------

    def save(self) -> None:
        """Add the endpoint (or save the changes to the one chosen); its key goes to the keyring."""
        config = self.form.typed()
        if config is None:
            return
        clash = self.engines.find(config.base_url)
        if clash is not None and config.base_url != self.editing:
            self.form.say(f"“{clash.name}” already uses {config.base_url}.", "error")
            return
        key = self.form.typed_key()
        self.form.key_input.clear()
        previous = self.editing
        self.editing = config.base_url
        self._busy(True)
        self.form.say("Saving…")

        def saved(kept: bool) -> None:
            self._busy(False)
            self._fill_list()
            self.form.name_input.setText(config.name)  # as kept: a default name, "/v1" added
            self.form.url_input.setText(config.base_url)
            self.form.save_button.setText("Save")
            self.engines.key_state(config.base_url, lambda has, _s: self._show_key(config.base_url, has))
            if key and not kept:
                self.form.say(
                    f"Saved “{config.name}”. No secure keyring is available, so its API key is kept for "
                    "this session only; Fireside never writes keys to files.",
                    "warn",
                )
            else:
                self.form.say(
                    f"Saved “{config.name}”. Its models are being listed in the model picker.", "ok"
                )

        def failed(error: BaseException) -> None:
            self._busy(False)
            self.editing = previous
            self.form.say(f"Could not save: {error}", "error")

        self.engines.save_endpoint(config, key or None, previous, saved, failed)

    def _busy(self, busy: bool) -> None:
        # One keyring write at a time from this dialog: a quick Save-then-Forget must not race.
        form = self.form
        for button in (form.save_button, form.forget_key_button, self.remove_button, self.new_button):
            button.setEnabled(not busy)

    def forget_key(self) -> None:
        """Delete the chosen endpoint's saved key."""
        endpoint = self.engines.find(self.editing or "")
        if endpoint is None:
            return
        self._busy(True)

        def done(_kept: bool) -> None:
            self._busy(False)
            self._show_key(endpoint.base_url, False)
            self.form.say(f"The API key of “{endpoint.name}” was forgotten.")

        def failed(error: BaseException) -> None:
            self._busy(False)
            self.form.say(f"Could not forget the key: {error}", "error")

        self.engines.save_endpoint(endpoint, "", endpoint.base_url, done, failed)

    def ask_remove(self) -> None:
        """Remove the chosen endpoint (and its key), after asking."""
        endpoint = self.engines.find(self.editing or "")
        if endpoint is None:
            return
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Remove remote engine",
            f"Remove “{endpoint.name}” ({endpoint.base_url}) and forget its API key? Conversations "
            "with its models are kept.",
            parent=self,
        )
        box.setObjectName("confirmRemoveEndpoint")
        confirm = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(
            lambda _r: self.remove(endpoint.base_url) if box.clickedButton() is confirm else None
        )
        box.open()

    def remove(self, base_url: str) -> None:
        """Remove an endpoint at once."""
        endpoint = self.engines.find(base_url)
        if endpoint is None:
            return
        self.engines.remove_endpoint(base_url)
        self.new_endpoint()
        self.form.say(f"Removed “{endpoint.name}”.")

    def test_connection(self) -> None:
        """List the typed endpoint's models (off the GUI thread) and show them, or what went wrong."""
        config = self.form.typed()
        if config is None:
            return
        self.form.test_button.setEnabled(False)
        self.form.say(f"Connecting to {config.base_url}…")
        key = self.form.typed_key() or None

        def done(listed: EndpointModels) -> None:
            self.form.test_button.setEnabled(True)
            self.form.show_listed(listed)

        self.engines.test(config, key, self.editing, done)

    # ----- reopening -----------------------------------------------------------------------------------

    def reopen(self) -> None:
        """Start afresh: the endpoints as they are now, an empty form, a new look for local servers."""
        self.editing = None
        self._fill_list()
        self.new_endpoint()
        self.detected.detect()
