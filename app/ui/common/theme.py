"""Light and dark appearance that follows the system (FIRESIDE_THEME=light|dark overrides)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QGuiApplication, QPalette
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


#: The spacing scale (px) the layouts use: small gaps, a field's gap, a section's, a page's margin.
SPACE_S, SPACE_M, SPACE_L, SPACE_XL = 4, 8, 12, 20
#: The type scale, relative to the system's text size: a page's title, a section's title, a hint.
TITLE_SCALE, SECTION_SCALE, HINT_SCALE = 1.5, 1.1, 0.9


def scaled_font(font: QFont, scale: float, bold: bool = False) -> QFont:
    """`font` at `scale` times its size (so it follows the system's text size), bold if asked."""
    result = QFont(font)
    if font.pointSizeF() > 0:
        result.setPointSizeF(font.pointSizeF() * scale)
    else:
        result.setPixelSize(max(1, round(font.pixelSize() * scale)))
    result.setBold(bold)
    return result


def chars(font: QFont, count: float) -> int:
    """The width of `count` average characters of `font`: widths that grow with the text size."""
    return round(count * QFontMetrics(font).averageCharWidth())


def icon_size(font: QFont, lines: float = 1.0) -> QSize:
    """A square icon `lines` text lines of `font` high: icons that grow with the text size."""
    side = round(lines * QFontMetrics(font).height())
    return QSize(side, side)


def style_sheet(dark: bool) -> str:
    """The few rules the palette cannot say: the rail, the bars' edges, muted text, section titles,
    the primary button, and rounded controls. No font sizes here: style sheets know only pt and px,
    so sizes are set in code from the system's font (scaled_font), and follow it."""
    border = "#30363d" if dark else "#d8dee4"
    rail = "#18191c" if dark else "#eceff3"
    hover = "rgba(255,255,255,0.07)" if dark else "rgba(0,0,0,0.06)"
    checked = "rgba(68,147,248,0.18)" if dark else "rgba(9,105,218,0.12)"
    accent = "#4493f8" if dark else "#0969da"
    muted = "#8b949e" if dark else "#59636e"
    return f"""
    *[muted="true"] {{ color: {muted}; }}
    QLabel[role="empty"] {{ color: {muted}; }}
    #navRail {{ background: {rail}; border-right: 1px solid {border}; }}
    #navRail QToolButton {{ border: none; border-radius: 8px; padding: 6px 2px; }}
    #navRail QToolButton:hover {{ background: {hover}; }}
    #navRail QToolButton:checked {{ background: {checked}; color: {accent}; font-weight: 600; }}
    #topBar {{ border-bottom: 1px solid {border}; }}
    #topBar QToolButton, #composerRow QToolButton {{ border-radius: 6px; padding: 4px 6px; }}
    #topBar QToolButton:hover {{ background: {hover}; }}
    QToolButton[section="true"] {{ border: none; padding: 6px 2px; }}
    QToolButton[section="true"]:hover {{ color: {accent}; }}
    QPushButton[primary="true"] {{
        background: {accent}; color: white; border: none; border-radius: 6px; padding: 6px 16px;
        font-weight: 600;
    }}
    QPushButton[primary="true"]:hover {{ background: {"#58a6ff" if dark else "#0550ae"}; }}
    QPushButton[primary="true"]:disabled {{ background: {border}; color: {muted}; }}
    QPlainTextEdit#chatInput {{ border: 1px solid {border}; border-radius: 8px; padding: 4px; }}
    QPlainTextEdit#chatInput:focus {{ border: 1px solid {accent}; }}
    #modelCards {{ border: none; }}
    """


def apply_theme(app: QApplication) -> bool:
    """Apply the Fusion style with a light or dark palette and the style sheet; returns True for dark."""
    dark = system_is_dark()
    app.setStyle("Fusion")
    app.setPalette(_dark_palette() if dark else _light_palette())
    app.setStyleSheet(style_sheet(dark))
    return dark


def is_dark(palette: QPalette) -> bool:
    """Whether a palette is a dark one (by its window colour)."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def markdown_palette(palette: QPalette) -> Palette:
    """Colours for rendered Markdown that match the widget palette."""
    return DARK if is_dark(palette) else LIGHT
