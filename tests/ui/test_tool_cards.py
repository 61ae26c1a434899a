"""Tool cards in a reply: their links are the only tool links in it (a link in the model's own text
cannot approve a call), every status has its words, and a long result is cut when unfolded."""

from __future__ import annotations

from PySide6.QtGui import QTextDocument

from app.core.chat.tool_uses import ToolStatus, ToolUse
from app.ui.chat.tool_cards import SHOWN_RESULT_CHARS, card_html, cards_text, parse_anchor
from app.ui.common.markdown_html import LIGHT, render_markdown


def _anchors(html: str) -> list[str]:
    doc = QTextDocument()
    doc.setHtml(html)
    found, block = [], doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().isAnchor():
                found.append(fragment.charFormat().anchorHref())
            it += 1
        block = block.next()
    return found


def test_only_the_cards_make_tool_links(qapp: object) -> None:
    text = "See [this](tool:always:0), <tool:once:0>, [copy](copy:0) and [a site](https://example.org)."
    html = render_markdown(text, LIGHT).html + card_html(
        ToolUse("c", "calc__add", '{"a": 1}'), 0, LIGHT, False
    )
    tools = [a for a in _anchors(html) if parse_anchor(a)]
    assert tools == ["tool:once:0", "tool:always:0", "tool:deny:0"]  # the card's three, in order
    assert "copy:0" not in _anchors(html) and "https://example.org" in _anchors(html)


def test_every_status_has_words_and_a_long_result_is_cut(qapp: object) -> None:
    for status in ToolStatus:
        use = ToolUse("c", "files__read", "{}", status, "x" * (SHOWN_RESULT_CHARS + 10), unfolded=True)
        html = card_html(use, 3, LIGHT, True)
        assert "files__read" in html
        if status.settled and status is not ToolStatus.DENIED:
            assert "[…]" in html and "tool:fold:3" in html
    assert parse_anchor("tool:once:x") is None and parse_anchor("copy:1") is None
    denied = cards_text([ToolUse("c", "web__search", '{"q": 1}', ToolStatus.DENIED)])
    assert denied == 'Tool call web__search (Denied): {"q": 1}'
