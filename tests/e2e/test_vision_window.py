"""Images in the real window: the starter model with a test projector (its replies are noise, the
path is real). Images attached with the button's path, pasted, and dropped on the messages show as
thumbnails with a remove button; the context meter counts them; Send takes them with the text; the
sent message shows them and opens one larger; they are stored with the conversation. A model that
reads no images refuses them before anything is sent, and a file that is not an image says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.core.media.attachments import attachments_from_json, default_folder
from app.core.settings import Settings
from app.core.values.sampling import SamplingParams
from app.ui.chat.attachments import AttachmentChip
from app.ui.chat.image_viewer import ImageViewer
from app.ui.shell.main_window import MainWindow
from tests.projector_writer import write_projector
from tests.unit.inference.test_vision import png
from tests.window_fixtures import shot, type_and_send, wait_reply_done

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def seeing_window(make_window: object, models_dir: Path, tmp_path: Path) -> MainWindow:
    """The window with the starter model and a projector chosen for it by hand."""
    model = next(models_dir.glob("*.gguf"))
    projector = tmp_path / "mmproj-test-f16.gguf"
    write_projector(projector)
    settings = Settings()
    settings.projectors[str(model)] = str(projector)
    return make_window(settings=settings)  # type: ignore[operator,no-any-return]


def picture_file(folder: Path, name: str, colour: tuple[int, int, int]) -> Path:
    path = folder / name
    path.write_bytes(png(colour, (320, 200), stripes=True))
    return path


def tokens_shown(window: MainWindow) -> int:
    text = window.status.context_label.text()  # "Context: 1,234 / 4,096 tokens"
    return int(text.split(":")[1].split("/")[0].strip().replace(",", ""))


def drop_files(window: MainWindow, paths: list[Path], on_input: bool = False) -> None:
    """Drop files on the message list (or on the message box, `chatInput`)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    viewport = window.composer.viewport() if on_input else window.view.viewport()
    for kind in (QDropEvent.Type.DragEnter, QDropEvent.Type.Drop):
        event = QDropEvent(
            QPoint(20, 20), Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier, kind
        )
        QApplication.sendEvent(viewport, event)


