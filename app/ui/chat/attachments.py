"""Images attached to the message being written: the Attach button (and Ctrl+Shift+A), pasted and
dropped pictures, and the strip of thumbnails above the message box, each with a remove button.

Attaching reads, checks and copies the file into the data folder off the GUI thread (a 20 MB photo
takes a moment), so the window never waits; a file that cannot be attached is a clear message and
nothing else changes.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QToolButton, QWidget

from app.core.media.attachments import Attachment, AttachmentFolder
from app.core.media.documents import SUFFIXES as DOCUMENT_SUFFIXES
from app.core.media.images import MAX_SIDE, SUFFIXES
from app.ui.common.accessible import set_description
from app.ui.common.icons import decorate, icon
from app.ui.common.tasks import BackgroundTasks

#: A thumbnail in the strip is this many text lines high (it grows with the text size).
THUMB_LINES = 3.2
#: The file dialog's filters.
IMAGE_FILTER = "Images (" + " ".join(f"*{suffix}" for suffix in SUFFIXES) + ")"
DOCUMENT_FILTER = "Documents (" + " ".join(f"*{suffix}" for suffix in DOCUMENT_SUFFIXES) + ")"
BOTH_FILTER = "Images and documents (" + " ".join(f"*{s}" for s in (*SUFFIXES, *DOCUMENT_SUFFIXES)) + ")"


def thumbnail(folder: AttachmentFolder, attachment: Attachment, side: int) -> QPixmap:
    """The attachment's small picture, `side` pixels at most (an empty pixmap when it is gone)."""
    pixmap = QPixmap(str(folder.thumbnail_path(attachment)))
    if pixmap.isNull():
        return pixmap
    return pixmap.scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def describe(attachment: Attachment) -> str:
    """What a screen reader and a tooltip say of an attachment."""
    if attachment.kind == "document":
        pages = f"{attachment.width:,} page{'s' if attachment.width != 1 else ''}"
        return f"{attachment.name}, {pages}, {attachment.height:,} characters of text"
    size = f"{attachment.width:,} × {attachment.height:,} pixels" if attachment.width else "an image"
    longest = max(attachment.width, attachment.height)
    if longest > MAX_SIDE:  # said before it is sent: the model sees less than the file holds
        scale = MAX_SIDE / longest
        size += f", read as {round(attachment.width * scale):,} × {round(attachment.height * scale):,}"
    return f"{attachment.name}, {size}"


class AttachmentChip(QWidget):
    """One attached image in the strip: its thumbnail, its name, and a remove button."""

    removed = Signal(object)  # the Attachment

    def __init__(
        self, attachment: Attachment, folder: AttachmentFolder, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.attachment = attachment
        self.setObjectName("attachmentChip")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        side = round(THUMB_LINES * self.fontMetrics().height())
        self.picture = QLabel()
        self.picture.setObjectName("attachmentThumbnail")
        self.picture.setFixedSize(QSize(side, side))
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        what = "image" if attachment.kind == "image" else "document"
        pixmap = thumbnail(folder, attachment, side * max(1, round(self.devicePixelRatioF())))
        if attachment.kind == "document":
            self.picture.setFixedSize(QSize(side * 2, side))  # an icon and the name, not a picture
            self.picture.setWordWrap(True)
            self.picture.setText(f"{attachment.name}\n{attachment.width:,} p.")
            self.picture.setObjectName("attachmentDocument")
            size = round(side * 0.4)
            self.icon = QLabel()
            self.icon.setPixmap(icon("document").pixmap(QSize(size, size)))
            layout.addWidget(self.icon)
        elif pixmap.isNull():
            self.picture.setText(attachment.name)
        else:
            pixmap.setDevicePixelRatio(max(1.0, self.devicePixelRatioF()))
            self.picture.setPixmap(pixmap)
        self.picture.setToolTip(describe(attachment))
        self.picture.setAccessibleName(f"Attached {what}: {describe(attachment)}")
        self.remove_button = QToolButton()
        self.remove_button.setObjectName("removeAttachment")
        self.remove_button.setIcon(icon("close"))
        self.remove_button.setAutoRaise(True)
        self.remove_button.setAccessibleName(f"Remove {attachment.name}")
        self.remove_button.setToolTip(f"Remove {attachment.name}")
        self.remove_button.clicked.connect(lambda: self.removed.emit(self.attachment))
        layout.addWidget(self.picture)
        layout.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignTop)


