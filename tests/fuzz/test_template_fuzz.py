"""Chat templates from GGUF files, fuzzed: random Jinja source, sandbox escapes, templates that
would run forever or build gigabytes, and random conversations. The rule: a rendered prompt or a
TemplateError with a clear message, within time and memory; never code run (a template that tries
to write a file leaves no file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.core.inference.errors import TemplateError
from app.core.inference.template import ChatTemplate
from app.core.tools.calls import ToolSpec
from tests.fuzz.bounds import bounded

#: A file every escape attempt tries to create: its existence would mean template code ran.
CANARY = Path("/tmp/fireside-template-fuzz-canary")

#: Templates that try to leave the sandbox, run forever or fill the memory, each of which must end
#: as a TemplateError (or an empty, harmless render) within the bounds.
HOSTILE = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__[-1].__subclasses__()[0].__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.system('touch " + str(CANARY) + "') }}",
    "{{ joiner.__init__.__globals__['os'].popen('touch " + str(CANARY) + "').read() }}",
    "{{ namespace.__init__.__globals__.__builtins__.open('" + str(CANARY) + "', 'w').write('x') }}",
    "{{ lipsum.__globals__['os'].system('touch " + str(CANARY) + "') }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ raise_exception.__globals__ }}",
    "{{ strftime_now.__globals__ }}",
    "{{ messages.__class__.__base__.__subclasses__() }}",
    "{{ config.items() }}{{ request.application.__globals__ }}{{ os.system('touch x') }}",
    "{{ range.__self__ }}{{ dict.__init__ }}",
    "{% set x = messages.append(1) %}{{ messages|length }}",
    "{% set ns = namespace(a=1) %}{{ ns.__dict__ }}{{ ns._Namespace__attrs }}",
    "{{ tojson.__globals__ }}{{ (messages|first).update({'role': 'x'}) }}",
    "{{ 'a' * 10**9 }}",
    "{{ 'a' * 4000000 * 4 }}",
    "{{ [0] * 10**8 }}",
    "{{ 2 ** 10 ** 9 }}",
    "{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}{% endfor %}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for c in 'ab' * 3000 %}{% for d in 'ab' * 3000 %}{% endfor %}{% endfor %}",
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
    "{% set big = 'a' * 8000000 %}{{ [big] * 1000 }}",
    "{% set big = 'a' * 1000000 %}{{ big.replace('', big) }}",
    "{{ 'a'.center(10**9) }}{{ 'a'.ljust(10**9) }}",
    "{{ 'a'|center(10**9) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '%s'|format('a') }}{{ '%999999999s'|format('a') }}",
    "{{ range(100000)|join('x' * 100000) }}",
    "{{ messages|tojson(indent=10**9) }}",
    "{{ 'a'|indent(10**9) }}{{ 'a\nb'|indent('x' * 10**8) }}",
    "{{ 'a'|wordwrap(10**9) }}{{ 'a'|truncate(10**9) }}",
    "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(1) }}",
    "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{{ m() }}{% endcall %}",
    "{% for m in [[[]]] recursive %}{{ loop(m) }}{% endfor %}",
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}",
    "{{ raise_exception(messages) }}{{ raise_exception() }}",
    "{{ undefined_name.attribute }}{{ messages[99].content }}",
    "{% for %}",
    "{% if %}{% endfor %}",
    "{{ " * 200 + "1" + " }}" * 200,
    "(" * 5000,
    "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "{% include 'other.j2' %}{% extends 'base' %}{% import 'x' as y %}",
    "{{ 1 / 0 }}{{ 1 // 0 }}{{ 1 % 0 }}",
    "{{ 10 ** 400 * 1.5 }}{{ 1e308 * 10 }}",
    "{{ strftime_now('%' * 1000) }}{{ strftime_now('%Y-%m-%d') }}",
    "{{ messages|sort(attribute='__class__') }}{{ messages|map(attribute='__class__')|list }}",
    "{{ messages|selectattr('role', 'equalto', 'user')|list|length }}",
    "{% generation %}{{ messages[0]['content'] }}{% endgeneration %}{% break %}",
]

#: Pieces random templates are made of: tags, expressions and text, well-formed or not.
_PIECES = [
    "{% for message in messages %}",
    "{% endfor %}",
    "{% if message['role'] == 'user' %}",
    "{% if add_generation_prompt %}",
    "{% elif x %}",
    "{% else %}",
    "{% endif %}",
    "{{ message['content'] }}",
    "{{ message.content | trim }}",
    "{{ message['role'] }}",
    "{{ messages[0]['content'] }}",
    "{{ bos_token }}",
    "{{ eos_token }}",
    "{{ tools | tojson }}",
    "{{ loop.index }}",
    "{{ loop.last }}",
    "{{ raise_exception('roles must alternate') }}",
    "{% set ns = namespace(found=false) %}",
    "{% set ns.found = true %}",
    "{{ ns.found }}",
    "{%- ",
    " -%}",
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "<|im_start|>",
    "\n",
    "{{ 'a' * 1000 }}",
    "{{ range(5) | list }}",
    "{% for i in range(100000) %}",
    "{{ message.tool_calls | tojson }}",
    "{{ undefined_thing }}",
    "{{ ''.__class__ }}",
    "{% macro f(x) %}{{ f(x) }}{% endmacro %}",
    "{{ f(1) }}",
    "{% break %}",
    "{{ strftime_now('%d %b %Y') }}",
]

_text = st.text(st.characters(codec="utf-8"), max_size=40)
_content = st.one_of(
    _text,
    st.none(),
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _text}), max_size=3),
)
_call = st.fixed_dictionaries(
    {
        "id": st.text("abc123_", min_size=1, max_size=12),
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {
                "name": st.text("abcdefgh_", min_size=1, max_size=12),
                "arguments": st.one_of(_text, st.dictionaries(_text, _text, max_size=3).map(json.dumps)),
            }
        ),
    }
)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Conversations of the shapes the app and the API hand the engine: any roles in any order,
    text, text parts or none, assistant tool calls and tool results (for calls made or not)."""
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 6))):
        role = draw(st.sampled_from(["system", "user", "assistant", "tool", "developer"]))
        message: dict[str, Any] = {"role": role, "content": draw(_content)}
        if role == "assistant" and draw(st.booleans()):
            message["tool_calls"] = draw(st.lists(_call, min_size=1, max_size=3))
        if role == "tool":
            message["tool_call_id"] = draw(st.text("abc123_", min_size=1, max_size=12))
        out.append(message)
    return out


