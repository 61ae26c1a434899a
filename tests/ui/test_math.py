"""Formulas in replies are typeset, code and prices are left alone, and a formula that does not
parse stays readable as its source."""

from __future__ import annotations

import re

import pytest
from PySide6.QtGui import QImage, QPainter, QTextDocument
from pytestqt.qtbot import QtBot

from app.core.chat.messages import Role
from app.ui.common.markdown_html import DARK, LIGHT, render_markdown
from tests.ui.test_message_view import _shown_view
from tests.window_fixtures import shot


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="data:image/svg\+xml;base64,[^"]+" alt="([^"]*)"', html)


@pytest.mark.parametrize(
    ("text", "formulas"),
    [
        (r"The area is $\pi r^2$.", [r"\pi r^2"]),
        ("$$\n\\int_0^1 x\\,dx = \\frac{1}{2}\n$$", [r"\int_0^1 x\,dx = \frac{1}{2}"]),
        (r"Inline \(a^2 + b^2 = c^2\) too.", ["a^2 + b^2 = c^2"]),
        ("\\[\n\\sum_{k=1}^n k\n\\]", [r"\sum_{k=1}^n k"]),
        ("It costs $5 and $10 today.", []),  # prices, not a formula
        ("Use `$x$` in shell, or\n```\necho $HOME $x$\n```", []),  # never inside code
        ("$10 and `$x`", []),  # a price, then code: the code wins
    ],
)
def test_formulas_are_found_outside_code_only(text: str, formulas: list[str]) -> None:
    rendered = render_markdown(text, LIGHT)
    assert _images(rendered.html) == formulas


def test_a_formula_that_does_not_parse_is_shown_as_its_source() -> None:
    rendered = render_markdown(r"Broken: $\frac{1}{$ here", LIGHT)
    assert not _images(rendered.html)
    assert r"<code>$\frac{1}{$</code>" in rendered.html


def test_formulas_take_the_theme_colour_and_the_text_size() -> None:
    import base64

    light = render_markdown(r"$x^2$", LIGHT, 11.0).html
    dark = render_markdown(r"$x^2$", DARK, 11.0).html
    big = render_markdown(r"$x^2$", LIGHT, 22.0).html

    def svg(page: str) -> str:
        data = re.search(r"base64,([^\"]+)", page)
        assert data is not None
        return base64.b64decode(data.group(1)).decode()

    assert LIGHT.text in svg(light) and DARK.text in svg(dark)
    width = lambda page: float(re.search(r'width="([0-9.]+)', svg(page)).group(1))  # noqa: E731
    assert width(big) == pytest.approx(2 * width(light), rel=0.1)


def test_qt_draws_the_typeset_formula(qtbot: QtBot) -> None:
    """The SVG really draws in a QTextDocument (Qt's SVG plugin reads it), not an empty box."""
    _transcript, _view = _shown_view(qtbot, 400, 200)  # a QApplication, as the chat has
    doc = QTextDocument()
    doc.setHtml(render_markdown(r"$\frac{a}{b}$", LIGHT).html)
    image = QImage(200, 80, QImage.Format.Format_ARGB32)
    image.fill(0xFFFFFFFF)
    painter = QPainter(image)
    doc.drawContents(painter)
    painter.end()
    dark = sum(
        1
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).lightness() < 128
    )
    assert dark > 20, "nothing was drawn"


def test_a_reply_with_math_in_the_chat(qtbot: QtBot) -> None:
    transcript, view = _shown_view(qtbot, 640, 320)
    transcript.add(Role.USER, "What is the quadratic formula?")
    transcript.add(
        Role.ASSISTANT,
        "For $ax^2 + bx + c = 0$:\n\n$$\nx = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}\n$$\n\n"
        "It costs $0 to use.",
    )
    qtbot.waitUntil(lambda: view.bubble_rect(1).height() > 60, timeout=5_000)
    shot(view, "chat-math")
