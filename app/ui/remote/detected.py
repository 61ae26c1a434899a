"""The "Running on this computer" part of the "Remote engines" dialog: local servers found on their
usual ports (Ollama, LM Studio, a llama.cpp server, ...), each with a button that adds it."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.remote.client import KNOWN_LOCAL_ENGINES, Endpoint
from app.core.remote.endpoints import EndpointConfig
from app.ui.common.accessible import set_description
from app.ui.common.icons import decorate
from app.ui.remote.controller import RemoteEngines
from app.ui.remote.endpoint_form import list_of


class DetectedEngines(QWidget):
    """Looks for local servers (off the GUI thread) and lists those that answer, each with "Add"."""

    def __init__(
        self, engines: RemoteEngines, say: Callable[[str, str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.engines = engines
        #: Shows the outcome of an "Add" (text, "ok" | "error") where the dialog shows its messages.
        self._say = say
        self._rows: list[QWidget] = []
        self._round = 0
        self.setObjectName("detectedEngines")
        self.rows_layout = QVBoxLayout(self)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        status_row = QHBoxLayout()
        self.status = QLabel("")
        self.status.setObjectName("detectedStatus")
        self.status.setWordWrap(True)
        self.detect_button = QPushButton("Look again")
        decorate(self.detect_button, "search")
        self.detect_button.setObjectName("detectAgainButton")
        set_description(self.detect_button, "Look for engines running on this computer again")
        self.detect_button.clicked.connect(self.detect)
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.detect_button)
        self.rows_layout.addLayout(status_row)

    def detect(self) -> None:
        """Look again: the servers listed go, and those that answer now are listed."""
        for line in self._rows:
            line.deleteLater()
        self._rows.clear()
        self._round += 1
        round_ = self._round
        candidates = self.engines.detect_candidates or KNOWN_LOCAL_ENGINES
        names = ", ".join(f"{name} (port {urlsplit(url).port})" for name, url in candidates.items())
        self.status.setText(f"Looking for {names}…")
        self.detect_button.setEnabled(False)
        self.engines.detect(lambda found: self._show(found, names, round_))

    def _show(self, found: list[tuple[Endpoint, list[str]]], names: str, round_: int) -> None:
        if round_ != self._round:
            return  # the dialog was opened again meanwhile
        self.detect_button.setEnabled(True)
        if not found:
            self.status.setText(f"Nothing answers on the usual ports of {names}.")
            return
        self.status.setText("Add one to use its models:")
        for endpoint, models in found:
            line = QWidget()
            row = QHBoxLayout(line)
            row.setContentsMargins(0, 0, 0, 0)
            count = len(models)
            label = QLabel(
                f"<b>{endpoint.name}</b> · {endpoint.base_url} · {count} model{'s' if count != 1 else ''}"
            )
            label.setToolTip(list_of(models, 20))
            button = QPushButton("Add")
            decorate(button, "add")
            button.setObjectName("detectedAddButton")
            button.setProperty("base_url", endpoint.base_url)
            button.clicked.connect(lambda _c=False, e=endpoint: self._add(e))
            row.addWidget(label, 1)
            row.addWidget(button)
            self.rows_layout.addWidget(line)
            self._rows.append(line)
        self.refresh_buttons()

    def refresh_buttons(self) -> None:
        """Mark the servers already among the endpoints "Added" (after the list changed)."""
        for button in self.findChildren(QPushButton, "detectedAddButton"):
            added = self.engines.find(str(button.property("base_url"))) is not None
            button.setEnabled(not added)
            button.setText("Added" if added else "Add")

    def _add(self, endpoint: Endpoint) -> None:
        if self.engines.find(endpoint.base_url) is not None:
            return
        config = EndpointConfig(endpoint.name, endpoint.base_url)

        def added(_kept: bool) -> None:
            self.refresh_buttons()
            self._say(f"Added “{config.name}”. Its models are in the model picker.", "ok")

        self.engines.save_endpoint(
            config, None, None, added, lambda e: self._say(f"Could not add: {e}", "error")
        )
