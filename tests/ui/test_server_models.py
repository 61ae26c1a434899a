"""The server panel's "Models by name": the memory budget and idle time are kept, an alias made in
its dialog (model, adapter and scale, system prompt, temperature) answers API requests by its name,
its refusals show, and the models loaded for requests are listed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDialogButtonBox, QDoubleSpinBox
from pytestqt.qtbot import QtBot

from app.core.api.config import ServerSettings, ServingSources
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.models.gguf_file import inspect_model
from app.core.models.library import ModelEntry
from app.core.values.sampling import SamplingParams
from app.ui.api.alias_dialog import AliasDialog
from app.ui.api.controller import ServerController
from app.ui.api.dialog import ServerDialog
from app.ui.common.tasks import BackgroundTasks
from app.ui.shell.application import create_app
from tests.llama_server import free_port
from tests.lora_writer import write_lora
from tests.unit.api.served import MODEL, loaded_worker

QUESTION = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def worker(starter_model: Path) -> Iterator[InferenceThread]:
    """The window's model: the starter, on one inference thread."""
    thread = loaded_worker(starter_model)
    yield thread
    thread.shutdown()


@pytest.fixture
def panel(
    qtbot: QtBot,
    worker: InferenceThread,
    starter_model: Path,
    starter_f16: Path,
    tmp_path: Path,
) -> Iterator[ServerDialog]:
    create_app()
    tasks = BackgroundTasks()
    lora = write_lora(tmp_path / "sea-lora.gguf", starter_model, strength=0.08)
    installed = [
        ModelEntry(starter_model, inspect_model(starter_model), adapters=(lora,)),
        ModelEntry(starter_f16, inspect_model(starter_f16)),
    ]
    sources = ServingSources(
        options=lambda _path: LoadOptions(context_length=1024, n_parallel=1),
        extra_models=lambda: [str(starter_f16)],
    )
    controller = ServerController(
        worker, tasks, ServerSettings(port=free_port()), SamplingParams, sources=sources,
        installed=lambda: installed,
    )  # fmt: skip
    view = ServerDialog(controller)
    qtbot.addWidget(view)
    view.resize(820, 900)
    view.show()
    yield view
    controller.shutdown()
    tasks.shutdown()


def _ok(dialog: AliasDialog) -> Any:
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_budget_idle_time_and_an_alias_made_in_the_panel_serve_by_name(
    qtbot: QtBot, panel: ServerDialog, memory_keyring: Any, tmp_path: Path, starter_f16: Path
) -> None:
    models = panel.models
    assert models.empty.isVisible() and not models.aliases.isVisible(), (
        "the empty state says what aliases are"
    )
    models.budget.setValue(2.5)
    models.budget.editingFinished.emit()
    models.idle.setValue(10)
    models.idle.editingFinished.emit()
    assert panel.controller.settings.memory_budget == 2_500_000_000
    assert panel.controller.settings.idle_unload_s == 600

    qtbot.mouseClick(models.add, Qt.MouseButton.LeftButton)
    dialog = panel.findChild(AliasDialog, "aliasDialog")
    assert dialog is not None and dialog.isVisible()
    assert not _ok(dialog).isEnabled() and "The name is empty." in dialog.problems.text()
    dialog.name.setText("my-org/support-assistant-v2")
    assert _ok(dialog).isEnabled()
    dialog.temperature.setValue(-0.5)  # between "the window's setting" (-1) and 0: not a temperature
    assert not _ok(dialog).isEnabled() and "temperature must be between" in dialog.problems.text()
    dialog.name.setText("SmolLM2-135M-Instruct.F16")  # an installed model's name: allowed, but said
    dialog.temperature.setValue(-1)
    assert _ok(dialog).isEnabled() and "An installed model is named" in dialog.problems.text()
    dialog.name.setText("my-org/support-assistant-v2")
    toggle = dialog.adapters_box.findChild(QCheckBox, "aliasAdapterToggle")
    scale = dialog.adapters_box.findChild(QDoubleSpinBox, "aliasAdapterScale")
    assert toggle is not None and scale is not None and toggle.text() == "sea-lora"
    toggle.setChecked(True)
    scale.setValue(1.5)
    dialog.system_prompt.setPlainText("Answer in one word.")
    dialog.temperature.setValue(0.0)
    dialog.max_tokens.setValue(4)
    panel.grab().save(str(tmp_path / "server-models.png"))
    dialog.grab().save(str(tmp_path / "alias-dialog.png"))
    _ok(dialog).click()
    saved = panel.controller.settings.aliases
    assert len(saved) == 1 and saved[0].name == "my-org/support-assistant-v2"
    assert saved[0].adapters[0][1] == 1.5 and dict(saved[0].sampling) == {"temperature": 0.0, "max_tokens": 4}
    assert models.aliases.isVisible() and "+ 1 adapter" in models.aliases.item(0).text()

    # A second alias may not take the first one's name.
    qtbot.mouseClick(models.add, Qt.MouseButton.LeftButton)
    second = next(d for d in panel.findChildren(AliasDialog) if d.isVisible() and d is not dialog)
    second.name.setText("My-Org/Support-Assistant-v2")
    assert not _ok(second).isEnabled() and "Another alias is named" in second.problems.text()
    second.reject()

    panel.switch.setChecked(True)
    qtbot.waitUntil(lambda: panel.controller.state == "running", timeout=10_000)
    assert panel.controller.address is not None
    client = openai.OpenAI(base_url=panel.controller.address, api_key="none", max_retries=0)
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == MODEL and "my-org/support-assistant-v2" in ids and starter_f16.stem in ids
    reply = client.chat.completions.create(model="my-org/support-assistant-v2", messages=QUESTION)  # type: ignore[arg-type]
    assert reply.model == "my-org/support-assistant-v2" and reply.usage and reply.usage.completion_tokens <= 4
    client.chat.completions.create(model=starter_f16.stem, messages=QUESTION, max_tokens=2)  # type: ignore[arg-type]
    qtbot.waitUntil(lambda: starter_f16.stem in models.loaded.text(), timeout=10_000)
    assert "unloads in 10 min" in models.loaded.text()
    panel.grab().save(str(tmp_path / "server-models-loaded.png"))

    models.aliases.setCurrentRow(0)
    qtbot.mouseClick(models.remove, Qt.MouseButton.LeftButton)
    assert panel.controller.settings.aliases == () and models.empty.isVisible()
    with pytest.raises(openai.NotFoundError):  # the running server follows at once
        client.chat.completions.create(model="my-org/support-assistant-v2", messages=QUESTION)  # type: ignore[arg-type]
