"""The message model and view: model contract, and streaming that touches only the streaming row."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QFont, QTextDocument
from pytestqt.qtbot import QtBot

from app.core.chat.messages import Role
from app.core.chat.transcript import Transcript
from app.core.values.replies import ReplyStats, StopReason
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.message_view import MessageView
from app.ui.shell.application import create_app
from tests.window_fixtures import shot

STATS = ReplyStats(0.1, 100.0, 10, 10, 5, StopReason.END_OF_TURN, 1, 15, 4096)


def _shown_view(qtbot: QtBot, width: int, height: int) -> tuple[Transcript, MessageView]:
    """A message view on an empty transcript, shown at width x height (the model follows the transcript)."""
    create_app()
    transcript = Transcript()
    view = MessageView()
    qtbot.addWidget(view)
    view.setModel(MessageListModel(transcript, view))
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    return transcript, view


def test_model_passes_qt_model_tester(qtmodeltester: Any) -> None:
    transcript = Transcript()
    model = MessageListModel(transcript)
    qtmodeltester.check(model)  # also watches every change below
    transcript.add(Role.USER, "hello")
    row = transcript.add(Role.ASSISTANT, "", streaming=True)
    transcript.append(row, "Hi")
    transcript.append(row, " there")
    assert transcript.message(row).content == "Hi there"
    transcript.finish(row, "Hi there!", STATS)
    transcript.set_versions({row: (1, 2)})
    transcript.set_left_out({0})
    transcript.add(Role.USER, "and again")
    transcript.truncate(1)
    assert model.rowCount() == 1
    transcript.load([transcript.peek(0)])
    qtmodeltester.check(model)
    assert transcript.prompt_messages() == [{"role": "user", "content": "hello"}]
    transcript.clear()
    assert model.rowCount() == 0


def test_failed_or_empty_replies_are_not_sent_back_to_the_model() -> None:
    transcript = Transcript()
    transcript.add(Role.USER, "hello")
    row = transcript.add(Role.ASSISTANT, "", streaming=True)
    transcript.finish(row, "", None, error="The model's chat template failed")
    transcript.add(Role.USER, "hello again")
    # The failed reply and the question it answered both go: no two user turns in a row.
    assert transcript.prompt_messages() == [{"role": "user", "content": "hello again"}]


def test_first_chunk_is_part_of_the_text_at_once() -> None:
    transcript = Transcript()
    model = MessageListModel(transcript)
    row = transcript.add(Role.ASSISTANT, "", streaming=True)
    transcript.append(row, "Hello")
    assert transcript.message(row).content == "Hello"
    assert model.data(model.index(row)) == "Hello"


def test_streaming_relayouts_only_the_streaming_row(qtbot: QtBot, monkeypatch: Any) -> None:
    transcript, view = _shown_view(qtbot, 700, 500)
    for i in range(500):
        role = Role.USER if i % 2 == 0 else Role.ASSISTANT
        transcript.add(role, f"Message {i} with **some** text. " * 3)
    row = transcript.add(Role.ASSISTANT, "", streaming=True)
    # The vertical scroll bar appears, and every row is re-wrapped once for the narrower column.
    qtbot.waitUntil(
        lambda: view.verticalScrollBar().isVisible() and view._layout_width == view._content_width()
    )
    tops_before = list(view._tops[: row + 1])
    measured: list[int] = []
    original = view._measure
    monkeypatch.setattr(view, "_measure", lambda r: (measured.append(r), original(r)))
    for _ in range(200):
        transcript.append(row, "word ")
    assert measured == []  # the appended text went into the row's document; nothing was rebuilt
    assert view._tops[: row + 1] == tops_before  # earlier rows did not move
    assert view._tops[-1] > tops_before[-1]  # the streaming row grew
    assert view.verticalScrollBar().value() == view.verticalScrollBar().maximum()  # still following
    qtbot.waitUntil(lambda: measured == [row], timeout=2_000)  # one throttled Markdown render
    if view._render_timer.isActive():  # the next throttle tick: a second render would come with it
        with qtbot.waitSignal(view._render_timer.timeout, timeout=2_000):
            pass
    assert measured == [row] and not view._pending_render
    transcript.finish(row, transcript.message(row).content, STATS)
    assert transcript.message(row).content == "word " * 200
    shot(view, "view-500")


def test_scrolling_up_stops_following(qtbot: QtBot) -> None:
    transcript, view = _shown_view(qtbot, 600, 300)
    for i in range(40):
        transcript.add(Role.USER, f"line {i}")
    row = transcript.add(Role.ASSISTANT, "", streaming=True)
    view.verticalScrollBar().setValue(0)
    for _ in range(50):
        transcript.append(row, "more text\n")
    assert view.verticalScrollBar().value() == 0  # the user's reading position is kept


def test_documents_are_freed_when_rows_go_or_rebuild(qtbot: QtBot) -> None:
    import gc
    import weakref

    transcript, view = _shown_view(qtbot, 600, 400)
    transcript.add(Role.USER, "first")
    first_doc = weakref.ref(view._rows[0].doc)  # type: ignore[arg-type]
    view.resize(500, 400)  # a re-wrap keeps the same document
    qtbot.waitUntil(lambda: view._layout_width == view._content_width() and view.width() == 500)
    assert view._rows[0].doc is first_doc()
    transcript.clear()
    gc.collect()
    assert first_doc() is None


#: Raw HTML a model might write: each must be shown as the text it is, never rendered.
RAW_HTML = (
    "<b>bold</b>",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    '<a href="https://example.com">x</a>',
)


def _rendered_as_text(doc: QTextDocument | None) -> None:
    """Assert `doc` shows every RAW_HTML snippet literally and holds nothing they would have made."""
    assert doc is not None
    text = doc.toPlainText()
    for snippet in RAW_HTML:
        assert snippet in text
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            assert fmt.fontWeight() < QFont.Weight.DemiBold.value, f"bold: {fragment.text()!r}"
            assert not fmt.isImageFormat(), f"an image: {fragment.text()!r}"
            assert not fmt.isAnchor() and not fmt.anchorHref(), f"a link: {fragment.text()!r}"
            it += 1
        block = block.next()
    exported = doc.toHtml()  # Qt writes the elements a document holds; text "<" comes out as &lt;
    for tag in ("<b>", "<img", "<script", "<a "):
        assert tag not in exported


def test_raw_html_in_a_reply_is_shown_as_text(qtbot: QtBot) -> None:
    transcript, view = _shown_view(qtbot, 800, 600)
    reply = "Tags: " + " and ".join(RAW_HTML) + "\n\n" + "\n\n".join(RAW_HTML)
    transcript.add(Role.USER, "Show me some HTML")
    whole = transcript.add(Role.ASSISTANT, reply)
    _rendered_as_text(view._rows[whole].doc)

    # A streamed reply: its Markdown render while it streams, and the final one, are text too.
    streamed = transcript.add(Role.ASSISTANT, "", streaming=True)
    for i in range(0, len(reply), 7):
        transcript.append(streamed, reply[i : i + 7])
    qtbot.waitUntil(lambda: not view._rows[streamed].streaming_plain, timeout=2_000)
    _rendered_as_text(view._rows[streamed].doc)
    transcript.finish(streamed, reply, STATS)
    _rendered_as_text(view._rows[streamed].doc)
    shot(view, "view-raw-html")
