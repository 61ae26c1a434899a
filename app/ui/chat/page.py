"""The chat page: conversations on the left, the messages and the composer, the settings on the right."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSplitter, QToolButton, QVBoxLayout, QWidget

from app.core.chat.transcript import Transcript
from app.ui.chat.composer import Composer
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.message_view import MessageView
from app.ui.chat.side_panel import SidePanel
from app.ui.chat.tool_approval import ToolApprovalBar
from app.ui.common.theme import chars

#: The chat column is never squeezed below this many characters: the drawer gives way first.
CHAT_MIN_CHARS = 46
#: Below this width (in characters) of the chat column, the buttons beside the message box show
#: only their icons, so the message box keeps room to type.
COMPOSER_ROOM_CHARS = 64


class ChatPage(QSplitter):
    """The three columns of the chat; the message view follows the session's transcript. When the
    page is too narrow for all three, one side column shows at a time."""

    #: The drawer was shown (True) or hidden, by the user or because the page got narrow or wide.
    drawerShown = Signal(bool)

    def __init__(self, transcript: Transcript, sidebar: QWidget, side: SidePanel) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.setChildrenCollapsible(False)
        self.messages = MessageListModel(transcript, self)
        self.view = MessageView()
        self.view.setModel(self.messages)
        self.composer = Composer()
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("sendButton")  # also the Stop button while a reply streams
        self.send_button.setMinimumWidth(chars(self.font(), 11))
        self.send_button.setDefault(True)
        self.send_button.setProperty("primary", True)
        chat = QWidget()
        chat_layout = QVBoxLayout(chat)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.setSpacing(0)
        chat_layout.addWidget(self.view, 1)
        self.approval = ToolApprovalBar()
        chat_layout.addWidget(self.approval)
        self._chat_layout = chat_layout
        composer_row = QWidget()
        composer_row.setObjectName("composerRow")
        row_layout = QHBoxLayout(composer_row)
        row_layout.setContentsMargins(12, 8, 12, 12)
        row_layout.addWidget(self.composer, 1)
        row_layout.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        self._composer_row = row_layout
        chat_layout.addWidget(composer_row)
        for index, (part, stretch) in enumerate(((sidebar, 0), (chat, 1), (side, 0))):
            self.addWidget(part)
            self.setStretchFactor(index, stretch)
        self.setSizes([220, 700, 280])
        self.sidebar, self.side = sidebar, side
        self._drawer_wanted = True  # the user's choice for a page wide enough for three columns
        self._narrow_drawer = False  # on a narrow page: the drawer instead of the conversations
        #: Buttons beside the composer that give up their text when the chat column is narrow.
        self._compact: list[QToolButton] = []
        chat.installEventFilter(self)
        self._chat = chat

    def add_composer_button(self, button: QWidget) -> None:
        """Put `button` beside the composer, before Send and the buttons added before it. A tool
        button shows only its icon while the chat column is narrow (its name stays its tooltip)."""
        self._composer_row.insertWidget(1, button, 0, Qt.AlignmentFlag.AlignBottom)
        if isinstance(button, QToolButton):
            self._compact.append(button)

    def add_before_composer(self, button: QWidget) -> None:
        """Put `button` at the left of the composer (the paperclip, where chat apps keep it)."""
        self._composer_row.insertWidget(0, button, 0, Qt.AlignmentFlag.AlignBottom)

    def add_above_composer(self, widget: QWidget) -> None:
        """Put `widget` between the messages and the composer (the attached images)."""
        self._chat_layout.insertWidget(self._chat_layout.count() - 1, widget)

    def narrow(self) -> bool:
        """Too narrow for the conversations, a readable chat and the drawer side by side (a small
        window, or large text)."""
        chat = chars(self.font(), CHAT_MIN_CHARS)
        return self.width() < self.sidebar.minimumWidth() + chat + self.side.minimumWidth()

    def minimumSizeHint(self) -> QSize:
        """Room for one side column and a narrow chat, not all three: a layout never gives a widget
        less than this, so with the splitter's own hint (the three columns' sum) a small window
        would clip the page instead of letting it drop to one side column."""
        hint = super().minimumSizeHint()
        side = max(self.sidebar.minimumWidth(), self.side.minimumWidth())
        return QSize(side + chars(self.font(), CHAT_MIN_CHARS // 2) + 2 * self.handleWidth(), hint.height())

    def set_drawer_wanted(self, shown: bool) -> None:
        """Show or hide the settings drawer. On a narrow page it takes the conversations' place."""
        if self.narrow():
            self._narrow_drawer = shown
        else:
            self._drawer_wanted = shown
        self._arrange()

    def restore_drawer(self, shown: bool) -> None:
        """The choice remembered from the last session, for a page wide enough for the drawer."""
        self._drawer_wanted = shown
        self._arrange()

    def show_conversations(self) -> None:
        """Bring the conversation list back (on a narrow page, in the drawer's place)."""
        if self.narrow() and self._narrow_drawer:
            self._narrow_drawer = False
            self._arrange()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Fit the columns to the new width."""
        super().resizeEvent(event)
        self._arrange()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The chat column resized: its composer buttons show their text only where it leaves the
        message box room for a line of words."""
        if watched is self._chat and event.type() == QEvent.Type.Resize:
            compact = self._chat.width() < chars(self.font(), COMPOSER_ROOM_CHARS)
            style = (
                Qt.ToolButtonStyle.ToolButtonIconOnly
                if compact
                else Qt.ToolButtonStyle.ToolButtonTextBesideIcon
            )
            for button in self._compact:
                if button.toolButtonStyle() != style:
                    button.setToolButtonStyle(style)
        return super().eventFilter(watched, event)

    def _arrange(self) -> None:
        if self.narrow():
            drawer = self._narrow_drawer
            self.sidebar.setVisible(not drawer)
        else:
            self._narrow_drawer = False
            drawer = self._drawer_wanted
            self.sidebar.setVisible(True)
        if self.side.isHidden() == drawer:
            self.side.setVisible(drawer)
            self.drawerShown.emit(drawer)
