"""The endpoint editor of the "Remote engines" dialog: name, base URL and API key, and what went on.

It only shows what it is given and reads what was typed; the dialog decides what to do with it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.core.remote.endpoints import EndpointConfig, EndpointModels, default_name, normalize_base_url
from app.ui.common.accessible import set_description
from app.ui.common.icons import decorate
from app.ui.common.theme import is_dark

#: Message colours: (light palette, dark palette), so each reads on its background.
COLORS = {
    "ok": ("#1a7f37", "#3fb950"),
    "error": ("#d1242f", "#ff7b72"),
    "warn": ("#9a6700", "#d29922"),
}


def list_of(models: tuple[str, ...] | list[str], most: int = 6) -> str:
    """The first `most` model names, and how many more there are."""
    shown = ", ".join(models[:most])
    return shown + (f" and {len(models) - most} more" if len(models) > most else "")


class EndpointForm(QWidget):
    """Name, base URL and API key of one endpoint, the Test and Add/Save buttons, and a message line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        right = QVBoxLayout(self)
        right.setContentsMargins(0, 0, 0, 0)  # lined up as if it were a layout of the dialog's own
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
        self.key_input.setAccessibleName("API key of this engine")
        self.key_input.setEchoMode(QLineEdit.EchoMode.Password)
        self.forget_key_button = QPushButton("Forget key")
        decorate(self.forget_key_button, "delete")
        self.forget_key_button.setObjectName("endpointForgetKeyButton")
        set_description(self.forget_key_button, "Delete this engine's API key from the keyring")
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
        decorate(self.test_button, "test")
        self.test_button.setObjectName("endpointTestButton")
        set_description(self.test_button, "Connect to the engine and list its models")
        self.save_button = QPushButton("Add")
        decorate(self.save_button, "save")
        self.save_button.setObjectName("endpointSaveButton")
        set_description(self.save_button, "Save this engine")
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

    def _color(self, kind: str) -> str:
        light, dark = COLORS[kind]
        return dark if is_dark(self.palette()) else light

    def say(self, text: str, kind: str | None = None) -> None:
        """Show `text` under the form, coloured for "ok", "error" or "warn"."""
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {self._color(kind)};" if kind else "")

    def show_store(self, secure: bool) -> None:
        """Say where API keys are kept: the system keyring, or (without one) this session only."""
        if secure:
            self.store_label.setText("API keys are kept in the system keyring, never in Fireside's files.")
            self.store_label.setStyleSheet("")
        else:
            self.store_label.setText(
                "No secure keyring is available on this system: an API key you enter is kept for this "
                "session only (never written to a file), so you will enter it again after restarting."
            )
            self.store_label.setStyleSheet(f"color: {self._color('warn')};")

    def clear(self) -> None:
        """Empty the form for a new endpoint."""
        for box in (self.name_input, self.url_input, self.key_input):
            box.clear()
        self.key_input.setPlaceholderText("Optional: only if the server asks for one")
        self.forget_key_button.setEnabled(False)
        self.save_button.setText("Add")
        self.say("")
        self.url_input.setFocus()

    def show_endpoint(self, config: EndpointConfig) -> None:
        """Fill the form with a saved endpoint; its key stays unshown ("Checking…" until show_key)."""
        self.name_input.setText(config.name)
        self.url_input.setText(config.base_url)
        self.key_input.clear()
        self.key_input.setPlaceholderText("Checking…")
        self.forget_key_button.setEnabled(False)
        self.save_button.setText("Save")

    def show_key(self, has: bool) -> None:
        """Say whether the endpoint shown has a saved key (it can then be forgotten)."""
        self.key_input.setPlaceholderText(
            "Saved — type a new key to replace it" if has else "Optional (none saved)"
        )
        self.forget_key_button.setEnabled(has)

    def typed(self) -> EndpointConfig | None:
        """The form as an endpoint, or None (and a message) when the URL is not usable."""
        try:
            url = normalize_base_url(self.url_input.text())
        except ValueError as exc:
            self.say(str(exc), "error")
            self.url_input.setFocus()
            return None
        name = self.name_input.text().strip() or default_name(url)
        return EndpointConfig(name, url)

    def typed_key(self) -> str:
        """The API key typed (empty: none)."""
        return self.key_input.text().strip()

    def show_listed(self, listed: EndpointModels) -> None:
        """Say how listing an endpoint's models went."""
        if listed.error is not None:
            self.say(listed.error, "error")
        elif not listed.models:
            self.say(f"Connected to {listed.endpoint.base_url}, but it lists no models.", "warn")
        else:
            count = len(listed.models)
            self.say(f"Connected: {count} model{'s' if count != 1 else ''} — {list_of(listed.models)}.", "ok")
