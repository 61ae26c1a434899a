"""The "Remote engines" dialog: add, edit, test and remove OpenAI-compatible endpoints (vLLM, a llama.cpp
server, Ollama, LM Studio, a hosted API), and add the local servers found running with one click.

The dialog only shows and edits; RemoteEngines does the work off the GUI thread (keyring, network).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.remote.client import KNOWN_LOCAL_ENGINES, Endpoint
from app.core.remote.endpoints import EndpointConfig, EndpointModels, default_name, normalize_base_url
from app.ui.common.theme import is_dark
from app.ui.models.model_picker import PROBLEMS
from app.ui.remote.controller import RemoteEngines

UrlRole = Qt.ItemDataRole.UserRole + 1
#: Message colours: (light palette, dark palette), so each reads on its background.
COLORS = {
    "ok": ("#1a7f37", "#3fb950"),
    "error": ("#d1242f", "#ff7b72"),
    "warn": ("#9a6700", "#d29922"),
}


def _list_of(models: tuple[str, ...] | list[str], most: int = 6) -> str:
    shown = ", ".join(models[:most])
    return shown + (f" and {len(models) - most} more" if len(models) > most else "")


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
        self._secure = True
        self._detected_rows: list[QWidget] = []
        self._detect_round = 0
        self._build()
        self._fill_list()
        self.new_endpoint()
        engines.endpointsChanged.connect(self._fill_list)
        engines.listsChanged.connect(self._fill_list)  # each endpoint's line shows how its listing went
        engines.key_state(None, lambda _has, secure: self._show_store(secure))
        self._detect()

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
        self.list.setStyleSheet("QListWidget::item { padding: 4px 2px; }")
        self.list.setAccessibleName("Remote engines")
        self.list.currentItemChanged.connect(lambda item, _prev: self._on_selected(item))
        left.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        self.new_button = QPushButton("New")
        self.new_button.setObjectName("endpointNewButton")
        self.new_button.clicked.connect(self.new_endpoint)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.setObjectName("endpointRemoveButton")
        self.remove_button.clicked.connect(self.ask_remove)
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.remove_button)
        left.addLayout(buttons)
        row.addLayout(left, 2)

        right = QVBoxLayout()
        form = QFormLayout()
        self.name_input = QLineEdit()
        self.name_input.setObjectName("endpointNameInput")
        self.name_input.setPlaceholderText("A name you recognise, e.g. “Lab vLLM”")
        self.url_input = QLineEdit()
        self.url_input.setObjectName("endpointUrlInput")
        self.url_input.setPlaceholderText("http://127.0.0.1:8080/v1")
        self.url_input.setToolTip("The server's OpenAI-compatible base URL, usually ending in /v1")
        key_row = QHBoxLayout()
        self.key_input = QLineEdit()
        self.key_input.setObjectName("endpointKeyInput")
        self.key_input.setEchoMode(QLineEdit.EchoMode.Password)
        self.forget_key_button = QPushButton("Forget key")
        self.forget_key_button.setObjectName("endpointForgetKeyButton")
        self.forget_key_button.clicked.connect(self.forget_key)
        key_row.addWidget(self.key_input, 1)
        key_row.addWidget(self.forget_key_button)
        form.addRow("Name", self.name_input)
        form.addRow("Base URL", self.url_input)
        form.addRow("API key", key_row)
        right.addLayout(form)
        self.store_label = QLabel("Checking the keyring…")
        self.store_label.setObjectName("endpointKeyStore")
        self.store_label.setWordWrap(True)
        right.addWidget(self.store_label)
        actions = QHBoxLayout()
        self.test_button = QPushButton("Test connection")
        self.test_button.setObjectName("endpointTestButton")
        self.test_button.clicked.connect(self.test_connection)
        self.save_button = QPushButton("Add")
        self.save_button.setObjectName("endpointSaveButton")
        self.save_button.clicked.connect(self.save)
        actions.addWidget(self.test_button)
        actions.addStretch(1)
        actions.addWidget(self.save_button)
        right.addLayout(actions)
        self.message = QLabel("")
        self.message.setObjectName("endpointMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        right.addWidget(self.message)
        right.addStretch(1)
        row.addLayout(right, 3)
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
        self.detected = QWidget()
        self.detected.setObjectName("detectedEngines")
        self.detected_layout = QVBoxLayout(self.detected)
        self.detected_layout.setContentsMargins(0, 0, 0, 0)
        status_row = QHBoxLayout()
        self.detected_status = QLabel("")
        self.detected_status.setObjectName("detectedStatus")
        self.detected_status.setWordWrap(True)
        self.detect_button = QPushButton("Look again")
        self.detect_button.setObjectName("detectAgainButton")
        self.detect_button.clicked.connect(self._detect)
        status_row.addWidget(self.detected_status, 1)
        status_row.addWidget(self.detect_button)
        self.detected_layout.addLayout(status_row)
        layout.addWidget(self.detected)

        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)

    def _color(self, kind: str) -> str:
        light, dark = COLORS[kind]
        return dark if is_dark(self.palette()) else light

    def _say(self, text: str, kind: str | None = None) -> None:
        """Show `text` under the form, coloured for "ok", "error" or "warn"."""
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {self._color(kind)};" if kind else "")

    def _show_store(self, secure: bool) -> None:
        self._secure = secure
        if secure:
            self.store_label.setText("API keys are kept in the system keyring, never in Fireside's files.")
            self.store_label.setStyleSheet("")
        else:
            self.store_label.setText(
                "No secure keyring is available on this system: an API key you enter is kept for this "
                "session only (never written to a file), so you will enter it again after restarting."
            )
            self.store_label.setStyleSheet(f"color: {self._color('warn')};")

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
        self._refresh_detected_buttons()

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
        self.name_input.setText(endpoint.name)
        self.url_input.setText(endpoint.base_url)
        self.key_input.clear()
        self.key_input.setPlaceholderText("Checking…")
        self.forget_key_button.setEnabled(False)
        self.save_button.setText("Save")
        self.remove_button.setEnabled(True)
        listed = self.engines.lists.get(endpoint.base_url)
        if listed is not None and listed.kind != "pending":
            self._show_listed(listed)
        else:
            self._say("")
        self.engines.key_state(endpoint.base_url, lambda has, _s: self._show_key(endpoint.base_url, has))

    def _show_key(self, base_url: str, has: bool) -> None:
        if base_url != self.editing:
            return  # another endpoint was chosen meanwhile
        self.key_input.setPlaceholderText(
            "Saved — type a new key to replace it" if has else "Optional (none saved)"
        )
        self.forget_key_button.setEnabled(has)

    def new_endpoint(self) -> None:
        """Empty the form for a new endpoint."""
        self.editing = None
        self.list.blockSignals(True)
        self.list.clearSelection()
        self.list.setCurrentRow(-1)
        self.list.blockSignals(False)
        for box in (self.name_input, self.url_input, self.key_input):
            box.clear()
        self.key_input.setPlaceholderText("Optional: only if the server asks for one")
        self.forget_key_button.setEnabled(False)
        self.save_button.setText("Add")
        self.remove_button.setEnabled(False)
        self._say("")
        self.url_input.setFocus()

    # ----- actions ------------------------------------------------------------------------------

    def _typed(self) -> EndpointConfig | None:
        """The form as an endpoint, or None (and a message) when the URL is not usable."""
        try:
            url = normalize_base_url(self.url_input.text())
        except ValueError as exc:
            self._say(str(exc), "error")
            self.url_input.setFocus()
            return None
        name = self.name_input.text().strip() or default_name(url)
        return EndpointConfig(name, url)

    def save(self) -> None:
        """Add the endpoint (or save the changes to the one chosen); its key goes to the keyring."""
        config = self._typed()
        if config is None:
            return
        clash = self.engines.find(config.base_url)
        if clash is not None and config.base_url != self.editing:
            self._say(f"“{clash.name}” already uses {config.base_url}.", "error")
            return
        key = self.key_input.text().strip()
        self.key_input.clear()
        previous = self.editing
        self.editing = config.base_url
        self._busy(True)
        self._say("Saving…")

        def saved(kept: bool) -> None:
            self._busy(False)
            self._fill_list()
            self.name_input.setText(config.name)  # as kept: a default name, "/v1" added
            self.url_input.setText(config.base_url)
            self.save_button.setText("Save")
            self.engines.key_state(config.base_url, lambda has, _s: self._show_key(config.base_url, has))
            if key and not kept:
                self._say(
                    f"Saved “{config.name}”. No secure keyring is available, so its API key is kept for "
                    "this session only; Fireside never writes keys to files.",
                    "warn",
                )
            else:
                self._say(f"Saved “{config.name}”. Its models are being listed in the model picker.", "ok")

        def failed(error: BaseException) -> None:
            self._busy(False)
            self.editing = previous
            self._say(f"Could not save: {error}", "error")

        self.engines.save_endpoint(config, key or None, previous, saved, failed)

    def _busy(self, busy: bool) -> None:
        # One keyring write at a time from this dialog: a quick Save-then-Forget must not race.
        for button in (self.save_button, self.forget_key_button, self.remove_button, self.new_button):
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
            self._say(f"The API key of “{endpoint.name}” was forgotten.")

        def failed(error: BaseException) -> None:
            self._busy(False)
            self._say(f"Could not forget the key: {error}", "error")

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
        self._say(f"Removed “{endpoint.name}”.")

    def test_connection(self) -> None:
        """List the typed endpoint's models (off the GUI thread) and show them, or what went wrong."""
        config = self._typed()
        if config is None:
            return
        self.test_button.setEnabled(False)
        self._say(f"Connecting to {config.base_url}…")
        key = self.key_input.text().strip() or None

        def done(listed: EndpointModels) -> None:
            self.test_button.setEnabled(True)
            self._show_listed(listed)

        self.engines.test(config, key, self.editing, done)

    def _show_listed(self, listed: EndpointModels) -> None:
        if listed.error is not None:
            self._say(listed.error, "error")
        elif not listed.models:
            self._say(f"Connected to {listed.endpoint.base_url}, but it lists no models.", "warn")
        else:
            count = len(listed.models)
            self._say(
                f"Connected: {count} model{'s' if count != 1 else ''} — {_list_of(listed.models)}.", "ok"
            )

    # ----- local servers ----------------------------------------------------------------------------

    def reopen(self) -> None:
        """Start afresh: the endpoints as they are now, an empty form, a new look for local servers."""
        self.editing = None
        self._fill_list()
        self.new_endpoint()
        self._detect()

    def _detect(self) -> None:
        for line in self._detected_rows:
            line.deleteLater()
        self._detected_rows.clear()
        self._detect_round += 1
        round_ = self._detect_round
        candidates = self.engines.detect_candidates or KNOWN_LOCAL_ENGINES
        names = ", ".join(f"{name} (port {urlsplit(url).port})" for name, url in candidates.items())
        self.detected_status.setText(f"Looking for {names}…")
        self.detect_button.setEnabled(False)
        self.engines.detect(lambda found: self._show_detected(found, names, round_))

    def _show_detected(self, found: list[tuple[Endpoint, list[str]]], names: str, round_: int) -> None:
        if round_ != self._detect_round:
            return  # the dialog was opened again meanwhile
        self.detect_button.setEnabled(True)
        if not found:
            self.detected_status.setText(f"Nothing answers on the usual ports of {names}.")
            return
        self.detected_status.setText("Add one to use its models:")
        for endpoint, models in found:
            line = QWidget()
            row = QHBoxLayout(line)
            row.setContentsMargins(0, 0, 0, 0)
            count = len(models)
            label = QLabel(
                f"<b>{endpoint.name}</b> · {endpoint.base_url} · {count} model{'s' if count != 1 else ''}"
            )
            label.setToolTip(_list_of(models, 20))
            button = QPushButton("Add")
            button.setObjectName("detectedAddButton")
            button.setProperty("base_url", endpoint.base_url)
            button.clicked.connect(lambda _c=False, e=endpoint: self._add_detected(e))
            row.addWidget(label, 1)
            row.addWidget(button)
            self.detected_layout.addWidget(line)
            self._detected_rows.append(line)
        self._refresh_detected_buttons()

    def _refresh_detected_buttons(self) -> None:
        for button in self.detected.findChildren(QPushButton, "detectedAddButton"):
            added = self.engines.find(str(button.property("base_url"))) is not None
            button.setEnabled(not added)
            button.setText("Added" if added else "Add")

    def _add_detected(self, endpoint: Endpoint) -> None:
        if self.engines.find(endpoint.base_url) is not None:
            return
        config = EndpointConfig(endpoint.name, endpoint.base_url)

        def added(_kept: bool) -> None:
            self._refresh_detected_buttons()
            self._say(f"Added “{config.name}”. Its models are in the model picker.", "ok")

        self.engines.save_endpoint(
            config, None, None, added, lambda e: self._say(f"Could not add: {e}", "error")
        )