_tools = st.lists(
    st.builds(
        ToolSpec,
        st.text("abcdefgh_", min_size=1, max_size=12),
        _text,
        st.just({"type": "object", "properties": {"q": {"type": "string"}}}),
    ),
    max_size=2,
)


def _render(source: str | None, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None) -> Any:
    """Read and render `source` within the bounds: the prompt, or the TemplateError."""

    def run() -> str:
        return ChatTemplate(source, "</s>", "<s>").render(messages, tools)

    outcome = bounded(run, TemplateError)
    if isinstance(outcome, TemplateError):
        message = str(outcome)
        assert message.startswith("The model's chat template"), message
        assert "Traceback" not in message
    else:
        assert isinstance(outcome, str)
    return outcome


@pytest.fixture(autouse=True)
def _no_canary() -> Any:
    CANARY.unlink(missing_ok=True)
    yield
    assert not CANARY.exists(), "a template ran code: it created the canary file"


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_end_in_a_clear_error_or_a_harmless_render(source: str) -> None:
    """Each escape, endless loop or memory bomb: a TemplateError or a harmless text, in bounds."""
    outcome = _render(source, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}])
    if isinstance(outcome, str):
        assert len(outcome) < 100_000  # nothing huge was built, and no object internals were shown
        assert "<class" not in outcome and "function" not in outcome and "globals" not in outcome


