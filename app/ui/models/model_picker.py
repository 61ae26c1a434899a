"""The model picker: installed models with name, quantization, size and context length from the GGUF,
then the remote engines' models, below a separator and marked remote."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QSizePolicy, QWidget

from app.core.models.estimate import describe as describe_estimate
from app.core.models.estimate import fit_model
from app.core.models.library import ModelEntry
from app.core.remote.endpoints import EndpointModels, model_key
from app.core.system.machine import Machine, total_ram
from app.core.values.units import format_params, format_size
from app.ui.common.accessible import set_description

PathRole = Qt.ItemDataRole.UserRole + 1
#: A remote model's key (app.core.endpoints.model_key) on its row.
RemoteRole = Qt.ItemDataRole.UserRole + 2
#: The base URL on the one row of an endpoint that lists no models (unreachable, refused...).
EndpointRole = Qt.ItemDataRole.UserRole + 3


def describe(entry: ModelEntry, name: str | None = None) -> str:
    """'SmolLM2 135M Instruct · Q4_1 · 98.4 MB · 8,192 ctx', or the file name and its problem.

    `name` replaces the file name where it means nothing to people (Ollama's blobs are named by hash)."""
    info = entry.info
    if info is None:
        return f"{name or entry.path.name} — cannot be used"
    ctx = f"{info.context_length:,} ctx" if info.context_length else "ctx unknown"
    params = format_params(info.parameter_count)
    size = format_size(info.file_size)
    return f"{name or entry.path.stem} · {params} {info.architecture} · {info.quantization} · {size} · {ctx}"


#: The one-row summary of why an endpoint shows no models (RemoteError kinds, and "pending").
PROBLEMS = {
    "pending": "listing models…",
    "unreachable": "unreachable",
    "auth": "API key refused",
    "not_found": "no model list at this URL",
    "rate_limited": "rate limited",
    "": "no models",
}


def describe_remote(model: str, endpoint_label: str) -> str:
    """'llama3.1:8b · Ollama (remote)'."""
    return f"{model} · {endpoint_label} (remote)"


class ModelPicker(QComboBox):
    """Lists ModelEntry rows, then remote models; `modelChosen(path)` fires when the user picks a usable
    local model, `remoteChosen(key)` when they pick a remote one."""

    modelChosen = Signal(str)
    remoteChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelPicker")
        set_description(self, "The model chat goes to: installed models, then remote engines' models")
        self.setAccessibleName("Model")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(28)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setPlaceholderText("No models installed")
        self.entries: list[ModelEntry] = []
        #: Friendly names by resolved path, for files whose own name is a hash (set by the window).
        self.names: dict[str, str] = {}
        #: What the fit line in each tooltip is judged against (RAM only until GPUs are known).
        self.machine = Machine(ram_total=total_ram())
        self.context_length = 4096
        #: "Parallel replies" (0: Auto): every reply at once has a KV cache of its own.
        self.parallel = 0
        #: The remote engines' model lists, shown after the local models.
        self.remote: list[EndpointModels] = []
        self.activated.connect(self._on_activated)

    def set_names(self, names: dict[str, str]) -> None:
        """Friendly names for files whose own name says little (another app's blob); shown at once."""
        self.names = names
        self.set_entries(self.entries, self.current_path())

    def set_machine(self, machine: Machine, context_length: int, parallel: int | None = None) -> None:
        """Judge the fit lines against `machine` at `context_length` tokens (and `parallel` replies at
        once, 0: Auto; None: as before)."""
        self.machine, self.context_length = machine, context_length
        if parallel is not None:
            self.parallel = parallel
        for row, entry in enumerate(self.entries):
            if entry.info is not None:
                self.setItemData(row, self._tooltip(entry), Qt.ItemDataRole.ToolTipRole)

    def set_entries(self, entries: list[ModelEntry], current: str | None = None) -> None:
        """Replace the local models, keeping `current` (a path or a remote key) selected when present."""
        self.blockSignals(True)
        self.clear()
        # An embedding model searches documents; it cannot chat, so it is not offered for chat.
        self.entries = [e for e in entries if e.info is None or not e.info.is_embedding_model]
        for entry in self.entries:
            self.addItem(describe(entry, self.names.get(str(entry.path))))
            row = self.count() - 1
            self.setItemData(row, str(entry.path), PathRole)
            tip = entry.error or self._tooltip(entry)
            self.setItemData(row, tip, Qt.ItemDataRole.ToolTipRole)
            if entry.info is None:
                item = self.model().item(row)  # type: ignore[attr-defined]
                item.setEnabled(False)
        self._add_remote_rows()
        self.select_path(current)
        self.blockSignals(False)

    def set_remote(self, lists: list[EndpointModels]) -> None:
        """Replace the remote models (one disabled row, with the reason as its tooltip, for an endpoint
        that could not list them), keeping the current choice."""
        self.blockSignals(True)
        current = self.current_choice()
        while self.count() > len(self.entries):
            self.removeItem(self.count() - 1)
        self.remote = list(lists)
        self._add_remote_rows()
        self.select_path(current)
        self.blockSignals(False)

    def _add_remote_rows(self) -> None:
        if not self.remote:
            return
        if self.entries:
            self.insertSeparator(self.count())
        for listed in self.remote:
            endpoint = listed.endpoint
            if listed.error is not None or not listed.models:
                self.addItem(f"{endpoint.name} — {PROBLEMS.get(listed.kind or '', 'not available')} (remote)")
                row = self.count() - 1
                if listed.kind == "pending":
                    reason = "Asking the server for its models…"
                else:
                    reason = listed.error or "The server lists no models."
                self.setItemData(
                    row, f"{endpoint.name}\n{endpoint.base_url}\n{reason}", Qt.ItemDataRole.ToolTipRole
                )
                self.setItemData(row, endpoint.base_url, EndpointRole)
                self.model().item(row).setEnabled(False)  # type: ignore[attr-defined]
                continue
            for model in listed.models:
                self.addItem(describe_remote(model, endpoint.name))
                row = self.count() - 1
                self.setItemData(row, model_key(endpoint.base_url, model), RemoteRole)
                self.setItemData(
                    row,
                    f"{model}\nRemote engine: {endpoint.name}\n{endpoint.base_url}\n"
                    "Replies are generated by that server; nothing is loaded on this computer.",
                    Qt.ItemDataRole.ToolTipRole,
                )

    def remote_keys(self) -> list[str]:
        """The keys of the remote models listed now."""
        return [str(k) for row in range(self.count()) if (k := self.itemData(row, RemoteRole))]

    def _tooltip(self, entry: ModelEntry) -> str:
        info = entry.info
        assert info is not None
        template = "its own chat template" if info.has_chat_template else "no chat template (ChatML is used)"
        badge, est = fit_model(
            info.file_size, info.shape, self.context_length, self.machine, self.parallel, entry.projector_size
        )
        return (
            f"{info.name}\n{info.path}\n{info.block_count or '?'} layers · {template}\n"
            f"{badge.label}: {describe_estimate(est)}"
        )

    def select_path(self, path: str | None) -> None:
        """Show `path` (a local model's path, or a remote model's key) as the current item (no signal)."""
        if path is None:
            self.setCurrentIndex(-1)
            return
        for row in range(len(self.entries), self.count()):
            if self.itemData(row, RemoteRole) == path:
                self.setCurrentIndex(row)
                return
        for row in range(len(self.entries), self.count()):
            # The chosen remote model's endpoint is not answering: show that, not another model.
            url = self.itemData(row, EndpointRole)
            if url and path.startswith(f"{url}/models/"):
                self.setCurrentIndex(row)
                return
        wanted = str(Path(path).resolve())
        for row in range(self.count()):
            if self.itemData(row, PathRole) == wanted:
                self.setCurrentIndex(row)
                return

    def current_path(self) -> str | None:
        """Path of the selected model."""
        data = self.currentData(PathRole)
        return str(data) if data else None

    def current_choice(self) -> str | None:
        """The selected local model's path or remote model's key."""
        data = self.currentData(PathRole) or self.currentData(RemoteRole)
        return str(data) if data else None

    def _on_activated(self, row: int) -> None:
        key = self.itemData(row, RemoteRole)
        if key:
            self.remoteChosen.emit(str(key))
            return
        path = self.itemData(row, PathRole)
        entry = self.entries[row] if 0 <= row < len(self.entries) else None
        if path and entry is not None and entry.info is not None:
            self.modelChosen.emit(str(path))
