"""The server panel's "Models by name" part: the memory budget, the idle time, the models loaded for
requests now, and the aliases (added and changed in AliasDialog). It only shows and edits; the
ServerController keeps the settings and hands them to the running server."""

from __future__ import annotations

import math
from dataclasses import replace

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.api.aliases import Alias
from app.core.api.config import MAX_IDLE_UNLOAD_S
from app.core.values.units import rough_size
from app.ui.api.alias_dialog import AliasDialog
from app.ui.api.controller import ServerController
from app.ui.common.accessible import set_description
from app.ui.common.icons import decorate


def loaded_text(controller: ServerController) -> str:
    """'Loaded for requests: A (310 MB, unloads in 4 min)…', or why none is."""
    entries = [e for e in controller.pool_entries() if not e.primary]
    if not entries:
        return "No other model is loaded for requests now."
    parts = []
    for entry in entries:
        if entry.loading:
            when = "loading"
        elif entry.users:
            when = f"{entry.users} request{'s' if entry.users > 1 else ''}"
        elif entry.unload_in_s is None:
            when = "stays loaded"
        else:
            when = f"unloads in {max(1, math.ceil(entry.unload_in_s / 60))} min"
        parts.append(f"{entry.path.stem} ({rough_size(entry.bytes)}, {when})")
    return "Loaded for requests: " + "; ".join(parts) + "."