def test_the_limits_name_what_was_exceeded() -> None:
    """The messages say what the template did wrong, in words."""
    hi = [{"role": "user", "content": "hi"}]
    with pytest.raises(TemplateError, match="more than 1 s"):
        ChatTemplate(HOSTILE[22], "", "").render(hi)
    with pytest.raises(TemplateError, match="more than 8,388,608 characters"):
        ChatTemplate("{{ 'a' * 10**9 }}", "", "").render(hi)
    with pytest.raises(TemplateError, match="cannot be read \\(line 1\\)"):
        ChatTemplate("{% for %}", "", "")
    with pytest.raises(TemplateError, match="calls itself without end"):
        ChatTemplate("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "", "").render(hi)
    with pytest.raises(TemplateError, match="refused these messages: roles must alternate"):
        ChatTemplate("{{ raise_exception('roles must alternate') }}", "", "").render(hi)


def test_real_template_work_stays_within_the_limits() -> None:
    """The limits are far from what real templates do: a long conversation renders whole."""
    long = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 2000} for i in range(100)]
    prompt = ChatTemplate(None, "", "").render(long)
    assert prompt.count("word ") == 200_000 and prompt.endswith("<|im_start|>assistant\n")
    loops = "{% for i in range(100000) %}{% if i == 99999 %}{{ i }}{% endif %}{% endfor %}"
    assert ChatTemplate(loops, "", "").render([]) == "99999"


@given(st.lists(st.sampled_from(_PIECES + HOSTILE[:20]) | _text, max_size=12).map("".join), conversations())
@example("{{ 'a' * 10**9 }}", [])
@example("{% for i in range(10**9) %}{% endfor %}", [{"role": "user", "content": "hi"}])
def test_random_templates_render_or_fail_clearly(source: str, messages: list[dict[str, Any]]) -> None:
    """Templates pieced together at random, well-formed or not, on random conversations."""
    _render(source, messages)


@given(st.text(max_size=200), conversations())
def test_garbage_source_renders_or_fails_clearly(source: str, messages: list[dict[str, Any]]) -> None:
    """Any text as a template (the GGUF field is any string)."""
    _render(source, messages)


@given(conversations(), _tools)
def test_random_conversations_render_with_every_message_in_the_prompt(
    messages: list[dict[str, Any]], tools: list[ToolSpec]
) -> None:
    """With the default template every conversation renders, and holds each message's text."""
    prompt = _render(None, messages, tools or None)
    assert isinstance(prompt, str) and prompt.endswith("<|im_start|>assistant\n")
    for message in messages:
        content = message["content"]
        if isinstance(content, str) and message["role"] != "tool":
            assert content in prompt


QWEN_LIKE = (
    "{%- if tools %}<|im_start|>system\n<tools>{% for tool in tools %}{{ tool | tojson }}"
    "{% endfor %}</tools><|im_end|>\n{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant\n"
    "{%- for tool_call in message.tool_calls %}<tool_call>\n"
    '{"name": "{{ tool_call.function.name }}", "arguments": {{ tool_call.function.arguments | tojson }}}'
    "\n</tool_call>{%- endfor %}<|im_end|>\n"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}\n"
    "</tool_response><|im_end|>\n"
    "{%- elif message.role not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('Unknown role: ' + message.role) }}"
    "{%- else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)


@given(conversations(), _tools)
def test_random_conversations_with_a_tool_template(
    messages: list[dict[str, Any]], tools: list[ToolSpec]
) -> None:
    """A template that renders tools and refuses roles it does not know: a prompt or its refusal."""
    outcome = _render(QWEN_LIKE, messages, tools or None)
    if isinstance(outcome, TemplateError):
        assert "Unknown role" in str(outcome)
    for tool in tools if isinstance(outcome, str) else ():
        assert json.dumps(tool.name) in outcome
