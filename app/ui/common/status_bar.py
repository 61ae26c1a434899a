"""The window's status bar: the model chat goes to, its state, the context meter, downloads, the server."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QProgressBar, QPushButton, QSizePolicy, QStatusBar

from app.core.values.replies import ReplyStats
from app.ui.common.accessible import set_description
from app.ui.common.elided_label import ElidedLabel
from app.ui.common.icons import icon
from app.ui.common.theme import chars

REMOTE_CONTEXT_TIP = (
    "A remote model's tokenizer is not on this computer, so Fireside cannot count the tokens of a "
    "conversation before sending it (after a reply it shows what the server reported, if it did). The "
    "server applies its own context window and says so when a conversation is too long; the context "
    "policy applies to local models only."
)


class StatusBar(QStatusBar):
    """Labels and indicators along the bottom of the window; others set what they show."""

    #: The download indicator or the server indicator was clicked.
    downloadsClicked = Signal()
    serverClicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setStyleSheet("QStatusBar QLabel { padding: 0 8px; }")
        self.model_label = ElidedLabel("No model", Qt.TextElideMode.ElideMiddle)
        self.model_label.setObjectName("statusModel")
        self.model_label.setAccessibleDescription("The model chat goes to")
        # The state and the context give way (shortened with "…") before the indicators do.
        self.state_label = ElidedLabel("Starting…", Qt.TextElideMode.ElideRight)
        self.state_label.setObjectName("statusState")
        self.state_label.setAccessibleName("Model state")
        self.context_label = ElidedLabel("Context: –", Qt.TextElideMode.ElideRight)
        self.context_label.setObjectName("statusContext")
        self.context_label.setAccessibleName("Context used")
        self.download_indicator = QPushButton()
        self.download_indicator.setObjectName("downloadIndicator")
        self.download_indicator.setFlat(True)
        self.download_indicator.setToolTip("Show downloads")
        self.download_indicator.setAccessibleName("Downloads")
        self.download_indicator.setIcon(icon("download"))
        self.download_indicator.clicked.connect(self.downloadsClicked)
        self.download_indicator.hide()
        # The model name gives way first when the bar is narrow, so the state and the context
        # meter on the right are never pushed off the window.
        self.model_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.addWidget(self.model_label, 1)
        self.addPermanentWidget(self.download_indicator)
        self.server_indicator = QPushButton("API server: off")
        self.server_indicator.setObjectName("serverIndicator")
        self.server_indicator.setFlat(True)
        self.server_indicator.setToolTip(
            "Serve the loaded model to other programs through an OpenAI-compatible API"
        )
        self.server_indicator.clicked.connect(self.serverClicked)
        self.server_indicator.setAccessibleName("Local API server")
        self.addPermanentWidget(self.server_indicator)
        self.addPermanentWidget(self.state_label)
        self.addPermanentWidget(self.context_label)
        self.context_meter = QProgressBar()
        self.context_meter.setObjectName("contextMeter")
        set_description(
            self.context_meter,
            "How much of the model's context window the conversation and your draft take",
        )
        self.context_meter.setFixedWidth(chars(self.font(), 17))
        # The bar says what it measures: a bare bar at the end of the status bar meant nothing.
        self.context_meter.setFormat("no model")  # "N% of context" once one is loaded
        self.context_meter.setTextVisible(True)
        self.context_meter.setAccessibleName("Context window used")
        self.context_meter.setRange(0, 1)
        self.context_meter.setValue(0)
        self.addPermanentWidget(self.context_meter)

    def show_model(self, text: str, tooltip: str = "") -> None:
        """Name the model chat goes to."""
        self.model_label.setText(text)
        self.model_label.setToolTip(tooltip)

    def show_state(self, text: str) -> None:
        """Ready, loading, generating, waiting…"""
        self.state_label.setText(text)
        self.state_label.setToolTip(text)  # whole, when the bar is too narrow for it

    def show_context(self, used: int, total: int) -> None:
        """How much of the context window the conversation and the draft take."""
        self.context_label.setText(f"Context: {used:,} / {total:,} tokens")
        self.context_meter.setFormat("%p% of context")
        self.context_meter.setRange(0, max(1, total))
        self.context_meter.setValue(min(used, max(1, total)))
        self.context_meter.setToolTip(
            f"{used:,} of {total:,} tokens: the system prompt, the conversation and your draft, counted "
            "with the model's own tokenizer"
        )

    def show_context_overflow(self, total: int) -> None:
        """Far more text than the context holds: the meter is full, and the policy decides."""
        self.show_context(total, total)
        self.context_meter.setToolTip(
            "The conversation is longer than the context window; the context policy decides what is sent."
        )

    def show_remote_context(self, stats: ReplyStats | None) -> None:
        """The meter for a remote model: tokens cannot be counted ahead without its tokenizer."""
        self.context_meter.setFormat("not counted")
        self.context_meter.setRange(0, 1)
        self.context_meter.setValue(0)
        if stats is not None and stats.prompt_tokens:
            self.context_label.setText(f"Context: {stats.context_used:,} tokens · remote")
        else:
            self.context_label.setText("Context: unknown · remote")
        self.context_meter.setToolTip(REMOTE_CONTEXT_TIP)

    def clear_context(self) -> None:
        """No model: nothing to measure."""
        self.context_label.setText("Context: –")
        self.context_meter.setFormat("no model")
        self.context_meter.setRange(0, 1)
        self.context_meter.setValue(0)

    def show_downloads(self, text: str) -> None:
        """The downloads summary ("" hides the indicator)."""
        self.download_indicator.setText(text)
        self.download_indicator.setVisible(bool(text))

    def show_server(self, text: str, tooltip: str | None = None) -> None:
        """The API server's state or activity."""
        self.server_indicator.setText(text)
        if tooltip is not None:
            self.server_indicator.setToolTip(tooltip)
