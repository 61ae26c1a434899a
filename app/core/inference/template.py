"""A model's chat template (or Fireside's default), turning messages into the prompt text.

Templates come from GGUF files other people wrote, so they run in Jinja's immutable sandbox (no
attribute starting with "_", no changes to lists or dicts), and, since the sandbox bounds neither
time nor memory, under limits of Fireside's own (see `_sandbox`): a render that runs too
long, or builds text or lists too large for any prompt, fails as a TemplateError instead of
hanging the inference thread or filling the memory.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from app.core.inference.errors import TemplateError
from app.core.media.images import content_text
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

#: The longest text (in characters) and the most items a template may build, the prompt included:
#: far beyond any context window (131,072 tokens are about 0.5 M characters).
MAX_LENGTH = 8 * 2**20
#: The largest integer a template may compute, in bits (ints of millions of digits are slow).
MAX_INT_BITS = 2**16
#: How long one render may take; a real template takes milliseconds.
RENDER_SECONDS = 1.0


class _Overrun(Exception):
    """A template went past one of Fireside's limits; the message says which."""


def _size(value: Any, budget: int = MAX_LENGTH) -> int:
    """How big `value` is as text: characters of a string, items of containers and their contents,
    counted only to just past `budget` (so a huge value costs no more than a big one)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, dict):
        items: Iterable[Any] = (x for pair in value.items() for x in pair)
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    else:
        return 1
    total = 1
    for item in items:
        total += 1 + _size(item, budget - total)
        if total > budget:
            break
    return total


def _arg_size(value: Any) -> int:
    """An argument's weight: an int counts as its value (it is a width, a count or a repeat)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value)
    return _size(value)


#: A number written in a format string (a width or precision such as "%9999999d" or "{:>9999999}").
_NUMBER = re.compile(r"\d{7,}")


def _check_format(text: str) -> None:
    """Refuse a format string whose widths would build a text longer than MAX_LENGTH."""
    for number in _NUMBER.findall(text):
        if int(number) > MAX_LENGTH:
            raise _Overrun(f"it formats a value {int(number):,} characters wide")


def _too_long(size: int) -> _Overrun:
    return _Overrun(f"it builds a text or list of more than {MAX_LENGTH:,} characters or items")


