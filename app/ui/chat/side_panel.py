"""The panel beside the chat: system prompt and presets, the context policy, sampling, GPU and CPU,
speculative decoding."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QPlainTextEdit, QScrollArea, QVBoxLayout, QWidget

from app.core.inference.context_policy import ContextPolicy
from app.core.values.sampling import SamplingParams
from app.ui.chat.reply_format import ReplyFormatPanel
from app.ui.common.section import Section
from app.ui.common.theme import chars
from app.ui.conversations.presets import PresetBar
from app.ui.inference.adapters_panel import AdaptersPanel
from app.ui.inference.sampling_panel import SamplingPanel
from app.ui.inference.speculation_panel import SpeculationPanel
from app.ui.models.offload_panel import OffloadPanel

#: The system prompt is saved with the conversation after typing pauses this long.
PROMPT_SAVE_DELAY_MS = 600


class SidePanel(QScrollArea):
    """The settings drawer: the conversation's system prompt and sampling, the model's GPU options, in
    sections that fold, in one scrolling column."""

    #: The system prompt changed (every keystroke) / typing it paused (save it now).
    promptEdited = Signal(str)
    promptSettled = Signal()
    #: The user chose another context policy.
    policyChanged = Signal(object)

    def __init__(self, sampling: SamplingParams, presets: PresetBar, speculation: SpeculationPanel) -> None:
        super().__init__()
        self.setObjectName("samplingScroll")
        self.presets = presets
        panel = QWidget()
        panel.setObjectName("settingsDrawer")
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 6, 0, 6)
        layout.setSpacing(2)
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setObjectName("systemPromptInput")
        self.system_prompt.setAccessibleName("System prompt")
        self.system_prompt.setAccessibleDescription("How the model should behave in this conversation")
        self.system_prompt.setPlaceholderText("How the model should behave in this conversation (optional)")
        self.system_prompt.setFixedHeight(96)
        self.system_prompt.setTabChangesFocus(True)
        prompt_box = QWidget()
        prompt_layout = QVBoxLayout(prompt_box)
        prompt_layout.setContentsMargins(4, 0, 4, 8)
        prompt_layout.setSpacing(6)
        prompt_layout.addWidget(presets)
        prompt_layout.addWidget(self.system_prompt)
        policy_label = QLabel("When the conversation outgrows the context window")
        policy_label.setWordWrap(True)
        policy_label.setProperty("muted", True)
        prompt_layout.addWidget(policy_label)
        self.context_policy = QComboBox()
        self.context_policy.setObjectName("contextPolicyPicker")
        self.context_policy.setAccessibleName("When the conversation outgrows the context window")
        for policy in ContextPolicy:
            self.context_policy.addItem(policy.label, policy.value)
        self.context_policy.setCurrentIndex(self.context_policy.findData(ContextPolicy.DROP_OLDEST.value))
        self.context_policy.setToolTip(
            "Stop: refuse and say so. Oldest: leave out the oldest turns (never the system prompt). "
            "First and latest: keep the first exchange, which usually sets the task, and the newest turns."
        )
        self.context_policy.setAccessibleDescription(self.context_policy.toolTip())
        policy_label.setBuddy(self.context_policy)
        prompt_layout.addWidget(self.context_policy)
        self.sampling = SamplingPanel(sampling)
        self.reply_format = ReplyFormatPanel()
        self.offload = OffloadPanel()
        self.speculation = speculation
        self.adapters = AdaptersPanel()
        #: The drawer's sections: the basics open, the GPU's options folded until wanted.
        self.sections = {
            "prompt": Section("System prompt", prompt_box, True, "promptSection"),
            "sampling": Section("Sampling", self.sampling, True, "samplingSection"),
            "format": Section("Reply format", self.reply_format, False, "replyFormatSection"),
            "adapters": Section("Adapters (LoRA)", self.adapters, False, "adaptersSection"),
            "gpu": Section("GPU and CPU", self.offload, False, "gpuSection"),
            "speculation": Section("Speculative decoding", speculation, False, "speculationSection"),
        }
        for section in self.sections.values():
            layout.addWidget(section)
        layout.addStretch(1)
        self.setWidgetResizable(True)
        self.setWidget(panel)
        # As wide as its widest section needs, folded ones too (a folded section is left out of the
        # layout's own hint): with large text a button or a field would be cut off otherwise.
        widest = max(section.content.minimumSizeHint().width() for section in self.sections.values())
        needed = widest + 2 * 8 + self.verticalScrollBar().sizeHint().width() + 4
        self.setMinimumWidth(max(250, chars(self.font(), 36), needed))
        self.setMaximumWidth(max(360, chars(self.font(), 52), needed))
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to its controls, not the frame
        self._prompt_timer = QTimer(self)
        self._prompt_timer.setSingleShot(True)
        self._prompt_timer.setInterval(PROMPT_SAVE_DELAY_MS)
        self._prompt_timer.timeout.connect(self.promptSettled)
        self.system_prompt.textChanged.connect(self._on_prompt)
        self.context_policy.currentIndexChanged.connect(lambda _i: self.policyChanged.emit(self.policy()))

    def _on_prompt(self) -> None:
        self.promptEdited.emit(self.system_prompt.toPlainText())
        self._prompt_timer.start()

    def policy(self) -> ContextPolicy:
        """The context policy chosen."""
        return ContextPolicy.read(self.context_policy.currentData())

    def show_conversation(self, system_prompt: str, policy: ContextPolicy) -> None:
        """Show an opened conversation's system prompt and policy (without saving them back)."""
        for widget in (self.system_prompt, self.context_policy):
            widget.blockSignals(True)
        self.system_prompt.setPlainText(system_prompt)
        self.context_policy.setCurrentIndex(max(0, self.context_policy.findData(policy.value)))
        for widget in (self.system_prompt, self.context_policy):
            widget.blockSignals(False)

    def set_system_prompt(self, text: str) -> None:
        """Put `text` in the system prompt as if typed (a preset): it is saved after the pause."""
        self.system_prompt.setPlainText(text)