class ServerModelsSection(QWidget):
    """Budget, idle time, what is loaded, and the aliases."""

    def __init__(self, controller: ServerController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("serverModels")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        hint = QLabel(
            "Programs pick a model by name (GET /v1/models lists them): the loaded one, any installed "
            "model (loaded when a request names it, unloaded once unused for the idle time), an "
            "alias below, or a remote engine's model."
        )
        hint.setWordWrap(True)
        hint.setProperty("muted", True)
        layout.addWidget(hint)
        form = QFormLayout()
        settings = controller.settings
        self.budget = QDoubleSpinBox()
        self.budget.setObjectName("serverMemoryBudget")
        self.budget.setAccessibleName("Memory budget in gigabytes")
        self.budget.setRange(0.0, 4096.0)
        self.budget.setSingleStep(0.5)
        self.budget.setDecimals(1)
        self.budget.setSuffix(" GB")
        self.budget.setSpecialValueText("Auto (¾ of RAM and GPU memory)")
        self.budget.setValue(settings.memory_budget / 1e9)
        self.budget.setToolTip(
            "What all loaded models may take together, the window's included. A model that would not "
            "fit first unloads idle ones; if that is not enough the request is refused, naming what "
            "holds the memory."
        )
        form.addRow("Memory budget", self.budget)
        self.idle = QSpinBox()
        self.idle.setObjectName("serverIdleUnload")
        self.idle.setAccessibleName("Unload a model unused for this many minutes")
        self.idle.setRange(0, MAX_IDLE_UNLOAD_S // 60)
        self.idle.setSuffix(" min")
        self.idle.setSpecialValueText("Never")
        self.idle.setValue(math.ceil(settings.idle_unload_s / 60))
        self.idle.setToolTip(
            "A request's ttl (seconds) sets it for its model. The window's model always stays."
        )
        form.addRow("Unload after", self.idle)
        layout.addLayout(form)
        self.loaded = QLabel()
        self.loaded.setObjectName("serverLoadedModels")
        self.loaded.setWordWrap(True)
        self.loaded.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.loaded)

        layout.addWidget(QLabel("Aliases"))
        row = QHBoxLayout()
        self.aliases = QListWidget()
        self.aliases.setObjectName("serverAliases")
        self.aliases.setAccessibleName("Aliases")
        self.aliases.setMaximumHeight(110)
        row.addWidget(self.aliases, 1)
        buttons = QVBoxLayout()
        self.add = QPushButton("Add…")
        self.add.setObjectName("serverAddAlias")
        decorate(self.add, "add")
        set_description(self.add, "Give a model, its adapters and a system prompt a name of their own")
        self.edit = QPushButton("Edit…")
        self.edit.setObjectName("serverEditAlias")
        decorate(self.edit, "edit")
        set_description(self.edit, "Change the alias chosen in the list")
        self.remove = QPushButton("Remove")
        self.remove.setObjectName("serverRemoveAlias")
        decorate(self.remove, "delete")
        set_description(self.remove, "Remove the alias chosen in the list (the model stays installed)")
        for button in (self.add, self.edit, self.remove):
            buttons.addWidget(button)
        buttons.addStretch(1)
        row.addLayout(buttons)
        layout.addLayout(row)
        self.empty = QLabel(
            "No aliases yet. An alias names a model with its adapters, a system prompt and sampling "
            "defaults, e.g. my-org/support-assistant-v2."
        )
        self.empty.setObjectName("serverAliasesEmpty")
        self.empty.setWordWrap(True)
        self.empty.setProperty("muted", True)
        layout.addWidget(self.empty)

        # Kept as they change (arrows and the wheel too), not only when the field is left.
        self.budget.valueChanged.connect(lambda _v: self._keep())
        self.idle.valueChanged.connect(lambda _v: self._keep())
        # "Unloads in N min" counts down between the pool's own reports.
        self.countdown = QTimer(self)
        self.countdown.setInterval(30_000)
        self.countdown.timeout.connect(self.show_loaded)
        self.countdown.start()
        self.add.clicked.connect(lambda: self._open(None))
        self.edit.clicked.connect(lambda: self._open(self._current()))
        self.aliases.itemDoubleClicked.connect(lambda _item: self._open(self._current()))
        self.remove.clicked.connect(self._remove)
        self.aliases.currentRowChanged.connect(self._enable)
        controller.poolChanged.connect(self.show_loaded)
        controller.stateChanged.connect(lambda *_: self.show_loaded())
        self._show_aliases()
        self.show_loaded()

    # ----- display ------------------------------------------------------------------------

    def show_loaded(self) -> None:
        """Say which models are loaded for requests now."""
        self.loaded.setText(loaded_text(self.controller))

    def _show_aliases(self, select: str | None = None) -> None:
        self.aliases.clear()
        for alias in self.controller.settings.aliases:
            adapters = f" + {len(alias.adapters)} adapter{'s' if len(alias.adapters) > 1 else ''}"
            missing = "" if alias.model.is_file() else " (its model is no longer installed)"
            text = f"{alias.name}  →  {alias.model.stem}{adapters if alias.adapters else ''}{missing}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, alias.name)
            item.setToolTip(alias.system_prompt or "No system prompt of its own")
            self.aliases.addItem(item)
            if alias.name == select:
                self.aliases.setCurrentItem(item)
        empty = not self.controller.settings.aliases
        self.aliases.setVisible(not empty)
        self.empty.setVisible(empty)
        self._enable()

    def _enable(self) -> None:
        chosen = self._current() is not None
        self.edit.setEnabled(chosen)
        self.remove.setEnabled(chosen)

    # ----- editing ------------------------------------------------------------------------

    def _current(self) -> Alias | None:
        item = self.aliases.currentItem()
        name = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return next((a for a in self.controller.settings.aliases if a.name == name), None)

    def _keep(self, aliases: tuple[Alias, ...] | None = None) -> None:
        settings = self.controller.settings
        self.controller.update_models(
            replace(
                settings,
                memory_budget=int(self.budget.value() * 1e9),
                idle_unload_s=self.idle.value() * 60,
                aliases=settings.aliases if aliases is None else aliases,
            )
        )

    def _open(self, alias: Alias | None) -> AliasDialog:
        """Open the alias dialog (for `alias`, or a new one); returns it (tests drive it)."""
        others = [a.name for a in self.controller.settings.aliases if alias is None or a.name != alias.name]
        installed = self.controller.installed()
        dialog = AliasDialog(installed, others, alias, self, shadowed=[e.path.stem for e in installed])

        def accepted() -> None:
            made = dialog.alias()
            now = self.controller.settings.aliases
            # An edited alias keeps its place in the list; a new one goes last.
            changed = tuple(made if alias is not None and a.name == alias.name else a for a in now)
            self._keep(changed if alias is not None else (*now, made))
            self._show_aliases(made.name)

        dialog.accepted.connect(accepted)
        dialog.open()
        return dialog

    def _remove(self) -> None:
        alias = self._current()
        if alias is not None:
            self._keep(tuple(a for a in self.controller.settings.aliases if a.name != alias.name))
            self._show_aliases()
