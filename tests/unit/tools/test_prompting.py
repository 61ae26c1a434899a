"""Tools and tool calls put into the messages a chat template renders: natively, or with
Fireside's generic prompt for a template that knows nothing of tools."""

from __future__ import annotations

import json

from app.core.tools.calls import ToolSpec
from app.core.tools.formats import ToolFormat, template_tools
from app.core.tools.prompting import GENERIC_INSTRUCTIONS, template_messages

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city now.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18 °C, sunny"},
    {"role": "tool", "tool_call_id": "call_2", "content": "24 °C, cloudy"},
]


def test_templates_are_told_apart_by_what_they_do_with_tools() -> None:
    assert template_tools(None) == template_tools("{{ messages }}")
    assert not template_tools(None).native and template_tools(None).format is ToolFormat.HERMES
    hermes = "{% if tools %}<tools>{{ tools | tojson }}</tools>{% endif %}<tool_call>"
    assert template_tools(hermes).native and template_tools(hermes).format is ToolFormat.HERMES
    assert (
        template_tools("{% if tools %}[AVAILABLE_TOOLS][TOOL_CALLS]{% endif %}").format is ToolFormat.MISTRAL
    )
    assert template_tools("{% if tools %}<|python_tag|>{% endif %}").format is ToolFormat.LLAMA3


def test_the_generic_prompt_lists_the_tools_and_turns_results_into_one_user_turn() -> None:
    turns, listed = template_messages(HISTORY, [WEATHER], native=False)
    assert listed is None
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    system = turns[0]["content"]
    assert system.startswith("Be brief.\n\n") and "<tools>" in system
    assert json.dumps(WEATHER.openai(), ensure_ascii=False) in system
    assert GENERIC_INSTRUCTIONS.splitlines()[0] in system
    assert turns[2]["content"].count("<tool_call>") == 2 and '"city": "Rome"' in turns[2]["content"]
    results = turns[3]["content"]
    assert results.count("<tool_response>") == 2
    assert json.loads(results.split("\n")[1]) == {"name": "get_weather", "content": "18 °C, sunny"}
    assert all(set(t) == {"role", "content"} for t in turns)  # only what every template reads


def test_without_a_system_message_the_generic_prompt_is_one() -> None:
    turns, _ = template_messages([{"role": "user", "content": "hi"}], [WEATHER], native=False)
    assert turns[0]["role"] == "system" and "get_weather" in turns[0]["content"]
    turns, _ = template_messages([{"role": "user", "content": "hi"}], None, native=False)
    assert turns == [{"role": "user", "content": "hi"}]


def test_a_native_template_gets_the_tools_and_the_calls_arguments_as_objects() -> None:
    turns, listed = template_messages(HISTORY, [WEATHER], native=True)
    assert listed == [WEATHER.openai()]
    assert turns[2]["tool_calls"][1]["function"]["arguments"] == {"city": "Rome"}
    assert turns[3] == {
        "role": "tool",
        "content": "18 °C, sunny",
        "tool_call_id": "call_1",
        "name": "get_weather",
    }
    assert len(turns) == len(HISTORY)


#: The tool part of Qwen 2.5's chat template (abridged): it renders `tools` and the calls itself.
QWEN_LIKE = (
    "{%- if tools %}<|im_start|>system\n# Tools\n<tools>"
    "{%- for tool in tools %}\n{{ tool | tojson }}{%- endfor %}\n</tools><|im_end|>\n{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant"
    "{%- for tool_call in message.tool_calls %}{%- set tool_call = tool_call.function %}"
    '\n<tool_call>\n{"name": "{{ tool_call.name }}", '
    '"arguments": {{ tool_call.arguments | tojson }}}\n</tool_call>'
    "{%- endfor %}<|im_end|>\n"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}\n"
    "</tool_response><|im_end|>\n"
    "{%- else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)


def test_a_template_that_renders_tools_gets_them_and_the_calls_as_it_expects() -> None:
    from app.core.inference.template import ChatTemplate

    template = ChatTemplate(QWEN_LIKE, "<|im_end|>", "")
    assert template.tools.native and template.tools.format is ToolFormat.HERMES
    prompt = template.render(HISTORY, [WEATHER])
    assert '"name": "get_weather"' in prompt.split("</tools>")[0]  # the definitions, by the template
    assert GENERIC_INSTRUCTIONS.splitlines()[0] not in prompt  # not Fireside's generic prompt
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>' in prompt
    assert "<tool_response>\n24 °C, cloudy\n</tool_response>" in prompt
    assert prompt.rstrip().endswith("<|im_start|>assistant")


def test_mistral_gets_nine_character_ids_and_llama_3_one_call_per_turn() -> None:
    mistral, _ = template_messages(HISTORY, [WEATHER], native=True, fmt=ToolFormat.MISTRAL)
    ids = [call["id"] for call in mistral[2]["tool_calls"]]
    assert all(len(i) == 9 and i.isalnum() for i in ids) and len(set(ids)) == 2
    assert [t["tool_call_id"] for t in mistral[3:]] == ids  # results still answer their calls
    llama, _ = template_messages(HISTORY, [WEATHER], native=True, fmt=ToolFormat.LLAMA3)
    assert [len(t.get("tool_calls") or []) for t in llama] == [0, 0, 1, 1, 0, 0]


def test_a_template_that_refuses_the_messages_is_the_requests_fault() -> None:
    import pytest

    from app.core.inference.errors import TemplateError
    from app.core.inference.template import ChatTemplate

    strict = ChatTemplate("{{ raise_exception('Conversation roles must alternate') }}", "", "")
    with pytest.raises(TemplateError, match="roles must alternate"):
        strict.render([{"role": "user", "content": "hi"}])


def test_a_user_message_after_tool_results_joins_their_turn() -> None:
    turns, _ = template_messages(
        [*HISTORY, {"role": "user", "content": "And Oslo?"}], [WEATHER], native=False
    )
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    assert turns[-1]["content"].endswith("</tool_response>\n\nAnd Oslo?")
