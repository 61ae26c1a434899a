"""A sent image, shown larger: the picture read off the GUI thread, fitted to the screen."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.core.media.attachments import Attachment, AttachmentFolder
from app.ui.common.accessible import describe_buttons
from app.ui.common.tasks import BackgroundTasks

#: The viewer takes at most this share of the screen.
SCREEN_SHARE = 0.85


class ImageViewer(QDialog):
    """One attached image at a readable size (Esc or Close closes it)."""

    def __init__(
        self, attachment: Attachment, folder: AttachmentFolder, tasks: BackgroundTasks, parent: QWidget | None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("imageViewer")
        self.setWindowTitle(attachment.name)
        self.attachment = attachment
        self.picture = QLabel("Opening the image…")
        self.picture.setObjectName("imageViewerPicture")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setAccessibleName(f"Image {attachment.name}")
        scroll = QScrollArea()
        scroll.setWidget(self.picture)
        scroll.setWidgetResizable(True)
        scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel(f"{attachment.name} · {attachment.width:,} × {attachment.height:,} pixels")
        self.caption.setObjectName("imageViewerCaption")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        describe_buttons(buttons)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.caption)
        layout.addWidget(buttons)
        screen = (parent.screen() if parent is not None else None) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry()
        self._fit = (int(area.width() * SCREEN_SHARE), int(area.height() * SCREEN_SHARE) - 80)
        self.resize(
            min(self._fit[0], max(480, attachment.width + 40)),
            min(self._fit[1] + 80, max(360, attachment.height + 120)),
        )
        self.loaded = False
        path = str(folder.path(attachment))
        tasks.run(lambda: QImage(path), self._show, lambda exc: self._show(QImage()))

    def _show(self, image: QImage) -> None:
        self.loaded = True
        if image.isNull():
            self.picture.setText(f"“{self.attachment.name}” is no longer in the data folder.")
            return
        pixmap = QPixmap.fromImage(image)
        width, height = self._fit
        if pixmap.width() > width or pixmap.height() > height:
            pixmap = pixmap.scaled(
                width, height, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        self.picture.setPixmap(pixmap)