def test_images_attached_pasted_and_dropped_go_with_the_message_and_stay_with_it(
    qtbot: QtBot, seeing_window: MainWindow, tmp_path: Path, data_dir: Path
) -> None:
    window = seeing_window
    assert window.loaded is not None and window.loaded.vision
    assert "reads images" in window.status.state_label.text()
    window.sampling.set_params(SamplingParams(temperature=0, max_tokens=12, context_length=2048))
    strip, attachments = window.attachments.strip, window.attachments
    assert strip.objectName() == "composerAttachments" and strip.isHidden()
    assert window.findChild(object, "attachButton") is not None
    type_and_send_draft = "What is in these pictures?"
    window.composer.setPlainText(type_and_send_draft)
    qtbot.waitUntil(lambda: tokens_shown(window) > 0, timeout=10_000)
    before = tokens_shown(window)
    # The paperclip's file dialog hands its choice to attach_paths; a paste and a drop do the rest.
    red = picture_file(tmp_path, "red.png", (220, 20, 20))
    attachments.attach_paths([red])
    pasted = QMimeData()
    pasted.setImageData(QImage(str(picture_file(tmp_path, "blue.png", (20, 20, 220)))))
    window.composer.insertFromMimeData(pasted)
    drop_files(window, [picture_file(tmp_path, "green.png", (20, 200, 20))])
    drop_files(window, [picture_file(tmp_path, "yellow.png", (220, 220, 20))], on_input=True)
    qtbot.waitUntil(lambda: len(strip.chips) == 4, timeout=20_000)
    assert window.composer.objectName() == "chatInput"
    assert strip.isVisible() and window.composer.toPlainText() == type_and_send_draft  # no file path typed in
    names = [chip.attachment.name for chip in strip.chips]
    assert set(names) == {"red.png", "pasted image.png", "green.png", "yellow.png"}
    shot(window, "vision-composer")
    # Remove two with their buttons; the meter counts the two left (16 positions each).
    for name in ("green.png", "yellow.png"):
        doomed = next(chip for chip in strip.findChildren(AttachmentChip) if chip.attachment.name == name)
        qtbot.mouseClick(doomed.remove_button, LEFT)
    assert [c.attachment.name for c in strip.chips] == ["red.png", "pasted image.png"]
    qtbot.waitUntil(lambda: tokens_shown(window) >= before + 32, timeout=10_000)
    red.unlink()  # the original may go: the copy in the data folder is what is sent
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    wait_reply_done(qtbot, window)
    messages = window.session.transcript.messages()
    assert [a.name for a in messages[0].attachments] == ["red.png", "pasted image.png"]
    assert messages[1].stats is not None and messages[1].stats.prompt_tokens >= 32 + 10
    assert not messages[1].error and strip.isHidden() and not strip.chips
    # Stored with the message, the files in the data folder.
    store = window.session.store
    assert store is not None and window.session.conversation_id is not None
    stored = store.branch(window.session.conversation_id)[0]
    kept = attachments_from_json(stored.attachments)
    assert [a.name for a in kept] == ["red.png", "pasted image.png"]
    assert all(default_folder().path(a).is_file() for a in kept)
    assert default_folder().root == data_dir / "attachments"
    # Reopened, the message shows them; one opens larger.
    conversation = window.session.conversation_id
    window.conversations.new_conversation()
    window.session.open(conversation)
    qtbot.waitUntil(lambda: len(window.session.transcript) == 2, timeout=10_000)
    assert [a.name for a in window.session.transcript.messages()[0].attachments] == [
        "red.png",
        "pasted image.png",
    ]
    shot(window, "vision-sent")
    window.view.imageOpened.emit(0, 1)
    qtbot.waitUntil(lambda: window.findChild(ImageViewer, "imageViewer") is not None, timeout=5_000)
    viewer = window.findChild(ImageViewer, "imageViewer")
    assert viewer is not None
    qtbot.waitUntil(lambda: viewer.loaded, timeout=10_000)
    pixmap = viewer.picture.pixmap()
    assert not pixmap.isNull() and pixmap.width() == 320 and "pasted image.png" in viewer.caption.text()
    shot(viewer, "vision-viewer")
    viewer.close()


def test_a_sent_image_is_a_link_in_its_message(
    qtbot: QtBot, seeing_window: MainWindow, tmp_path: Path
) -> None:
    window = seeing_window
    window.sampling.set_params(SamplingParams(temperature=0, max_tokens=4, context_length=2048))
    window.attachments.attach_paths([picture_file(tmp_path, "cat.png", (90, 60, 30))])
    qtbot.waitUntil(lambda: len(window.attachments.strip.chips) == 1, timeout=10_000)
    type_and_send(qtbot, window, "Describe")
    wait_reply_done(qtbot, window)
    row = window.view._rows[0]
    assert row.doc is not None
    html = row.doc.toHtml()
    assert 'href="image:0"' in html and ".thumb.jpg" in html
    # The thumbnail gives the bubble its height: taller than a line of text.
    assert row.bubble.height() > 3 * window.view.fontMetrics().height()


def test_an_image_for_a_model_that_reads_none_is_refused_before_anything_is_sent(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    assert window.loaded is not None and not window.loaded.vision
    window.attachments.attach_paths([picture_file(tmp_path, "photo.png", (1, 2, 3))])
    qtbot.waitUntil(lambda: len(window.attachments.strip.chips) == 1, timeout=10_000)
    type_and_send(qtbot, window, "What is this?")
    assert "reads text only" in window.banner.label.text() and window.banner.isVisible()
    assert window.composer.toPlainText() == "What is this?"  # nothing lost
    assert len(window.attachments.strip.chips) == 1
    assert len(window.session.transcript) == 0 and not window.is_generating


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: p.write_text("plain words, no picture"), "not an image Fireside can read"),
        (lambda p: None, "no longer there"),
        (lambda p: p.write_bytes(png((5, 5, 5))[:90]), "damaged"),
    ],
    ids=["not-an-image", "vanished", "truncated"],
)
def test_a_file_that_cannot_be_attached_says_why_and_nothing_else_changes(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, make: object, said: str
) -> None:
    path = tmp_path / "holiday.png"
    make(path)  # type: ignore[operator]
    window.composer.setPlainText("kept")
    window.attachments.attach_paths([path])
    qtbot.waitUntil(lambda: not window.attachments.busy, timeout=10_000)
    assert said in window.banner.label.text() and "holiday.png" in window.banner.label.text()
    assert not window.attachments.strip.chips and window.composer.toPlainText() == "kept"


