"""Documents in the real window, on the starter model: a short note goes into the prompt whole; a
long PDF is searched, the reply shows its sources (file, page, a snippet) and one opens in full;
the passages are embedded in the background while chat goes on; a document that cannot be read
says why when it is attached."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QListWidget, QPlainTextEdit
from pytestqt.qtbot import QtBot

from app.core.media.attachments import attachments_from_json
from app.core.values.sampling import SamplingParams
from app.ui.chat.documents import SourcesDialog
from app.ui.shell.main_window import MainWindow
from tests.documents_text import PAGES
from tests.pdf_writer import write_encrypted_pdf, write_pdf
from tests.window_fixtures import shot, type_and_send, wait_reply_done

CONTEXT = 2048


def attach(qtbot: QtBot, window: MainWindow, path: Path) -> None:
    before = len(window.attachments.strip.chips)
    window.attachments.attach_paths([path])
    qtbot.waitUntil(lambda: not window.attachments.busy, timeout=20_000)
    assert len(window.attachments.strip.chips) == before + 1, window.banner.label.text()


def context_tokens(window: MainWindow) -> int:
    """What the context meter shows ("Context: 1,234 / 4,096 tokens")."""
    text = window.status.context_label.text()
    return int(text.split(":")[1].split("/")[0].strip().replace(",", "")) if ":" in text else 0


def test_a_short_document_goes_into_the_prompt_whole(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    window.sampling.set_params(SamplingParams(temperature=0, max_tokens=8, context_length=CONTEXT))
    note = tmp_path / "opening-hours.md"
    note.write_text(
        "# The bakery\n\nThe Juniper Bakery opens at seven in the morning and closes at six.\n" * 6
    )
    attach(qtbot, window, note)
    chip = window.attachments.strip.chips[0]
    assert chip.attachment.kind == "document" and "opening-hours.md" in chip.picture.text()
    # The meter counts the document before it is sent (by its size: about 3.5 characters a token).
    by_size = round(len(note.read_text()) / 3.5)
    qtbot.waitUntil(lambda: context_tokens(window) >= by_size, timeout=10_000)
    type_and_send(qtbot, window, "When does the bakery open?")
    wait_reply_done(qtbot, window)
    question, reply = window.session.transcript.messages()
    assert [a.name for a in question.attachments] == ["opening-hours.md"] and not question.sources
    assert reply.stats is not None and reply.stats.prompt_tokens > 90  # the note's six paragraphs went in
    assert not reply.sources
    store = window.session.store
    assert store is not None and window.session.conversation_id is not None
    (document,) = store.documents(window.session.conversation_id)
    assert document.name == "opening-hours.md" and document.kind == "text"
    stored = store.branch(window.session.conversation_id)[0]
    assert [a.kind for a in attachments_from_json(stored.attachments)] == ["document"]


def test_a_long_pdf_is_searched_and_the_reply_shows_its_sources(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    window.sampling.set_params(SamplingParams(temperature=0, max_tokens=8, context_length=CONTEXT))
    pdf = write_pdf(tmp_path / "encyclopedia.pdf", PAGES * 4)  # 40 pages: far more than the context
    attach(qtbot, window, pdf)
    type_and_send(qtbot, window, "Who invented the Fresnel lens used in lighthouses?")
    wait_reply_done(qtbot, window)
    question, reply = window.session.transcript.messages()
    assert question.sources and reply.sources == question.sources
    assert len(reply.sources) == 4 and all(s.name == "encyclopedia.pdf" for s in reply.sources)
    assert any(s.page % 10 == 5 and "Fresnel" in s.text for s in reply.sources)
    assert reply.stats is not None and reply.stats.prompt_tokens < CONTEXT
    row = window.view._rows[1]
    assert (
        row.doc is not None
        and "source:1" in row.doc.toHtml()
        and "encyclopedia.pdf · page" in row.doc.toPlainText()
    )
    shot(window, "documents-sources")
    # A source opens in full.
    window.view.sourceOpened.emit(1, 2)
    qtbot.waitUntil(lambda: window.findChild(SourcesDialog, "messageSources") is not None, timeout=5_000)
    dialog = window.findChild(SourcesDialog, "messageSources")
    assert dialog is not None
    listed = dialog.findChild(QListWidget, "sourceList")
    passage = dialog.findChild(QPlainTextEdit, "sourcePassage")
    assert listed is not None and listed.count() == 4 and listed.currentRow() == 1
    assert passage is not None and passage.toPlainText() == reply.sources[1].text
    shot(dialog, "documents-source-dialog")
    dialog.close()
    # The passages are embedded in the background; then the next question uses their meaning too.
    store, cid = window.session.store, window.session.conversation_id
    assert store is not None and cid is not None
    (document,) = store.documents(cid)
    total = len(store.passages(document.id))
    qtbot.waitUntil(
        lambda: (
            not window.documents.busy
            and len(store.vectors(cid, window.documents.documents.embedder.name)[0]) == total
        ),
        timeout=120_000,
    )  # type: ignore[union-attr]
    # Indexed with the chat model: a small embedding model is suggested, once, with a way to find one.
    qtbot.waitUntil(lambda: "embedding model" in window.banner.label.text(), timeout=10_000)
    assert window.banner.action_button.isVisible() and window.banner.action_button.text() == "Find one"
    window.banner.action_button.click()
    assert window.pages.currentIndex() == window._page_index["discover"]
    assert window.hub.discover.search_input.text() == "bge-small"
    window.show_page("chat")
    type_and_send(qtbot, window, "How many strings does a violin have?")
    wait_reply_done(qtbot, window)
    later = window.session.transcript.messages()[3]
    assert any("violin" in s.text for s in later.sources)
    # Reopened, each reply shows the sources its question was given.
    window.conversations.new_conversation()
    window.session.open(cid)
    qtbot.waitUntil(lambda: len(window.session.transcript) == 4, timeout=10_000)
    shown = window.session.transcript.messages()
    assert shown[1].sources == reply.sources and shown[3].sources == later.sources


def test_a_document_that_cannot_be_read_is_refused_when_attached(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    locked = write_encrypted_pdf(tmp_path / "contract.pdf", PAGES[:2])
    window.attachments.attach_paths([locked])
    qtbot.waitUntil(lambda: not window.attachments.busy, timeout=20_000)
    assert (
        "protected by a password" in window.banner.label.text()
        and "contract.pdf" in window.banner.label.text()
    )
    assert not window.attachments.strip.chips
    scan = write_pdf(tmp_path / "scan.pdf", ["x", "y"], images_only=True)
    window.attachments.attach_paths([scan])
    qtbot.waitUntil(lambda: not window.attachments.busy, timeout=20_000)
    assert "looks like a scan" in window.banner.label.text()


def test_an_embedding_model_chosen_in_my_models_searches_the_documents(
    qtbot: QtBot, make_window: object, models_dir: Path, tmp_path: Path
) -> None:
    from app.core.settings import Settings
    from tests.gguf_writer import write_bert

    bert = models_dir / "bge-test-f32.gguf"
    write_bert(bert)
    window: MainWindow = make_window()  # type: ignore[operator]
    qtbot.waitUntil(lambda: any(e.path.name == bert.name for e in window.models.entries), timeout=20_000)
    # Not offered for chat: it searches documents.
    assert all(e.path.name != bert.name for e in window.picker.entries)
    window.show_page("library")
    library = window.models.library
    assert library.select_path(str(bert)) and library.embedding_button.isVisible()
    assert library.embedding_button.isEnabled() and not library.use_button.isEnabled()
    shot(window, "library-embedding-model")
    library.embedding_button.click()
    qtbot.waitUntil(
        lambda: (
            window.documents.documents.embedder is not None
            and window.documents.documents.embedder.name == bert.name
        ),
        timeout=20_000,
    )
    assert window.settings.embedding_model == str(bert.resolve()) or window.settings.embedding_model == str(
        bert
    )
    assert Settings.load().embedding_model == window.settings.embedding_model  # kept for the next launch
    window.show_page("chat")
    window.sampling.set_params(SamplingParams(temperature=0, max_tokens=4, context_length=CONTEXT))
    attach(qtbot, window, write_pdf(tmp_path / "book.pdf", PAGES * 3))
    type_and_send(qtbot, window, "How long is the Aletsch Glacier?")
    wait_reply_done(qtbot, window)
    store, cid = window.session.store, window.session.conversation_id
    assert store is not None and cid is not None
    (document,) = store.documents(cid)
    total = len(store.passages(document.id))
    qtbot.waitUntil(lambda: len(store.vectors(cid, bert.name)[0]) == total, timeout=60_000)
    assert store.vectors(cid, bert.name)[1].shape == (total, 64)  # the embedding model's width, not 576
