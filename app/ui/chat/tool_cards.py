"""A reply's tool calls drawn as cards under its text: the tool, its arguments, where the call stands,
the links that answer it (Allow once, Always allow this tool, Deny), and its result, folded.

Cards are HTML in the message's own document (Qt's rich text): they scroll, select and paint like the
text around them, and their links reach the view as "tool:<action>:<index>" anchors.
"""

from __future__ import annotations

import html
import json

from app.core.chat.tool_uses import ToolStatus, ToolUse
from app.ui.common.markdown_html import Palette

#: Each status in a few words, and its colour (light, dark).
STATUS = {
    ToolStatus.PENDING: ("Waiting for you", "#9a6700", "#d29922"),
    ToolStatus.RUNNING: ("Running…", "#0969da", "#4493f8"),
    ToolStatus.DONE: ("Done", "#1a7f37", "#3fb950"),
    ToolStatus.FAILED: ("Failed", "#d1242f", "#ff7b72"),
    ToolStatus.TIMED_OUT: ("Timed out", "#d1242f", "#ff7b72"),
    ToolStatus.DENIED: ("Denied", "#656d76", "#9198a1"),
}
#: The most characters of a result shown unfolded (the whole result went to the model).
SHOWN_RESULT_CHARS = 4000


def anchor(action: str, index: int) -> str:
    """The link of an action on call `index`: "once", "always", "deny" or "fold"."""
    return f"tool:{action}:{index}"


def parse_anchor(text: str) -> tuple[str, int] | None:
    """(action, index) of a card's link, or None for any other link."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "tool" or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def _arguments(use: ToolUse) -> str:
    try:
        return json.dumps(json.loads(use.arguments or "{}"), indent=1, ensure_ascii=False)
    except ValueError:
        return use.arguments


def card_html(use: ToolUse, index: int, palette: Palette, dark: bool) -> str:
    """One call as a card."""
    words, light_colour, dark_colour = STATUS[use.status]
    colour = dark_colour if dark else light_colour
    link = f"color:{palette.link};"
    rows = [
        f"<b>Tool call</b>&nbsp;&nbsp;<code>{html.escape(use.name)}</code>"
        f'&nbsp;&nbsp;<span style="color:{colour};">● {words}</span>',
        f'<pre style="font-family: monospace; margin: 4px 0; white-space: pre-wrap;">'
        f"{html.escape(_arguments(use))}</pre>",
    ]
    if use.status is ToolStatus.PENDING:
        choices = [("once", "Allow once"), ("always", "Always allow this tool"), ("deny", "Deny")]
        rows.append(
            "&nbsp;&nbsp;·&nbsp;&nbsp;".join(
                f'<a href="{anchor(action, index)}" style="{link}">{words}</a>' for action, words in choices
            )
        )
    elif use.status.settled and use.status is not ToolStatus.DENIED:
        label = "Result" if use.status is ToolStatus.DONE else "Error"
        size = f"{len(use.result):,} character{'' if len(use.result) == 1 else 's'}"
        if use.unfolded:
            cut = len(use.result) > SHOWN_RESULT_CHARS
            shown = use.result[:SHOWN_RESULT_CHARS] + ("\n[…]" if cut else "")
            rows.append(f'<a href="{anchor("fold", index)}" style="{link}">▾ Hide {label.lower()}</a>')
            rows.append(
                f'<pre style="font-family: monospace; margin: 4px 0 0 0; white-space: pre-wrap;">'
                f"{html.escape(shown) or '(empty)'}</pre>"
            )
        else:
            rows.append(f'<a href="{anchor("fold", index)}" style="{link}">▸ {label} ({size})</a>')
    return (
        f'<table width="100%" cellspacing="0" cellpadding="8" '
        f'style="border: 1px solid {palette.border}; margin: 6px 0;">'
        f"<tr><td>{'<br>'.join(rows)}</td></tr></table>"
    )


def cards_html(uses: list[ToolUse], palette: Palette, dark: bool) -> str:
    """Every call of a reply, as cards."""
    return "".join(card_html(use, index, palette, dark) for index, use in enumerate(uses))


def cards_text(uses: list[ToolUse]) -> str:
    """The calls in words, for a screen reader and for Copy."""
    lines = []
    for use in uses:
        words = STATUS[use.status][0]
        lines.append(f"Tool call {use.name} ({words}): {use.arguments}")
        if use.status.settled and use.status is not ToolStatus.DENIED:
            lines.append(f"{'Result' if use.status is ToolStatus.DONE else 'Error'}: {use.result[:500]}")
    return "\n".join(lines)
