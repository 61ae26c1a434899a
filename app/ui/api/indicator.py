"""The API server in the status bar: its state ("on · :8765"), or what it is doing ("1 request
generating, 2 waiting"); its settings saved when they change; a failure said in the banner."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from app.core.settings import Settings
from app.ui.api.controller import ServerController, ServerState, activity_text
from app.ui.common.banner import Banner
from app.ui.common.status_bar import StatusBar


class ServerIndicator(QObject):
    """Keeps the status bar's server indicator and the saved server settings up to date."""

    def __init__(
        self,
        server: ServerController,
        settings: Settings,
        status: StatusBar,
        banner: Banner,
        save: Callable[[], None],
        open_panel: Callable[[], object],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.server, self.settings, self.status, self.banner = server, settings, status, banner
        self.save, self.open_panel = save, open_panel
        #: Failures are said in the banner once the window has started (not while it is being built).
        self.started = False
        server.stateChanged.connect(self._on_state)
        server.settingsChanged.connect(self._on_settings)
        server.activityChanged.connect(self._on_activity)

    def _on_state(self, value: str, message: str) -> None:
        state = ServerState(value)  # the signal carries the member's string
        if self.settings.api_server != self.server.settings:  # switched on or off, a new port…
            self._on_settings()
        port = self.server.settings.port
        text = {
            ServerState.RUNNING: f"API server: on · :{port}",
            ServerState.STARTING: "API server: starting…",
            ServerState.STOPPING: "API server: stopping…",
            ServerState.ERROR: "API server: failed",
        }.get(state, "API server: off")
        self.status.show_server(text, message)
        if state == ServerState.ERROR and self.started:
            self.banner.show_message(message, action=("Local API server…", self.open_panel))

    def _on_settings(self) -> None:
        self.settings.api_server = self.server.settings
        self.save()

    def _on_activity(self, generating: int, waiting: int) -> None:
        busy = activity_text(generating, waiting)
        if busy:
            self.status.show_server(busy)
        else:
            self._on_state(self.server.state, self.server.message)