def test_a_projector_chosen_by_hand_in_my_models_loads_with_the_model(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QFileDialog

    assert window.loaded is not None and not window.loaded.vision
    model = str(window.loaded.info.path)
    projector = tmp_path / "elsewhere" / "mmproj-chosen.gguf"
    projector.parent.mkdir()
    write_projector(projector)
    window.show_page("library")
    library = window.models.library
    assert library.select_path(model)
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", lambda *a, **k: (str(projector), "Projectors (*.gguf)")
    )
    menu = library.projector_button.menu()
    choose = menu.findChild(QAction, "projectorChooseAction")
    assert choose is not None and library.projector_button.isEnabled()
    choose.trigger()
    qtbot.waitUntil(lambda: window.loaded is not None and window.loaded.vision, timeout=60_000)
    assert window.loaded is not None and window.loaded.projector == projector
    assert window.settings.projectors[model] == str(projector)
    entry = next(e for e in window.models.entries if str(e.path) == model)
    assert entry.projector == projector and entry.projector_size == projector.stat().st_size
    assert Settings.load().projectors[model] == str(projector)  # kept for the next launch
    none = menu.findChild(QAction, "projectorNoneAction")
    assert none is not None
    none.trigger()
    qtbot.waitUntil(lambda: window.loaded is not None and not window.loaded.vision, timeout=60_000)
    assert window.settings.projectors[model] == ""
    assert next(e for e in window.models.entries if str(e.path) == model).projector is None


def test_a_projector_of_another_width_leaves_the_model_for_text_and_says_why(
    qtbot: QtBot, make_window: object, models_dir: Path, tmp_path: Path
) -> None:
    model = next(models_dir.glob("*.gguf"))
    wrong = tmp_path / "mmproj-wrong.gguf"
    write_projector(wrong, width=512)
    settings = Settings()
    settings.projectors[str(model)] = str(wrong)
    window: MainWindow = make_window(settings=settings)  # type: ignore[operator]
    assert window.loaded is not None and not window.loaded.vision
    qtbot.waitUntil(window.banner.isVisible, timeout=5_000)
    text = window.banner.label.text()
    assert "mmproj-wrong.gguf" in text and "512" in text and "576" in text and "reads text only" in text
    type_and_send(qtbot, window, "Hello")  # the chat goes on
    wait_reply_done(qtbot, window)
    assert window.session.transcript.messages()[1].content


def test_the_paperclip_and_ctrl_shift_a_ask_for_files_and_attach_them(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QAbstractButton, QFileDialog

    red = picture_file(tmp_path, "red.png", (200, 0, 0))
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nThe bakery opens at seven.\n")
    asked: list[str] = []

    def system_dialog(_parent: object, caption: str, _folder: str, filters: str) -> tuple[list[str], str]:
        asked.append(filters)  # the system's file dialog, answered as a user would
        return ([str(red)] if len(asked) == 1 else [str(notes)]), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(system_dialog))
    strip = window.attachments.strip
    button = window.findChild(QAbstractButton, "attachButton")
    assert button is not None
    qtbot.mouseClick(button, LEFT)
    qtbot.waitUntil(lambda: len(strip.chips) == 1, timeout=10_000)
    window.activateWindow()
    window.composer.setFocus()
    qtbot.keyClick(
        window.composer, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    qtbot.waitUntil(lambda: len(strip.chips) == 2, timeout=10_000)
    assert [c.attachment.name for c in strip.chips] == ["red.png", "notes.md"]
    assert "*.png" in asked[0] and "*.pdf" in asked[0], "images and documents are offered"
