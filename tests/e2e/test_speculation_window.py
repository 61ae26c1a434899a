"""Speculative decoding in the window: the drawer offers the smaller installed model of the same
vocabulary as a draft model, says which one drafts, and the reply's stats line shows the guesses."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QComboBox, QLabel
from pytestqt.qtbot import QtBot

from app.core.settings import Settings
from app.core.values.speculation import SpeculationMode
from app.ui.shell.main_window import MainWindow
from tests.window_fixtures import shot, type_and_send, wait_reply_done


def test_the_starter_is_offered_to_draft_for_its_f16_copy_and_the_stats_show_the_guesses(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, starter_f16: Path
) -> None:
    installed = models_dir / starter_f16.name
    os.link(starter_f16, installed)
    window = make_window(settings=Settings(last_model=str(installed)), size=(1200, 800))
    assert window.loaded is not None and window.loaded.info.path == installed
    picker = window.findChild(QComboBox, "draftModelPicker")
    mode = window.findChild(QComboBox, "speculativePicker")
    note = window.findChild(QLabel, "draftModelNote")
    assert isinstance(picker, QComboBox) and isinstance(mode, QComboBox) and isinstance(note, QLabel)
    assert mode.currentData() == SpeculationMode.AUTO.value, "on by default"
    qtbot.waitUntil(lambda: picker.count() == 2, timeout=10_000)
    assert picker.itemData(0) is None and "n-gram lookup only" in picker.itemText(0)
    assert picker.itemData(1) == str(models_dir / "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert "smallest of its family" in picker.itemText(1)
    window.side.sections["speculation"].set_expanded(True)
    picker.setCurrentIndex(1)
    qtbot.waitUntil(lambda: note.text() == "Drafting with SmolLM2-135M-Instruct.Q4_1.gguf.", timeout=20_000)
    assert window.settings.draft_model == picker.itemData(1)
    assert Settings.load().draft_model == picker.itemData(1), "saved"
    shot(window.side, "speculation-drawer")
    shot(window.side.sections["speculation"], "speculation-section")
    type_and_send(qtbot, window, "Write a short story about a lighthouse keeper.")
    wait_reply_done(qtbot, window)
    reply = window.messages.message(1)
    assert reply.stats is not None and reply.stats.drafted > 0 and reply.stats.accepted > 0
    assert "drafted" in reply.stats.summary()
    mode.setCurrentIndex(mode.findData(SpeculationMode.OFF.value))
    qtbot.waitUntil(lambda: note.text() == "Replies are written one token at a time.", timeout=20_000)
    assert not picker.isEnabled() and window.settings.draft_model == picker.itemData(1), "the choice is kept"
    assert window.settings.speculative == "off"
