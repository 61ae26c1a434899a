"""The chat page: conversations on the left, the messages and the composer, the settings on the right."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSplitter, QVBoxLayout, QWidget

from app.core.chat.transcript import Transcript
from app.ui.chat.composer import Composer
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.message_view import MessageView
from app.ui.chat.side_panel import SidePanel


class ChatPage(QSplitter):
    """The three columns of the chat; the message view follows the session's transcript."""

    def __init__(self, transcript: Transcript, sidebar: QWidget, side: SidePanel) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.setChildrenCollapsible(False)
        self.messages = MessageListModel(transcript, self)
        self.view = MessageView()
        self.view.setModel(self.messages)
        self.composer = Composer()
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("sendButton")  # also the Stop button while a reply streams
        self.send_button.setMinimumWidth(84)
        self.send_button.setDefault(True)
        chat = QWidget()
        chat_layout = QVBoxLayout(chat)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.setSpacing(0)
        chat_layout.addWidget(self.view, 1)
        composer_row = QWidget()
        composer_row.setObjectName("composerRow")
        row_layout = QHBoxLayout(composer_row)
        row_layout.setContentsMargins(12, 8, 12, 12)
        row_layout.addWidget(self.composer, 1)
        row_layout.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        chat_layout.addWidget(composer_row)
        for index, (part, stretch) in enumerate(((sidebar, 0), (chat, 1), (side, 0))):
            self.addWidget(part)
            self.setStretchFactor(index, stretch)
        self.setSizes([220, 700, 280])