class AttachmentStrip(QWidget):
    """The images attached to the message being written (hidden while there are none)."""

    changed = Signal()

    def __init__(self, folder: AttachmentFolder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composerAttachments")
        self.setAccessibleName("Attached images")
        self.folder = folder
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(12, 6, 12, 0)
        self._layout.setSpacing(8)
        self._layout.addStretch(1)
        self.chips: list[AttachmentChip] = []
        self.hide()

    @property
    def attachments(self) -> list[Attachment]:
        """The attached images, in the order they were attached."""
        return [chip.attachment for chip in self.chips]

    def add(self, attachment: Attachment) -> None:
        """Show one more (the same picture twice is attached once)."""
        if any(chip.attachment.sha256 == attachment.sha256 for chip in self.chips):
            return
        chip = AttachmentChip(attachment, self.folder)
        chip.removed.connect(self.remove)
        self._layout.insertWidget(len(self.chips), chip)
        chip.show()  # a child added to a shown widget stays hidden until shown
        self.chips.append(chip)
        self.setVisible(True)
        self.changed.emit()

    def remove(self, attachment: Attachment) -> None:
        """Take one away."""
        for chip in list(self.chips):
            if chip.attachment is attachment:
                self.chips.remove(chip)
                chip.deleteLater()
        self.setVisible(bool(self.chips))
        self.changed.emit()

    def clear(self) -> None:
        """Take them all away (the message was sent)."""
        for chip in self.chips:
            chip.deleteLater()
        self.chips = []
        self.hide()
        self.changed.emit()


class AttachButton(QToolButton):
    """The paperclip beside the message box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachButton")
        decorate(self, "attach")
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.setAccessibleName("Attach images or documents")
        self.setToolTip("Attach images or documents (Ctrl+Shift+A), or paste or drop them on the message box")
        set_description(
            self, "Choose images or documents (PDF, text, Markdown, HTML, code) to send with the message"
        )


class Attachments(QObject):
    """Attaches images to the message being written, off the GUI thread; says when one cannot be."""

    #: A file could not be attached: the message says why (for the banner).
    failed = Signal(str)
    #: Every attachment asked for so far is in the strip (or failed): tests and tools wait for it.
    settled = Signal()

    def __init__(
        self,
        folder: AttachmentFolder,
        tasks: BackgroundTasks,
        strip: AttachmentStrip,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.folder, self.tasks, self.strip = folder, tasks, strip
        self.busy = 0

    @property
    def pending(self) -> list[Attachment]:
        """What goes with the next message."""
        return self.strip.attachments

    def choose(self, parent: QWidget | None) -> None:
        """Ask for image files, and attach them."""
        filters = f"{BOTH_FILTER};;{IMAGE_FILTER};;{DOCUMENT_FILTER};;All files (*)"
        names, _ = QFileDialog.getOpenFileNames(parent, "Attach images or documents", "", filters)
        self.attach_paths([Path(name) for name in names])

    def attach_paths(self, paths: list[Path]) -> None:
        """Attach these files (each checked and copied off the GUI thread)."""
        for path in paths:
            self._run(lambda path=path: self.folder.add_file(path))

    def attach_image(self, image: QImage, name: str = "pasted image.png") -> None:
        """Attach a picture that is not a file (pasted from the clipboard), as a PNG."""
        if image.isNull():
            self.failed.emit("The clipboard holds no picture Fireside can read.")
            return
        buffer = QByteArray()
        device = QBuffer(buffer)
        device.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(device, "PNG")  # type: ignore[call-overload]  # a screenshot: milliseconds
        data = bytes(buffer.data())
        self._run(lambda: self.folder.add_bytes(data, name))

    def _run(self, work: object) -> None:
        self.busy += 1
        started = self.tasks.run(work, self._added, self._failed)  # type: ignore[arg-type]
        if started is None:  # the window is closing
            self.busy -= 1

    def _added(self, attachment: Attachment) -> None:
        self.busy -= 1
        self.strip.add(attachment)
        if not self.busy:
            self.settled.emit()

    def _failed(self, error: BaseException) -> None:
        self.busy -= 1
        self.failed.emit(str(error) or f"The file could not be attached ({type(error).__name__}).")
        if not self.busy:
            self.settled.emit()
