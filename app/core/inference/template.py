"""A model's chat template (or Fireside's default), turning messages into the prompt text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.core.inference.errors import TemplateError
from app.core.tools.calls import ToolSpec
from app.core.tools.formats import TemplateTools, template_tools
from app.core.tools.prompting import template_messages

#: Used when a GGUF carries no `tokenizer.chat_template`: ChatML, the format most instruct models
#: on the Hub were trained with (Qwen, SmolLM, Hermes, ...). Documented in the README.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatTemplate:
    """Renders messages with the model's Jinja chat template, or the default when it has none."""

    __slots__ = ("_formatter", "is_default", "tools")

    def __init__(self, template: str | None, eos_token: str, bos_token: str) -> None:
        # Imported here, not at the top: llama_cpp loads a large shared library (see
        # app.core.system.binding), which importing this module must not.
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        #: True when the model carries no template and DEFAULT_CHAT_TEMPLATE is used.
        self.is_default = template is None
        #: Whether the template renders tools itself, and the syntax the model calls them in.
        self.tools: TemplateTools = template_tools(template)
        self._formatter: Any = Jinja2ChatFormatter(
            template=template or DEFAULT_CHAT_TEMPLATE, eos_token=eos_token, bos_token=bos_token
        )

    def render(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec] | None = None) -> str:
        """The template applied to `messages` (which may hold tool calls and results) and the `tools`
        the model may call, ending with the assistant's turn."""
        turns, listed = template_messages(messages, tools, self.tools.native, self.tools.format)
        try:
            return str(self._formatter(messages=turns, tools=listed).prompt)
        except Exception as exc:  # the template refused these messages (or is broken)
            raise TemplateError(f"The model's chat template failed on these messages: {exc}") from exc
