"""A model's reply is text: no live HTML, no link that opens anything, no picture fetched or shown.

Checked twice: in the HTML that markdown_html makes of a reply (parsed, every tag and attribute
looked at), and in the real message view under pytest-qt, where every link a hostile reply leaves is
clicked and every hostile address is handed to the view as an activated link, while every way Qt
could open a URL (QDesktopServices.openUrl from Python, and the URL handlers Qt's own C++ calls
consult) is recorded.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QObject, QPoint, QPointF, Qt, QUrl, Slot
from PySide6.QtGui import QColor, QDesktopServices, QImage, QTextDocument
from pytestqt.qtbot import QtBot

from app.core.chat.messages import Role
from app.core.chat.transcript import Transcript
from app.ui.chat.message_interaction import copied_code
from app.ui.chat.message_layout import PAD
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.message_view import MessageView
from app.ui.common.markdown_html import LIGHT, render_markdown
from app.ui.shell.application import create_app

#: A tiny PNG as a data: URL (a real picture, so Qt would show it if it were ever let through).
PNG = (
    "data:image/png;base64,"
    + base64.b64encode(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a2f1b8"
            "6e0000000049454e44ae426082"
        )
    ).decode()
)

#: Hostile pieces of a reply: raw HTML, script-like links in every Markdown form, data:, file:.
HOSTILE = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
    '<a href="javascript:alert(1)">raw link</a>',
    '<a href="https://evil.example" onclick="alert(1)">raw https</a>',
    "<style>body { display: none }</style>",
    '<div style="background:url(javascript:alert(1))">styled</div>',
    "&lt;script&gt;alert(1)&lt;/script&gt; &#60;img src=x onerror=alert(1)&#62;",
    "[js](javascript:alert(1))",
    "[JS](JaVaScRiPt:alert(1))",
    "[entity js](&#106;avascript:alert(1))",
    "[hex js](java&#x73;cript:alert(1))",
    "[tab js](java\tscript:alert(1))",
    "[vb](vbscript:msgbox(1))",
    "[data html](data:text/html,<script>alert(1)</script>)",
    f"[data png link]({PNG})",
    "[file](file:///etc/passwd)",
    "[file host](file://server/share/x)",
    "<javascript:alert(1)>",
    "<data:text/html,hi>",
    "<file:///etc/passwd>",
    f"![data picture]({PNG})",
    "![remote picture](https://evil.example/track.png)",
    "![local picture](/etc/passwd)",
    "![relative picture](picture.png)",
    '[quote](https://a.example "t\\" onclick=alert(1) x=\\"")',
    "[copy link](copy:0)",
    "[tool link](tool:always:0)",
    "[image link](image:0)",
    "[source link](source:1)",
    "<tool:once:0>",
    "[ref js][r]\n\n[r]: javascript:alert(1)",
    f"![ref picture][p]\n\n[p]: {PNG}",
)

#: Tags the renderer writes itself (the model's text never adds one).
OWN_TAGS = {
    "p", "a", "code", "pre", "table", "thead", "tbody", "tr", "td", "th", "span", "em", "strong",
    "s", "del", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "br",
    "style",
}  # fmt: skip
#: Schemes a link in a reply may have (a relative link has none).
LINK_SCHEMES = ("http://", "https://", "mailto:")


class _Tags(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def live_markup(text: str) -> list[str]:
    """What in `text`'s rendered HTML is live markup the model made (empty when none is)."""
    rendered = render_markdown(text, LIGHT)
    parser = _Tags()
    parser.feed(rendered.html)
    own_links = {f"copy:{index}" for index in range(len(rendered.code_blocks))}  # each code block's
    found = []
    styles = 0
    for tag, attrs in parser.tags:
        styles += tag == "style"
        if tag not in OWN_TAGS or styles > 1:  # the one <style> is the renderer's own, first
            found.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on") or name in ("src", "srcset", "background", "formaction"):
                found.append(f"{tag} {name}={value!r}")
        href = attrs.get("href")
        if href in own_links:
            continue
        if href is not None and ":" in href.split("/")[0] and not href.lower().startswith(LINK_SCHEMES):
            found.append(f"a href={href!r}")  # a scheme other than the web's (a relative link has none)
    return found


