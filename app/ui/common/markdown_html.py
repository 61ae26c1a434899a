"""Markdown of a reply -> the HTML subset Qt's rich text understands, code highlighted by Pygments.

Raw HTML in model output is escaped, never rendered: a reply is text, not a web page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound


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


def render_markdown(text: str, palette: Palette = LIGHT) -> RenderedMarkdown:
    """Render `text` (CommonMark + tables + strikethrough) to Qt-compatible HTML."""
    return _render_cached(text, palette)


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


# Raw HTML off (escaped), hard line breaks on (models rarely mean a newline as a space).
_MD = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
_MD.add_render_rule("fence", _fence)
_MD.add_render_rule("code_block", _fence)
_MD.add_render_rule("table_open", _table_open)


@lru_cache(maxsize=256)
def _render_cached(text: str, palette: Palette) -> RenderedMarkdown:
    env: dict[str, Any] = {"palette": palette, "blocks": []}
    body = _MD.render(text, env)
    style = (
        f"<style>a {{ color: {palette.link}; }} "
        f"code {{ font-family: monospace; background-color: {palette.code_bg}; }} "
        f"th {{ font-weight: 600; }}</style>"
    )
    return RenderedMarkdown(style + body, tuple(env["blocks"]))
