"""The window's MCP tools: the servers from the settings, their tools as listed, the chat session's
runner, and the tools the open conversation lets the model use.

Every server's work runs on the toolbox's own event-loop thread; answers come back to the GUI thread
through a queued signal. Secret environment values go to the keyring (off the GUI thread), never
to the settings file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from app.core.chat.events import Opened, SessionEvent
from app.core.chat.session import ChatSession
from app.core.platform import secrets
from app.core.settings import Settings
from app.core.tools.mcp_client import McpTool
from app.core.tools.mcp_config import McpServerConfig
from app.core.tools.toolbox import Listing, Toolbox, ToolboxRunner
from app.ui.common.tasks import BackgroundTasks

log = logging.getLogger(__name__)


class _ToGui(QObject):
    """Runs callables sent from any thread on the GUI thread (a queued signal does the hop)."""

    call = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.call.connect(lambda work: work())


class ToolsController(QObject):
    """MCP servers, their tools, and the open conversation's choice of them."""

    #: The servers' tools were listed again (or a server's listing failed).
    listed = Signal()
    #: The servers themselves changed (added, edited, removed).
    serversChanged = Signal()

    def __init__(self, settings: Settings, session: ChatSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.session = session
        self.tasks = BackgroundTasks(self)
        configs = [McpServerConfig.from_dict(data) for data in settings.mcp_servers]
        self.toolbox = Toolbox([c for c in configs if c is not None])
        self._gui = _ToGui(self)
        session.runner = ToolboxRunner(self.toolbox, self._gui.call.emit, self._remember)
        #: The last listing of each server.
        self.listings: dict[str, Listing] = {}
        self._closed = False
        #: Counts the listings asked for: only the latest one's answer is shown.
        self._listing = 0
        session.listen(self._on_session)

    def _on_session(self, event: SessionEvent) -> None:
        if isinstance(event, Opened):  # another conversation: its own choice of tools
            self.apply_choice()
            self.listed.emit()

    # ----- tools ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """List every enabled server's tools again."""
        self._listing += 1
        ticket = self._listing
        if self.toolbox.configs:
            self.toolbox.list_tools(
                lambda listings: self._gui.call.emit(lambda: self._on_listed(listings, ticket))
            )
        else:
            self._on_listed([], ticket)

    def _on_listed(self, listings: list[Listing], ticket: int) -> None:
        if self._closed or ticket != self._listing:  # a newer listing (the servers changed) is coming
            return
        self.listings = {listing.server: listing for listing in listings}
        self.apply_choice()
        self.listed.emit()

    def available(self) -> list[McpTool]:
        """Every tool listed, server by server."""
        return [tool for listing in self.listings.values() for tool in listing.tools]

    def apply_choice(self) -> None:
        """Offer the open conversation's chosen tools that are available now."""
        chosen = set(self.session.tool_names)
        self.session.tools = [tool.spec for tool in self.available() if tool.spec.name in chosen]

    def choose(self, name: str, on: bool) -> None:
        """Let the open conversation's model use tool `name`, or not (saved with the conversation)."""
        names = [n for n in self.session.tool_names if n != name] + ([name] if on else [])
        self.session.tool_names = tuple(names)
        self.apply_choice()
        self.session.save_settings()

    def require(self, on: bool) -> None:
        """The replies of the open conversation must call a tool, or not."""
        self.session.require_tool = on
        self.session.save_settings()

    # ----- servers ----------------------------------------------------------------------------

    def save_server(
        self,
        config: McpServerConfig,
        secret_values: dict[str, str],
        replacing: str | None,
        done: Callable[[str], None],
    ) -> None:
        """Add or change a server (`replacing`: the name it had); secret values go to the keyring
        first. `done` gets "" or what went wrong, in words."""

        def store() -> bool:
            kept = True
            for variable, value in secret_values.items():
                kept = secrets.set_secret(config.secret_name(variable), value) and kept
            return kept

        def stored(kept: bool) -> None:
            servers = [c for c in self.toolbox.configs if c.name not in (config.name, replacing)]
            self._set_servers([*servers, config])
            done(
                ""
                if kept
                else "Saved, but no secure keyring is available: secret values last until Fireside closes."
            )

        self.tasks.run(store, stored, lambda exc: done(f"The keyring refused the secret: {exc}"))

    def remove_server(self, name: str) -> None:
        """Remove a server and forget its secrets."""
        config = next((c for c in self.toolbox.configs if c.name == name), None)
        if config is None:
            return
        self._set_servers([c for c in self.toolbox.configs if c.name != name])
        self.listings.pop(name, None)
        self.apply_choice()
        self.listed.emit()
        self.tasks.run(
            lambda: [secrets.set_secret(config.secret_name(v), None) for v in config.secret_env],
            lambda _r: None,
        )

    def test_server(
        self, config: McpServerConfig, secret_values: dict[str, str], done: Callable[[Listing], None]
    ) -> None:
        """Start (or reach) a server as set in the form, list its tools, disconnect."""
        if secret_values:  # typed but not saved yet: tested with the values as typed
            config = replace(
                config,
                env=config.env + tuple(secret_values.items()),
                secret_env=tuple(v for v in config.secret_env if v not in secret_values),
            )
        self.toolbox.test(config, lambda listing: self._gui.call.emit(lambda: done(listing)))

    def _set_servers(self, configs: list[McpServerConfig]) -> None:
        self.toolbox.configure(configs)
        self._persist()
        self.serversChanged.emit()
        self.refresh()

    def _remember(self, changed: McpServerConfig) -> None:
        """ "Always allow this tool" changed a server's settings: save them."""
        self._persist()
        self.serversChanged.emit()

    def _persist(self) -> None:
        self.settings.mcp_servers = [c.to_dict() for c in self.toolbox.configs]
        try:
            self.settings.save()
        except OSError as exc:
            log.warning("settings could not be saved: %s", exc)

    def close(self) -> None:
        """Disconnect every server (the window is closing)."""
        self._closed = True
        self.tasks.shutdown(wait=False)
        self.toolbox.close()
