"""The visual language's parts: the bundled icons, the theme's colours, the cards' words, and the
settings that remember the layout."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QCheckBox, QDialog, QLabel, QVBoxLayout
from pytestqt.qtbot import QtBot

from app.core.settings import MAX_LAST_USED, Settings
from app.ui.common.banner import banner_style
from app.ui.common.dialog_fit import FitsItsText
from app.ui.common.icons import ICONS, icon
from app.ui.common.theme import _dark_palette, _light_palette, chars, icon_size, scaled_font
from app.ui.models.model_cards import ago
from app.ui.shell.application import create_app


def test_every_icon_is_bundled_with_its_licence_and_drawn_in_the_palettes_colour() -> None:
    app = create_app()
    folder = files("app").joinpath("resources/icons")
    assert "ISC License" in folder.joinpath("LICENSE.txt").read_text(encoding="utf-8")
    saved = QGuiApplication.palette()
    try:
        for palette, text in ((_light_palette(), "#1f2328"), (_dark_palette(), "#e6edf3")):
            app.setPalette(palette)
            for name in ICONS:
                image = icon(name).pixmap(QSize(32, 32)).toImage()
                inked = [
                    image.pixelColor(x, y)
                    for x in range(32)
                    for y in range(32)
                    if image.pixelColor(x, y).alpha() > 0
                ]
                assert inked, f"{name} draws nothing"
                darkest = max(inked, key=lambda c: c.alpha())
                assert darkest.name() == text, f"{name} is not in the text colour"
            disabled = icon("copy").pixmap(QSize(32, 32), QIcon.Mode.Disabled).toImage()
            colours = {disabled.pixelColor(x, y).name() for x in range(32) for y in range(32)}
            greyed = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
            assert greyed.name() in colours
    finally:
        app.setPalette(saved)


def _luminance(color: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    q = QColor(color)
    r, g, b = (channel(v) for v in (q.redF(), q.greenF(), q.blueF()))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("dark", [False, True])
@pytest.mark.parametrize("error", [False, True])
def test_the_banner_is_readable_in_both_themes(dark: bool, error: bool) -> None:
    style = banner_style(error, dark)
    background = style.split("background: ")[1].split(";")[0]
    text = style.split("color: ")[1].split(";")[0]
    assert _contrast(background, text) >= 7.0, style  # WCAG AAA for body text
    assert (_luminance(background) < 0.1) == dark, "a pale banner on a dark window glares"


def test_sizes_follow_the_text_size() -> None:
    create_app()
    small, large = QFont(), QFont()
    small.setPointSizeF(9)
    large.setPointSizeF(18)
    assert chars(large, 30) > 1.8 * chars(small, 30)
    assert icon_size(large).width() > 1.8 * icon_size(small).width()
    assert scaled_font(small, 1.5, bold=True).pointSizeF() == pytest.approx(13.5)
    assert scaled_font(small, 1.5, bold=True).bold()


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (5, "just now"),
        (90, "1 minute ago"),
        (59 * 60, "59 minutes ago"),
        (3 * 3600, "3 hours ago"),
        (30 * 3600, "yesterday"),
        (3 * 86400, "3 days ago"),
        (15 * 86400, "2 weeks ago"),
        (70 * 86400, "2 months ago"),
        (400 * 86400, "over a year ago"),
    ],
)
def test_last_used_reads_as_people_say_it(seconds: float, said: str) -> None:
    assert ago(seconds) == said


def test_the_layout_settings_survive_a_round_trip_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings(settings_drawer=False, library_layout="table")
    for n in range(MAX_LAST_USED + 5):
        settings.note_model_used(f"/models/m{n}.gguf", 1_000_000.0 + n)
    assert len(settings.model_last_used) == MAX_LAST_USED
    assert "/models/m0.gguf" not in settings.model_last_used  # the oldest went
    settings.save(path)
    loaded = Settings.load(path)
    assert loaded.settings_drawer is False and loaded.library_layout == "table"
    assert loaded.model_last_used == settings.model_last_used
    bad = {
        "settings_drawer": "no",
        "library_layout": "<script>",
        "model_last_used": {"a": "yesterday", "b": float("nan"), "c": True, "d": -4, "e": 12.5},
    }
    path.write_text(json.dumps(bad), "utf-8")
    loaded = Settings.load(path)
    assert loaded.settings_drawer is True and loaded.library_layout == "cards"
    assert loaded.model_last_used == {"e": 12.5}
    path.write_text(json.dumps({"model_last_used": ["not", "a", "map"]}), "utf-8")
    assert Settings.load(path).model_last_used == {}


def test_a_dialog_grows_to_fit_text_that_arrives_later(qtbot: QtBot) -> None:
    """The keyring's answer lands after Preferences opened: the dialog grows, nothing is cut off.
    (Without FitsItsText the dialog keeps its first size and the new lines are cut off.)"""
    create_app()
    dialog = QDialog()
    qtbot.addWidget(dialog)
    layout = QVBoxLayout(dialog)
    note = QLabel("Checking the keyring…")
    note.setWordWrap(True)
    layout.addWidget(note)
    box = QCheckBox("Allow other computers on the network (requires an API key) " * 2)
    layout.addWidget(box)
    FitsItsText(dialog, 30)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.width() >= box.sizeHint().width(), "a minimum width in characters cut the check box"
    first = dialog.height()
    note.setText("No secure keyring is available on this system: the token is kept for this session. " * 4)
    qtbot.waitUntil(lambda: dialog.height() >= layout.totalHeightForWidth(dialog.width()), timeout=2_000)
    assert dialog.height() > first
