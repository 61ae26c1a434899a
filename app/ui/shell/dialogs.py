"""The window's dialogs, each opened once and reused: the API server, remote engines, preferences, About."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QWidget

from app.core.inference.kv_disk import KvDiskCache
from app.core.settings import Settings
from app.ui.api.controller import ServerController
from app.ui.api.dialog import ServerDialog
from app.ui.common.dialog_fit import FitsItsText
from app.ui.hub.controller import HubController
from app.ui.models.controller import ModelsController
from app.ui.remote.controller import RemoteEngines
from app.ui.remote.dialog import RemoteEnginesDialog
from app.ui.shell.about_dialog import AboutDialog
from app.ui.shell.preferences import PreferencesDialog
from app.ui.shell.shortcuts import ShortcutsDialog
from app.ui.tools.controller import ToolsController
from app.ui.tools.servers_dialog import McpServersDialog

#: The dialogs are at least this many characters wide, so their text wraps in few lines.
DIALOG_CHARS = 72


class Dialogs:
    """Opens the window's dialogs with what each needs."""

    def __init__(
        self,
        window: QWidget,
        server: ServerController,
        remote: RemoteEngines,
        hub: HubController,
        models: ModelsController,
        settings: Settings,
        save: Callable[[], None],
        kv_cache: KvDiskCache | None = None,
        tools: ToolsController | None = None,
    ) -> None:
        self.window, self.server, self.remote, self.hub, self.models = window, server, remote, hub, models
        self.tools = tools
        self.settings, self.save = settings, save
        #: The conversations' KV cache on disk (its cap is set in Preferences).
        self.kv_cache = kv_cache

    def server_panel(self) -> ServerDialog:
        """The Local API server dialog (one per window)."""
        dialog = self.window.findChild(ServerDialog, "serverDialog")
        if dialog is None:
            dialog = ServerDialog(self.server, self.window)
            FitsItsText(dialog, DIALOG_CHARS)
        dialog.open()
        return dialog

    def remote_engines(self) -> RemoteEnginesDialog:
        """The Remote engines dialog (one per window, refreshed each time it opens)."""
        dialog = self.window.findChild(RemoteEnginesDialog, "remoteEnginesDialog")
        if dialog is None:
            dialog = RemoteEnginesDialog(self.remote, self.window)
            FitsItsText(dialog, DIALOG_CHARS)
        else:
            dialog.reopen()
        dialog.open()
        return dialog

    def preferences(self) -> PreferencesDialog:
        """The preferences (non-modal to the event loop; the token is read again when it closes)."""
        dialog = PreferencesDialog(self.hub.keyring_tasks, self.window, self.kv_cache)
        FitsItsText(dialog, DIALOG_CHARS)
        dialog.cacheCapChanged.connect(self._set_cache_cap)
        dialog.changed.connect(self.hub.reload_token)
        dialog.finished.connect(lambda _r: self.hub.reload_token())
        dialog.remoteEnginesRequested.connect(self.remote_engines)
        dialog.toolsRequested.connect(self.mcp_servers)
        dialog.open()
        return dialog

    def mcp_servers(self) -> McpServersDialog | None:
        """Preferences → Tools (MCP servers) (one per window)."""
        if self.tools is None:
            return None
        dialog = self.window.findChild(McpServersDialog, "mcpServersDialog")
        if dialog is None:
            dialog = McpServersDialog(self.tools, self.window)
            FitsItsText(dialog, DIALOG_CHARS)
        dialog.open()
        return dialog

    def _set_cache_cap(self, megabytes: int) -> None:
        self.settings.kv_cache_mb = megabytes
        self.save()
        if self.kv_cache is not None:
            self.kv_cache.cap_bytes = megabytes * 1_000_000
            self.hub.keyring_tasks.run(self.kv_cache.enforce_cap, lambda _r: None)  # file work: off the GUI

    def shortcuts(self) -> ShortcutsDialog:
        """Help → Keyboard shortcuts (one per window)."""
        dialog = self.window.findChild(ShortcutsDialog, "shortcutsDialog")
        if dialog is None:
            dialog = ShortcutsDialog(self.window)
            FitsItsText(dialog, DIALOG_CHARS)
        dialog.open()
        return dialog

    def about(self) -> AboutDialog:
        """The About dialog: versions and folders."""
        dialog = AboutDialog(str(self.models.models_folder()), self.window)
        FitsItsText(dialog, DIALOG_CHARS)
        dialog.open()
        return dialog
