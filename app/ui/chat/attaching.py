"""The chat page's attachments put together: the strip above the message box, the paperclip beside
it, pasting and dropping on the message box and the messages, and sent images opening larger."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.core.media.attachments import default_folder
from app.ui.chat.attachments import AttachButton, Attachments, AttachmentStrip
from app.ui.chat.context_meter import ContextMeter
from app.ui.chat.controller import ChatController
from app.ui.chat.image_viewer import ImageViewer
from app.ui.chat.page import ChatPage
from app.ui.common.banner import Banner
from app.ui.common.tasks import BackgroundTasks


def attach_images(
    page: ChatPage, tasks: BackgroundTasks, chat: ChatController, meter: ContextMeter, banner: Banner
) -> Attachments:
    """Give the chat page its attachments: the strip above the message box, the paperclip beside it,
    pasting and dropping on the message box and the messages, and sent images opening larger."""
    folder = default_folder()
    strip = AttachmentStrip(folder)
    page.add_above_composer(strip)
    attachments = Attachments(folder, tasks, strip, page)
    button = AttachButton()
    page.add_before_composer(button)
    button.clicked.connect(lambda: attachments.choose(page.window()))
    page.composer.filesGiven.connect(attachments.attach_paths)
    page.composer.imageGiven.connect(attachments.attach_image)
    page.view.filesDropped.connect(attachments.attach_paths)
    attachments.failed.connect(lambda text: banner.show_message(text, error=True))
    strip.changed.connect(meter.timer.start)  # an image takes tokens too
    chat.attachments = meter.attachments = attachments

    def open_sent(row: int, index: int) -> None:
        message = chat.session.transcript.peek(row)
        if 0 <= index < len(message.attachments):
            viewer = ImageViewer(message.attachments[index], folder, tasks, page.window())
            viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            viewer.open()

    page.view.imageOpened.connect(open_sent)
    return attachments
