"""Keeps the engine's speculative decoding as the settings say: sent to the inference thread at
start-up (before the first load, so a draft model opens with it) and whenever the user changes it in
the drawer; the panel then says what the engine uses, or why not."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from app.core.inference.events import Event, SpeculationSet
from app.core.inference.options import LoadedModel
from app.core.models.library import ModelEntry
from app.core.settings import Settings
from app.core.values.speculation import SpeculationMode
from app.ui.inference.bridge import InferenceBridge
from app.ui.inference.speculation_panel import SpeculationPanel


class SpeculationControl(QObject):
    """Connects the speculation panel, the settings and the inference thread."""

    def __init__(
        self,
        panel: SpeculationPanel,
        settings: Settings,
        bridge: InferenceBridge,
        save: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._panel, self._settings, self._bridge, self._save = panel, settings, bridge, save
        self._entries: list[ModelEntry] = []
        self._loaded: LoadedModel | None = None
        used = settings.draft_model if settings.speculative == SpeculationMode.AUTO.value else None
        self._asked = bridge.worker.set_speculation(settings.speculative, used)
        panel.changed.connect(self._on_changed)
        bridge.happened.connect(self._on_event)

    def set_entries(self, entries: list[ModelEntry]) -> None:
        """The installed models changed: offer those that can draft for the loaded model."""
        self._entries = list(entries)
        self._offer()

    def set_loaded(self, model: LoadedModel | None) -> None:
        """A model was loaded (or unloaded): offer its draft models and say which one drafts."""
        self._loaded = model
        self._offer()
        if model is not None:
            self._panel.show_result(model.draft_model, model.draft_note)

    def _offer(self) -> None:
        infos = [entry.info for entry in self._entries if entry.info is not None]
        self._panel.set_candidates(self._loaded.info if self._loaded is not None else None, infos)

    def _on_changed(self, mode: str, draft: str | None) -> None:
        self._settings.speculative = mode
        self._settings.draft_model = draft  # kept while speculation is off or n-gram only
        self._save()
        used = draft if mode == SpeculationMode.AUTO.value else None
        self._asked = self._bridge.worker.set_speculation(mode, used)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, SpeculationSet) and event.request_id == self._asked:
            self._panel.show_result(event.draft.path if event.draft is not None else None, event.message)