def _sandbox() -> Any:
    """A new sandbox environment with limits on time, on the size of what a template builds and on
    the integers it computes, and the extensions and filters chat templates expect (Jinja is
    imported here, when a model loads)."""
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.compiler import CodeGenerator, Frame
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import _PassArg
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    class Generator(CodeGenerator):
        """Compiles every for loop to count its steps and every `~` to check what it builds."""

        def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
            # Before the template is compiled (filters are looked up first), so the loops' filter is.
            for loop in node.find_all(nodes.For):
                loop.iter = nodes.Filter(loop.iter, "_fireside_steps", [], [], None, None, lineno=loop.lineno)
            super().visit_Template(node, frame)

        def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
            self.write("environment.fireside_concat((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class Sandbox(ImmutableSandboxedEnvironment):
        """The sandbox with Fireside's limits (see the module's docstring)."""

        code_generator_class = Generator
        # Checked before they run: each of these can build a huge value from small ones.
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def __init__(self) -> None:
            super().__init__(
                loader=jinja2.BaseLoader(),
                trim_blocks=True,
                lstrip_blocks=True,
                # As llama-cpp-python (and Transformers): {% generation %} and {% break %}.
                extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, jinja2.ext.loopcontrols],
                finalize=self._finalize,
            )
            self._local = threading.local()
            # lipsum(n) writes n paragraphs: no chat template needs it.
            self.globals.pop("lipsum", None)
            self.filters["tojson"] = Jinja2ChatFormatter.tojson
            self.filters = {name: self._guarded(name, f) for name, f in self.filters.items()}
            self.filters["_fireside_steps"] = jinja2.pass_context(lambda _context, items: self._steps(items))

        # ----- the limits ----------------------------------------------------------------

        def tick(self) -> None:
            """Raise _Overrun once the render has run longer than RENDER_SECONDS."""
            deadline = getattr(self._local, "deadline", None)
            if deadline is not None and time.monotonic() > deadline:
                raise _Overrun(f"it ran for more than {RENDER_SECONDS:g} s (a loop without end?)")

        def _steps(self, items: Any) -> Iterator[Any]:
            for item in items:
                self.tick()
                yield item

        def _before(self, sizes: list[int]) -> None:
            """Refuse work on arguments this big: one too big, or two whose product is (a text
            repeated, replaced into or joined with another builds up to their product)."""
            self.tick()
            sizes = sorted(sizes)
            if sizes and sizes[-1] > MAX_LENGTH:
                raise _too_long(sizes[-1])
            if len(sizes) > 1 and sizes[-1] * sizes[-2] > MAX_LENGTH:
                raise _too_long(sizes[-1] * sizes[-2])

        @staticmethod
        def _after(result: Any) -> Any:
            if isinstance(result, str | list | tuple | dict) and (size := _size(result)) > MAX_LENGTH:
                raise _too_long(size)
            return result

        def _guarded(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
            """`function` (a filter) with the limits checked around it."""

            # Filters marked pass_context (and the like) get that object first: not a value.
            lead = 0 if _PassArg.from_obj(function) is None else 1

            @functools.wraps(function)  # keeps Jinja's pass_context (and the like) marks
            def guarded(*args: Any, **kwargs: Any) -> Any:
                head, values = args[:lead], list(args[lead:])
                if name == "join" and values and not isinstance(values[0], str):
                    values[0] = list(values[0])  # the separator repeats once per item: count them
                if name == "format" and values and isinstance(values[0], str):
                    _check_format(values[0])
                self._before([_arg_size(v) for v in (*values, *kwargs.values())])
                return self._after(function(*head, *values, **kwargs))

            return guarded

        def _finalize(self, value: Any) -> Any:
            # What `{{ ... }}` writes: a list of a million copies of a long text is a huge text.
            if (size := _size(value)) > MAX_LENGTH:
                raise _too_long(size)
            return value

        def fireside_concat(self, parts: tuple[Any, ...]) -> str:
            """`a ~ b`: the parts as one text, if it stays within MAX_LENGTH."""
            self._before([sum(_size(part) for part in parts)])
            return "".join(str(part) for part in parts)

        # ----- the sandbox's hooks -------------------------------------------------------

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            """`*`, `**`, `+` and `%`, refused where they would build too much."""
            self.tick()
            ints = isinstance(left, int) and isinstance(right, int)
            if operator == "**" and ints and right > 0 and left.bit_length() * right > MAX_INT_BITS:
                raise _Overrun(f"it computes an integer of more than {MAX_INT_BITS:,} bits")
            if operator == "*" and ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise _Overrun(f"it computes an integer of more than {MAX_INT_BITS:,} bits")
            if operator == "*" and not ints:
                self._before([_arg_size(left), _arg_size(right)])
            elif operator == "+" and not ints:
                self._before([_size(left) + _size(right)])
            elif operator == "%" and isinstance(left, str):
                _check_format(left)
                self._before([len(left) + _size(right)])
            return self._after(super().call_binop(context, operator, left, right))

        def getattr(self, obj: Any, attribute: str) -> Any:
            """An attribute, as the sandbox allows; a string's format method checks its widths."""
            if isinstance(obj, str) and attribute in ("format", "format_map"):
                _check_format(obj)
            return super().getattr(obj, attribute)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            """A call from the template, with the limits checked around it (a method's own object
            counts as an argument: "x".center(10**9))."""
            owner = getattr(__obj, "__self__", None)
            values = [*args, *kwargs.values()]
            if isinstance(owner, str | list | tuple | dict):
                values.append(owner)
            __self._before([_arg_size(value) for value in values])
            return __self._after(super().call(__context, __obj, *args, **kwargs))

        def render_bounded(self, template: Any, context: dict[str, Any]) -> str:
            """Render `template` within RENDER_SECONDS and MAX_LENGTH (raises _Overrun)."""
            self._local.deadline = time.monotonic() + RENDER_SECONDS
            pieces: list[str] = []
            total = 0
            try:
                # Piece by piece, so a template that writes one long text a million times is
                # stopped before the pieces are joined.
                for piece in template.generate(**context):
                    total += len(piece)
                    if total > MAX_LENGTH:
                        raise _too_long(total)
                    pieces.append(piece)
            finally:
                self._local.deadline = None
            return "".join(pieces)

    return Sandbox()


def _raise_exception(message: str) -> None:
    """What a template calls to refuse the messages (Transformers' `raise_exception`)."""
    raise TemplateError(f"The model's chat template refused these messages: {message}")


class ChatTemplate:
    """Renders messages with the model's Jinja chat template, or the default when it has none."""

    __slots__ = ("_environment", "_strftime", "_template", "bos_token", "eos_token", "is_default", "tools")

    def __init__(self, template: str | None, eos_token: str, bos_token: str) -> None:
        # Imported here, not at the top: llama_cpp loads a large shared library (see
        # app.core.system.binding), which importing this module must not.
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        #: True when the model carries no template and DEFAULT_CHAT_TEMPLATE is used.
        self.is_default = template is None
        #: Whether the template renders tools itself, and the syntax the model calls them in.
        self.tools: TemplateTools = template_tools(template)
        self.eos_token, self.bos_token = eos_token, bos_token
        self._strftime = Jinja2ChatFormatter.strftime_now
        self._environment = _sandbox()
        try:
            self._template = self._environment.from_string(template or DEFAULT_CHAT_TEMPLATE)
        except Exception as exc:  # a syntax error, an unknown filter, nesting too deep to parse
            where = getattr(exc, "lineno", None)
            line = f" (line {where})" if where else ""
            reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise TemplateError(f"The model's chat template cannot be read{line}: {reason}") from exc

    def render(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec] | None = None) -> str:
        """The template applied to `messages` (which may hold tool calls and results) and the `tools`
        the model may call, ending with the assistant's turn."""
        # Text parts as one text (the engine joins them, and writes images as markers, before this;
        # other callers may not): templates expect a string.
        messages = [
            m if isinstance(m.get("content"), str | None) else {**m, "content": content_text(m["content"])}
            for m in messages
        ]
        turns, listed = template_messages(messages, tools, self.tools.native, self.tools.format)
        context = {
            "messages": turns,
            "tools": listed,
            "eos_token": self.eos_token,
            "bos_token": self.bos_token,
            "raise_exception": _raise_exception,
            "add_generation_prompt": True,
            "functions": None,
            "function_call": None,
            "tool_choice": None,
            "strftime_now": self._strftime,
        }
        try:
            return str(self._environment.render_bounded(self._template, context))
        except TemplateError:
            raise
        except RecursionError:
            raise TemplateError(
                "The model's chat template failed on these messages: it calls itself without end."
            ) from None
        except Exception as exc:  # the template refused these messages (or is broken)
            reason = str(exc) or type(exc).__name__
            raise TemplateError(f"The model's chat template failed on these messages: {reason}") from exc