@pytest.mark.parametrize("snippet", HOSTILE)
def test_hostile_markup_is_text_in_the_html(snippet: str) -> None:
    assert live_markup(snippet) == []
    assert live_markup(f"Before {snippet} after, **bold** and `code`.") == []


def test_raw_html_and_entities_come_out_as_the_text_written() -> None:
    shown = render_markdown("<script>alert(1)</script> &lt;b&gt;", LIGHT).html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "&lt;b&gt;" in shown  # an entity stays the character it names, as text


def test_a_markdown_image_is_its_description_never_a_picture() -> None:
    assert "[image: remote]" in render_markdown("![remote](https://evil.example/x.png)").html
    # A data: address is no address at all for a reply: the Markdown stays the text it is.
    assert "![data picture](data:image/png" in render_markdown(f"![data picture]({PNG})").html
    # The app's own pictures (typeset formulas) are still pictures: the rule is for the model's.
    assert '<img src="data:image/svg+xml' in render_markdown(r"$x^2$").html


def test_web_links_stay_links() -> None:
    """The check above is not vacuous: an https link is a link (it opens nothing, see below)."""
    parser = _Tags()
    parser.feed(render_markdown("[docs](https://example.com/a) and <https://example.org>").html)
    hrefs = [attrs["href"] for tag, attrs in parser.tags if tag == "a"]
    assert hrefs == ["https://example.com/a", "https://example.org"]


#: Text around the hostile pieces, with the characters Markdown and HTML give meaning to.
_PROSE = st.text(st.sampled_from("ab <>&\"'`[]()!:/\\*_#=\n\t;"), max_size=30)


@settings(max_examples=60, deadline=None, derandomize=True)  # the suite profile's size, not random
@given(st.lists(st.tuples(_PROSE, st.sampled_from(HOSTILE)), min_size=1, max_size=4), _PROSE)
def test_hostile_pieces_in_any_surroundings_stay_text(pieces: list[tuple[str, str]], tail: str) -> None:
    text = "".join(before + snippet for before, snippet in pieces) + tail
    assert live_markup(text) == []


def test_an_app_link_that_is_not_one_of_ours_is_nothing() -> None:
    """Found here: "copy:x" made int() raise in the click handler (now it is no code block)."""
    assert copied_code("copy:x", ("code",)) is None
    assert copied_code("copy:", ("code",)) is None
    assert copied_code("copy:0", ("code",)) == "code"


# ----- the message view ---------------------------------------------------------------------------


class _Opened(QObject):
    """Records every URL Qt is asked to open, by Python or by Qt's own C++ (URL handlers)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def record(self, url: QUrl) -> None:
        """A URL Qt's desktop services would have opened."""
        self.urls.append(url.toString())


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Opened]:
    """Every URL the app asks to open, recorded and never opened."""
    create_app()
    recorder = _Opened()
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: recorder.record(QUrl(url)) or True)
    schemes = ("http", "https", "javascript", "data", "file", "vbscript", "mailto", "ftp")
    for scheme in schemes:  # Qt's C++ (QTextBrowser's external links, QLabel) ask these first
        QDesktopServices.setUrlHandler(scheme, recorder, "record")
    yield recorder
    for scheme in schemes:
        QDesktopServices.unsetUrlHandler(scheme)


def _view(qtbot: QtBot) -> tuple[Transcript, MessageView]:
    transcript = Transcript()
    view = MessageView()
    qtbot.addWidget(view)
    view.setModel(MessageListModel(transcript, view))
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    return transcript, view


def _anchor_points(view: MessageView, row: int) -> dict[str, QPoint]:
    """Each link in row `row`'s painted text, with a viewport point on it (found by scanning)."""
    doc = view._rows[row].doc
    assert doc is not None
    bubble = view.bubble_rect(row)
    layout = doc.documentLayout()
    size = doc.size()
    points: dict[str, QPoint] = {}
    for y in range(1, int(size.height()), 4):
        for x in range(1, int(size.width()), 4):
            href = layout.anchorAt(QPointF(x, y))
            if href and href not in points:
                points[href] = QPoint(bubble.left() + PAD + x, bubble.top() + PAD + y)
    return points


