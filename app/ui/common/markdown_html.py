"""Markdown of a reply -> the HTML subset Qt's rich text understands, code highlighted by Pygments,
formulas typeset (math_html).

Raw HTML in model output is escaped, never rendered: a reply is text, not a web page. Nor does a
reply show pictures: Qt would load an `<img>` of a local path (any file on the computer) or a data:
URL, so a Markdown image is shown as its description, in words. Formulas are
found by markdown-it's math plugins, so `$` inside code, inline or fenced, is never read as math; a
dollar amount ("$5 and $10") is not a formula either (no digit may follow the closing `$`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.texmath import texmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound

from app.ui.common.math_html import math_html


@dataclass(frozen=True, slots=True)
class Palette:
    """Colours the HTML uses, chosen by the theme."""

    text: str
    muted: str
    code_bg: str
    border: str
    link: str
    pygments_style: str


LIGHT = Palette("#1f2328", "#656d76", "#f3f4f6", "#d0d7de", "#0969da", "default")
DARK = Palette("#e6edf3", "#9198a1", "#161b22", "#3d444d", "#4493f8", "monokai")


@dataclass(frozen=True, slots=True)
class RenderedMarkdown:
    """HTML for a QTextDocument and the raw source of each code block (for the copy action)."""

    html: str
    code_blocks: tuple[str, ...]


def _code_html(code: str, language: str, palette: Palette, index: int) -> str:
    lexer = None
    if language:
        try:
            lexer = get_lexer_by_name(language)
        except ClassNotFound:
            lexer = None
    if lexer is None and len(code) > 40:
        try:
            lexer = guess_lexer(code)
        except ClassNotFound:
            lexer = None
    if lexer is None:
        body = html.escape(code)
    else:
        formatter = HtmlFormatter(nowrap=True, noclasses=True, style=palette.pygments_style)
        body = highlight(code, lexer, formatter)
    label = html.escape(language or "code")
    # One-cell table: Qt's rich text draws backgrounds and padding reliably on table cells.
    return (
        f'<table width="100%" cellspacing="0" cellpadding="8" '
        f'style="background-color:{palette.code_bg}; border: 1px solid {palette.border}; margin: 6px 0;">'
        f'<tr><td><span style="color:{palette.muted}; font-size: small;">{label}</span>'
        f'&nbsp;&nbsp;<a href="copy:{index}" style="color:{palette.link}; font-size: small;">Copy</a>'
        '<pre style="font-family: monospace; margin: 4px 0 0 0; white-space: pre-wrap;">'
        f"{body.rstrip()}</pre>"
        "</td></tr></table>"
    )


def render_markdown(text: str, palette: Palette = LIGHT, size: float = 11.0) -> RenderedMarkdown:
    """Render `text` (CommonMark + tables + strikethrough + math) to Qt-compatible HTML; formulas
    are typeset at `size` points (the text's, so the chat's zoom scales them too)."""
    return _render_cached(text, palette, round(size, 1) if size > 0 else 11.0)


def _fence(_renderer: object, tokens: list[Token], idx: int, _options: object, env: dict[str, Any]) -> str:
    token = tokens[idx]
    language = token.info.strip().split()[0] if token.info.strip() else ""
    blocks: list[str] = env["blocks"]
    blocks.append(token.content)
    return _code_html(token.content, language, env["palette"], len(blocks) - 1)


def _table_open(_renderer: object, _tokens: list[Token], _i: int, _opts: object, env: dict[str, Any]) -> str:
    # Render rules are bound to the renderer (hence _renderer). Qt draws cell borders from the
    # table's own attributes, not from CSS on the cells.
    return (
        f'<table border="1" cellspacing="0" cellpadding="5" '
        f'style="border-color:{env["palette"].border}; border-collapse: collapse; margin: 6px 0;">'
    )


def _image(renderer: Any, tokens: list[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    # Never an <img>: the picture's address is the model's, and Qt's rich text would read a local file
    # or a data: URL it names. Its description is shown instead, as text.
    described = renderer.renderInlineAsText(tokens[idx].children or [], options, env).strip()
    return html.escape(f"[image: {described}]" if described else "[image]")


def _math(display: bool) -> Any:
    def rule(_renderer: object, tokens: list[Token], idx: int, _options: object, env: dict[str, Any]) -> str:
        return math_html(tokens[idx].content, display, env["palette"].text, env["size"])

    return rule


#: Link schemes the window itself uses; links of a model's text with them are left as text.
APP_SCHEMES = ("copy:", "tool:", "image:", "source:")
#: Links a model's text may not make at all: the window's own, and data: (markdown-it lets data:image
#: links through; a reply has no business carrying a file inside a link).
REFUSED_SCHEMES = (*APP_SCHEMES, "data:")

# Raw HTML off (escaped), hard line breaks on (models rarely mean a newline as a space).
_MD = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
_safe_link = _MD.validateLink
# The app's own links ("copy:N" on code blocks, "tool:allow:N" on tool cards) are never made from a
# model's text: a reply (or a tool's result it repeats) must not be able to approve a tool call.
_MD.validateLink = lambda url: _safe_link(url) and not url.strip().lower().startswith(REFUSED_SCHEMES)  # type: ignore[method-assign]
dollarmath_plugin(_MD, allow_space=False, allow_digits=False, double_inline=True)
texmath_plugin(_MD, delimiters="brackets")  # \(...\) inline, \[...\] on lines of their own


def _no_code_inside(rule: Any) -> Any:
    """The inline math rule, refusing a "formula" holding a backtick: that is a price followed by
    code ("$10 and `$x`"), and the code span must win."""

    def guarded(state: Any, silent: bool) -> bool:
        start = state.pos
        if not rule(state, True):
            return False
        found, state.pos = state.src[start : state.pos], start
        return False if "`" in found else bool(rule(state, silent))

    return guarded


for _rule in ("math_inline", "math_inline_double"):
    if _rule in _MD.inline.ruler.get_all_rules():
        _index = _MD.inline.ruler.__find__(_rule)
        _MD.inline.ruler.at(_rule, _no_code_inside(_MD.inline.ruler.__rules__[_index].fn))
for _name, _display in (
    ("math_inline", False),
    ("math_inline_double", True),
    ("math_block", True),
    ("math_block_label", True),
    ("math_block_eqno", True),
):
    _MD.add_render_rule(_name, _math(_display))
_MD.add_render_rule("fence", _fence)
_MD.add_render_rule("code_block", _fence)
_MD.add_render_rule("table_open", _table_open)
_MD.add_render_rule("image", _image)


@lru_cache(maxsize=256)
def _render_cached(text: str, palette: Palette, size: float) -> RenderedMarkdown:
    env: dict[str, Any] = {"palette": palette, "blocks": [], "size": size}
    body = _MD.render(text, env)
    style = (
        f"<style>a {{ color: {palette.link}; }} "
        f"code {{ font-family: monospace; background-color: {palette.code_bg}; }} "
        f"th {{ font-weight: 600; }}</style>"
    )
    return RenderedMarkdown(style + body, tuple(env["blocks"]))
