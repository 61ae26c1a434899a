"""Preferences: the Hugging Face access token, kept in the system keyring and nowhere else; the
conversations' KV cache on disk (its size, its cap, Clear); and the way to the remote engines and to
the MCP servers."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.inference.kv_disk import KvDiskCache
from app.core.platform import secrets
from app.core.values.units import format_size
from app.ui.common.accessible import describe_buttons, set_description
from app.ui.common.icons import decorate
from app.ui.common.tasks import BackgroundTasks


class PreferencesDialog(QDialog):
    """Enter, replace or remove the Hugging Face token.

    Keyring calls can block (a locked Secret Service asks to be unlocked), so they run on `tasks`.
    `changed` fires once a save or removal has reached the keyring."""

    changed = Signal()
    #: "Remote engines…" was clicked (the window opens that dialog; this one closes).
    remoteEnginesRequested = Signal()
    #: "Tools (MCP servers)…" was clicked (the window opens that dialog; this one closes).
    toolsRequested = Signal()
    #: Saved with another cap for the KV cache on disk (in MB).
    cacheCapChanged = Signal(int)

    def __init__(
        self, tasks: BackgroundTasks, parent: QWidget | None = None, kv_cache: KvDiskCache | None = None
    ) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.kv_cache = kv_cache
        self.setObjectName("preferencesDialog")
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "A Hugging Face access token lets Fireside download gated and private models. "
            "Create a read token at huggingface.co → Settings → Access Tokens, and accept each gated "
            "model's license on its page."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        row = QHBoxLayout()
        self.token_input = QLineEdit()
        self.token_input.setObjectName("hfTokenInput")
        self.token_input.setAccessibleName("Hugging Face access token")
        self.token_input.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_input.setPlaceholderText("hf_…")
        self.remove_button = QPushButton("Remove")
        decorate(self.remove_button, "delete")
        self.remove_button.setObjectName("hfTokenRemoveButton")
        set_description(self.remove_button, "Remove the Hugging Face token from the keyring")
        self.remove_button.clicked.connect(self.remove_token)
        row.addWidget(self.token_input, 1)
        row.addWidget(self.remove_button)
        form.addRow("Access token", row)
        layout.addLayout(form)
        self.store_label = QLabel()
        self.store_label.setObjectName("hfTokenStore")
        self.store_label.setWordWrap(True)
        layout.addWidget(self.store_label)
        self.message = QLabel("")
        self.message.setObjectName("hfTokenMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()  # shown with a message only: empty, it would leave a gap
        layout.addWidget(self.message)
        self.remote_button = self._other_dialog(
            layout,
            "Remote engines: chat with models on OpenAI-compatible servers (vLLM, a llama.cpp server, "
            "Ollama, LM Studio, a hosted API). Their API keys are kept in the keyring too.",
            ("Remote engines…", "remote", "preferencesRemoteButton"),
            "Add or change the OpenAI-compatible servers chat can use",
            self.remoteEnginesRequested,
        )
        self.tools_button = self._other_dialog(
            layout,
            "Tools (MCP servers): give the model tools it may ask to use in a chat (files, search, your "
            "own programs); every call waits for your yes. Secret values are kept in the keyring.",
            ("Tools (MCP servers)…", "tools", "preferencesToolsButton"),
            "Add, test or remove the MCP servers whose tools chat can use",
            self.toolsRequested,
        )
        if kv_cache is not None:
            layout.addSpacing(8)
            layout.addLayout(self._cache_section(kv_cache))
        self.buttons = buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        describe_buttons(buttons)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.store_label.setText("Checking the keyring…")
        self.remove_button.setEnabled(False)
        self._refresh()

    def _say(self, text: str) -> None:
        """Show `text` under the token (hidden when there is nothing to say)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _cache_section(self, kv_cache: KvDiskCache) -> QVBoxLayout:
        section = QVBoxLayout()
        text = QLabel(
            "Conversation memory: each conversation's KV cache (what the model has read of it) is kept on "
            "disk when it must leave memory, so reopening it, even after a restart, reads only the new "
            "message. The oldest go first when the cap is reached."
        )
        text.setWordWrap(True)
        section.addWidget(text)
        row = QHBoxLayout()
        self.cache_cap = QDoubleSpinBox()
        self.cache_cap.setObjectName("kvCacheCap")
        self.cache_cap.setAccessibleName("Most the saved KV caches may take on disk")
        self.cache_cap.setRange(0.0, 1000.0)
        self.cache_cap.setSingleStep(0.5)
        self.cache_cap.setDecimals(1)
        self.cache_cap.setSuffix(" GB")
        self.cache_cap.setSpecialValueText("Off")
        self.cache_cap.setValue(kv_cache.cap_bytes / 1e9)
        self.cache_cap.setToolTip("The most the saved KV caches may take on disk (Off: keep none)")
        self.cache_size = QLabel("Measuring…")
        self.cache_size.setObjectName("kvCacheSize")
        self.cache_clear = QPushButton("Clear")
        decorate(self.cache_clear, "delete")
        self.cache_clear.setObjectName("kvCacheClearButton")
        self.cache_clear.setToolTip(
            "Delete every saved KV cache (conversations are kept: they are read again)"
        )
        self.cache_clear.clicked.connect(self.clear_cache)
        row.addWidget(QLabel("At most"))
        row.addWidget(self.cache_cap)
        row.addWidget(self.cache_size, 1)
        row.addWidget(self.cache_clear)
        section.addLayout(row)
        self.tasks.run(kv_cache.size, self._show_cache_size)
        return section

    def _show_cache_size(self, size: int) -> None:
        self.cache_size.setText(f"{format_size(size)} used" if size else "Empty")
        self.cache_clear.setEnabled(size > 0)

    def clear_cache(self) -> None:
        """Delete every saved KV cache (off the GUI thread), then show the size again."""
        kv_cache = self.kv_cache
        if kv_cache is None:
            return
        self.cache_clear.setEnabled(False)
        self.cache_size.setText("Clearing…")

        def cleared(_freed: int) -> None:
            self.tasks.run(kv_cache.size, self._show_cache_size)

        self.tasks.run(kv_cache.clear, cleared)

    def _other_dialog(
        self,
        layout: QVBoxLayout,
        text: str,
        button: tuple[str, str, str],
        description: str,
        requested: SignalInstance,
    ) -> QPushButton:
        """A line about another dialog and the button that opens it (this one closes first)."""
        row = QHBoxLayout()
        label = QLabel(text)
        label.setWordWrap(True)
        words, icon_name, name = button
        opener = QPushButton(words)
        decorate(opener, icon_name)
        opener.setObjectName(name)
        set_description(opener, description)

        def open_it() -> None:
            self.reject()  # one dialog at a time; a typed but unsaved token is not kept
            requested.emit()

        opener.clicked.connect(open_it)
        row.addWidget(label, 1)
        row.addWidget(opener, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addSpacing(8)
        layout.addLayout(row)
        return opener

    def _refresh(self) -> None:
        def read() -> tuple[bool, str, bool]:
            return bool(secrets.hf_token()), secrets.store_kind(), secrets.has_secure_store()

        self.tasks.run(read, self._show_store)

    def _show_store(self, state: tuple[bool, str, bool]) -> None:
        has, kind, secure = state
        self.store_label.setText(("A token is set. " if has else "No token is set. ") + kind)
        self.store_label.setStyleSheet("" if secure else "color: #bf8700;")
        self.remove_button.setEnabled(has)

    def save(self) -> bool:
        """Check the typed token's shape, then store it off the GUI thread (the dialog closes once the
        keyring has it). False when the text is not a token."""
        if self.kv_cache is not None:
            cap_mb = round(self.cache_cap.value() * 1000)
            if cap_mb != round(self.kv_cache.cap_bytes / 1e6):
                self.cacheCapChanged.emit(cap_mb)
        value = self.token_input.text().strip()
        if not value:
            self.accept()
            return True
        if not secrets.looks_like_hf_token(value):
            self._say(
                "That does not look like a Hugging Face token: tokens start with “hf_” followed by letters "
                "and digits. Copy it again from huggingface.co → Settings → Access Tokens."
            )
            return False
        self.token_input.clear()
        self._say("Saving…")
        self._busy(True)
        self.tasks.run(lambda: secrets.set_secret(secrets.HF_TOKEN, value), self._on_saved)
        return True

    def _busy(self, busy: bool) -> None:
        # One keyring call at a time from this dialog: a quick Remove-then-Save must not race.
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(not busy)
        self.remove_button.setEnabled(not busy and self.remove_button.isEnabled())

    def _on_saved(self, kept: bool) -> None:
        self._busy(False)
        self.changed.emit()
        if kept:
            self._say("")
            self.accept()
            return
        self._say(
            "Saved for this session only: no secure keyring is available, and Fireside does not "
            "write tokens to files. You will need to enter it again after restarting."
        )
        self._refresh()

    def remove_token(self) -> None:
        """Forget the token."""

        def removed(_kept: bool) -> None:
            self._busy(False)
            self.changed.emit()
            self._say("The token was removed.")
            self._refresh()

        self._busy(True)
        self.tasks.run(lambda: secrets.set_secret(secrets.HF_TOKEN, None), removed)