def _fragments(doc: QTextDocument) -> Iterator[tuple[str, bool, str]]:
    """(text, is an image, link) of each fragment of `doc`."""
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            yield fragment.text(), fmt.isImageFormat(), fmt.anchorHref()
            it += 1
        block = block.next()


# A link acts on the press; Qt then notes that nobody took the release (a warning, not a problem).
@pytest.mark.qt_log_ignore("Mouse event .MouseRelease. not accepted")
def test_clicking_every_link_of_a_hostile_reply_opens_nothing(qtbot: QtBot, opened: _Opened) -> None:
    transcript, view = _view(qtbot)
    signals: list[tuple[str, tuple[object, ...]]] = []
    for name in ("imageOpened", "sourceOpened", "toolAction", "codeCopied"):
        getattr(view, name).connect(lambda *args, name=name: signals.append((name, args)))
    reply = "\n\n".join(HOSTILE) + "\n\n[docs](https://example.com/docs)\n\n```python\nprint(1)\n```"
    transcript.add(Role.USER, "Show me links")
    row = transcript.add(Role.ASSISTANT, reply)
    doc = view._rows[row].doc
    assert doc is not None
    for text, image, href in _fragments(doc):
        assert not image, f"a picture was shown: {text!r}"
        assert not href or href.startswith(("https://", "copy:")) or ":" not in href.split("/")[0], href
    assert "<img" not in doc.toHtml()

    points = _anchor_points(view, row)
    assert "https://example.com/docs" in points and "copy:0" in points, points  # the scan found links
    for href, point in points.items():
        if href != "copy:0":
            qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert opened.urls == [], "the view opens no link of a reply, not even an https one"
    assert signals == [], "a model's link acted as one of the window's own"

    # The clicks were real: the code block's own Copy link, clicked the same way, acts.
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=points["copy:0"])
    assert signals == [("codeCopied", ("print(1)\n",))]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        PNG,
        "file:///etc/passwd",
        "https://example.com/",
        "copy:x",
        "copy:99",
        "tool:allow",
        "tool:always:x",
        "image:x",
        "source:-1",
        "",
    ],
)
def test_an_activated_link_opens_nothing(qtbot: QtBot, opened: _Opened, url: str) -> None:
    """The selectable overlay reports activated links (a click, the keyboard) through anchorClicked:
    whatever address it names, nothing is opened and nothing acts."""
    transcript, view = _view(qtbot)
    signals: list[str] = []
    for name in ("imageOpened", "sourceOpened", "toolAction", "codeCopied"):
        getattr(view, name).connect(lambda *_args, name=name: signals.append(name))
    transcript.add(Role.ASSISTANT, "```\ncode\n```")
    view._overlay.row = 0
    view._overlay.anchorClicked.emit(QUrl(url))
    assert opened.urls == [] and signals == []
    assert not view._overlay.openLinks() and not view._overlay.openExternalLinks()


def test_a_local_picture_a_reply_names_is_not_read(qtbot: QtBot, opened: _Opened, tmp_path: Path) -> None:
    """Before the fix a reply's ![x](/path/to/file.png) showed that file of the user's in the chat
    (and a data: picture was drawn): a reply could display any picture on the computer."""
    picture = tmp_path / "private.png"
    image = QImage(8, 8, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    assert image.save(str(picture))
    transcript, view = _view(qtbot)
    row = transcript.add(Role.ASSISTANT, f"![x]({picture})\n\n![y]({PNG})\n\n![z](file://{picture})")
    doc = view._rows[row].doc
    assert doc is not None
    assert not any(image for _text, image, _href in _fragments(doc))
    assert "[image: x]" in doc.toPlainText() and "![y](data:image/png" in doc.toPlainText()
    assert opened.urls == []
