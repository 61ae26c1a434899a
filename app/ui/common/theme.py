"""Light and dark appearance that follows the system (FIRESIDE_THEME=light|dark overrides)."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app.ui.common.markdown_html import DARK, LIGHT, Palette


def system_is_dark() -> bool:
    """True when the user asked for dark (env override) or the platform reports a dark colour scheme."""
    forced = os.environ.get("FIRESIDE_THEME", "").lower()
    if forced in ("dark", "light"):
        return forced == "dark"
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def _dark_palette() -> QPalette:
    p = QPalette()
    colors = {
        QPalette.ColorRole.Window: "#1e1f22",
        QPalette.ColorRole.WindowText: "#e6edf3",
        QPalette.ColorRole.Base: "#16171a",
        QPalette.ColorRole.AlternateBase: "#25272b",
        QPalette.ColorRole.ToolTipBase: "#2b2d31",
        QPalette.ColorRole.ToolTipText: "#e6edf3",
        QPalette.ColorRole.PlaceholderText: "#8b949e",
        QPalette.ColorRole.Text: "#e6edf3",
        QPalette.ColorRole.Button: "#2b2d31",
        QPalette.ColorRole.ButtonText: "#e6edf3",
        QPalette.ColorRole.BrightText: "#ff7b72",
        QPalette.ColorRole.Highlight: "#2f6feb",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#4493f8",
        QPalette.ColorRole.Mid: "#3d444d",
        QPalette.ColorRole.Dark: "#111214",
        QPalette.ColorRole.Light: "#3a3d42",
    }
    for role, value in colors.items():
        p.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6e7681"))
    return p


def _light_palette() -> QPalette:
    p = QPalette()
    colors = {
        QPalette.ColorRole.Window: "#f6f7f9",
        QPalette.ColorRole.WindowText: "#1f2328",
        QPalette.ColorRole.Base: "#ffffff",
        QPalette.ColorRole.AlternateBase: "#eef1f4",
        QPalette.ColorRole.Text: "#1f2328",
        QPalette.ColorRole.Button: "#ffffff",
        QPalette.ColorRole.ButtonText: "#1f2328",
        QPalette.ColorRole.Highlight: "#0969da",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#6e7781",
        QPalette.ColorRole.Link: "#0969da",
        QPalette.ColorRole.Mid: "#d0d7de",
    }
    for role, value in colors.items():
        p.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#8c959f"))
    return p


def apply_theme(app: QApplication) -> bool:
    """Apply the Fusion style with a light or dark palette; returns True for dark."""
    dark = system_is_dark()
    app.setStyle("Fusion")
    app.setPalette(_dark_palette() if dark else _light_palette())
    return dark


def is_dark(palette: QPalette) -> bool:
    """Whether a palette is a dark one (by its window colour)."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def markdown_palette(palette: QPalette) -> Palette:
    """Colours for rendered Markdown that match the widget palette."""
    return DARK if is_dark(palette) else LIGHT
