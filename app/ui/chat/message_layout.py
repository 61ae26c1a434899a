"""Layout of the message list's rows: each message's document, its height, where its bubble goes and
where each row starts.

A row's height is measured from its laid-out document or, for a row not seen yet, estimated from its
text's length. The rows' tops are a list of running totals (tops[i] = y of row i, tops[-1] = the
total height): growing the last row changes one entry, and the row at a y is a bisect away.
"""

from __future__ import annotations

import bisect
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QRect, QUrl
from PySide6.QtGui import QFont, QFontMetrics, QPalette, QTextCursor, QTextDocument, QTextOption

from app.core.chat.messages import Message, Role
from app.core.media.attachments import default_folder
from app.ui.chat.tool_cards import cards_html
from app.ui.common.markdown_html import render_markdown
from app.ui.common.theme import is_dark, markdown_palette

MARGIN = 16  # left/right margin of the list
MAX_COLUMN = 880  # widest text column: long lines are hard to read on a maximised window
GAP = 14  # vertical space between messages
PAD = 10  # padding inside a bubble
USER_MAX_FRACTION = 0.78  # a user bubble takes at most this share of the width
#: A sent image's thumbnail is this many text lines high (it grows with the text size).
THUMB_LINES = 4.5
#: Links of a message's images ("image:0" opens its first attachment).
IMAGE_SCHEME = "image:"
#: Links of a reply's sources ("source:1" opens its first).
SOURCE_SCHEME = "source:"


@dataclass(slots=True)
class Row:
    """Layout of one message at the current width."""

    doc: QTextDocument | None = None
    height: int = 0
    bubble: QRect = field(default_factory=QRect)  # relative to the row's top
    code_blocks: tuple[str, ...] = ()
    streaming_plain: bool = False  # doc holds appended raw text since the last Markdown render
    dirty: bool = True
    #: False while `height` is an estimate from the text's length (rows are measured when first seen).
    measured: bool = False

    def append_plain(self, delta: str) -> bool:
        """Add streamed text to the end of the document as is and grow the bubble by what it adds;
        True when the row's height changed. O(new text): nothing else is laid out again."""
        doc = self.doc
        assert doc is not None
        cursor = QTextCursor(doc)
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(delta)
        self.streaming_plain = True
        old_height = self.height
        new_doc_h = int(doc.size().height() + 0.5)
        self.height = old_height - (self.bubble.height() - 2 * PAD) + new_doc_h
        self.bubble.setHeight(new_doc_h + 2 * PAD)
        return self.height != old_height


def column_width(viewport_width: int) -> int:
    """Width of the text column in a viewport `viewport_width` wide."""
    return max(200, min(MAX_COLUMN, viewport_width - 2 * MARGIN))


def column_left(viewport_width: int) -> int:
    """x of the (centred) text column in a viewport `viewport_width` wide."""
    return max(MARGIN, (viewport_width - column_width(viewport_width)) // 2)


def header_and_footer_fonts(font: QFont) -> tuple[QFont, QFont]:
    """The bold font of a message's header and the smaller one of its footer, made from `font`."""
    header = QFont(font)
    header.setBold(True)
    small = QFont(font)
    small.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
    return header, small


def footer_text(message: Message) -> str:
    """The line under a message: its error, "Generating…" (or that it waits), that it was cut off, or
    its statistics (empty when none)."""
    if message.error:
        return message.error
    if message.streaming:
        if message.waiting:
            plural = "s" if message.waiting > 1 else ""
            return f"Waiting for {message.waiting} API request{plural} to finish…"
        return "Generating…"
    if message.incomplete:  # cut off: Fireside stopped (a crash, a power cut) while writing it
        return (
            "Incomplete: the reply was cut off before it finished. Right-click to continue or regenerate it."
        )
    if message.stats is not None:
        return message.stats.summary()
    return ""


def has_versions(message: Message) -> bool:
    """Whether a message has other versions to switch to (its footer then shows "‹ n/m ›")."""
    return message.version is not None and message.version[1] > 1


def version_text(version: tuple[int, int]) -> str:
    """The version switch under a message: "‹ 2/3 ›"."""
    return f"‹ {version[0]}/{version[1]} ›"


def build_document(row: Row, message: Message, font: QFont, palette: QPalette, plain: bool = False) -> None:
    """Give `row` a new document of `message`: Markdown for a reply, as typed for the user's text, and
    plain text for a reply when `plain` (its Markdown render then follows on the view's render timer)."""
    # No Qt parent: the document lives exactly as long as the row references it.
    doc = QTextDocument()
    doc.setDocumentMargin(0)
    doc.setDefaultFont(font)
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    doc.setDefaultTextOption(option)
    if message.role is Role.USER and message.attachments and not plain:
        doc.setHtml(attachments_html(message, font))
        row.code_blocks = ()
    elif message.role is Role.USER or plain:
        doc.setPlainText(message.content)
        row.code_blocks = ()
        if plain and message.role is not Role.USER:
            row.doc = doc
            row.streaming_plain = True  # shown as text until the throttled Markdown render
            return
    else:
        colours = markdown_palette(palette)
        rendered = render_markdown(message.content, colours, font.pointSizeF())
        cards = cards_html(message.tool_uses, colours, is_dark(palette)) if message.tool_uses else ""
        doc.setHtml(rendered.html + cards + sources_html(message, font))
        row.code_blocks = rendered.code_blocks
    row.doc = doc
    row.streaming_plain = False


def attachments_html(message: Message, font: QFont) -> str:
    """A user message with attachments: its images' thumbnails (each a link that opens the
    picture), its documents' names and pages, then its text as typed."""
    side = round(THUMB_LINES * QFontMetrics(font).height())
    folder = default_folder()
    tiles, documents = [], []
    for index, attachment in enumerate(message.attachments):
        if attachment.kind == "document":
            pages = f"{attachment.width:,} page{'s' if attachment.width != 1 else ''}"
            documents.append(f"<b>{html.escape(attachment.name)}</b> · {pages}")
            continue
        path = folder.thumbnail_path(attachment)
        width, height = _fitted(attachment.width, attachment.height, side)
        label = html.escape(f"{attachment.name} ({attachment.width:,} × {attachment.height:,})", quote=True)
        if path.exists():
            picture = (
                f'<img src="{QUrl.fromLocalFile(str(path)).toString()}" width="{width}" height="{height}" '
                f'alt="{label}" title="{label}">'
            )
        else:  # gone from the data folder: its name stands in
            picture = f"[{html.escape(attachment.name)}: not in the data folder]"
        tiles.append(f'<a href="{IMAGE_SCHEME}{index}">{picture}</a>')
    text = html.escape(message.content).replace("\n", "<br>")
    parts = [f"<p>{'&nbsp;'.join(tiles)}</p>"] if tiles else []
    parts += [f"<p>{'<br>'.join(documents)}</p>"] if documents else []
    return "".join(parts) + (f"<p>{text}</p>" if text else "")


def sources_html(message: Message, font: QFont) -> str:
    """A reply's sources under its text: each numbered, with its file, page and first words, a
    link that opens the passage ("" for a reply without sources)."""
    if not message.sources:
        return ""
    rows = []
    for source in message.sources:
        where = html.escape(f"{source.name} · page {source.page}")
        link = f'<a href="{SOURCE_SCHEME}{source.number}">'
        snippet = html.escape(source.snippet)
        rows.append(
            f'<tr><td valign="top">{link}[{source.number}]</a>&nbsp;</td>'
            f"<td>{link}{where}</a><br>{snippet}</td></tr>"
        )
    size = max(7.0, font.pointSizeF() * 0.9)
    return (
        f'<p style="font-size:{size:.1f}pt"><b>Sources</b></p>'
        f'<table cellspacing="2" style="font-size:{size:.1f}pt">{"".join(rows)}</table>'
    )


def source_number(anchor: str) -> int | None:
    """The source a reply's source link opens (None for any other link)."""
    if not anchor.startswith(SOURCE_SCHEME):
        return None
    rest = anchor[len(SOURCE_SCHEME) :]
    return int(rest) if rest.isdigit() else None


def image_index(anchor: str) -> int | None:
    """The attachment a message's image link opens (None for any other link)."""
    if not anchor.startswith(IMAGE_SCHEME):
        return None
    rest = anchor[len(IMAGE_SCHEME) :]
    return int(rest) if rest.isdigit() else None


def _fitted(width: int, height: int, side: int) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        return side, side
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def measure(row: Row, message: Message, width: int, header_font: QFont, small_font: QFont) -> None:
    """Lay out `row`'s document at column width `width` and set its bubble and height from it."""
    doc = row.doc
    assert doc is not None
    header_h = QFontMetrics(header_font).height() + 4
    has_footer = bool(footer_text(message)) or has_versions(message)
    footer_h = QFontMetrics(small_font).height() + 6 if has_footer else 0
    if message.role is Role.USER:
        max_w = int(width * USER_MAX_FRACTION) - 2 * PAD
        doc.setTextWidth(max_w)
        text_w = min(max_w, int(doc.idealWidth()) + 1)
        bubble_w = max(text_w, 24) + 2 * PAD
        x = width - bubble_w
    else:
        bubble_w = width
        doc.setTextWidth(width - 2 * PAD)
        x = 0
    doc_h = int(doc.size().height() + 0.5)
    row.bubble = QRect(x, header_h, bubble_w, doc_h + 2 * PAD)  # relative to the column
    row.height = header_h + doc_h + 2 * PAD + footer_h + GAP
    row.measured = True


def height_estimator(
    width: int, font: QFont, header_font: QFont, small_font: QFont
) -> Callable[[Message], int]:
    """A function giving a row's height from its text's length, without building its document.

    Laying out thousands of Markdown documents takes seconds, so rows are measured only when they
    come into view; until then their height is this estimate. Font metrics are read once here: per
    row they would cost more than the estimate itself."""
    metrics = QFontMetrics(font)
    char_w = max(1, metrics.averageCharWidth())
    line_h = metrics.lineSpacing()
    header_h = QFontMetrics(header_font).height() + 4
    footer_line = QFontMetrics(small_font).height() + 6
    per_line = {
        Role.USER: max(1, (int(width * USER_MAX_FRACTION) - 2 * PAD) // char_w),
        Role.ASSISTANT: max(1, (width - 2 * PAD) // char_w),
        Role.SYSTEM: max(1, (width - 2 * PAD) // char_w),
    }
    fixed = header_h + 2 * PAD + GAP
    thumbs = round(THUMB_LINES * metrics.height()) + line_h

    def estimate(message: Message) -> int:
        n = per_line[message.role]
        lines = sum(len(part) // n + 1 for part in message.content.split("\n"))
        if message.attachments:
            lines += thumbs // max(1, line_h)
        footer = (
            footer_line if (message.stats or message.error or message.incomplete or message.version) else 0
        )
        return fixed + lines * line_h + footer

    return estimate


def estimate_all(
    rows: Sequence[Row], message: Callable[[int], Message], estimate: Callable[[Message], int]
) -> list[int]:
    """Give every row its estimated height (marking it not measured) and return the tops that follow."""
    tops = [0]
    total = 0
    for i, row in enumerate(rows):
        row.measured = False
        row.height = estimate(message(i))
        total += row.height
        tops.append(total)
    return tops


def restack(rows: Sequence[Row], tops: list[int], first: int) -> None:
    """Recompute `tops` after row `first` changed height: O(rows after it), O(1) for the last row."""
    for i in range(first, len(rows)):
        tops[i + 1] = tops[i] + rows[i].height


def rows_between(tops: Sequence[int], top: int, bottom: int) -> range:
    """The rows that overlap the band from y `top` to y `bottom`."""
    first = max(0, bisect.bisect_right(tops, top) - 1)
    last = min(len(tops) - 1, bisect.bisect_left(tops, bottom))
    return range(first, last)


def row_at_y(tops: Sequence[int], y: int) -> int:
    """The row at y `y`, or -1 above the first and below the last."""
    row = bisect.bisect_right(tops, y) - 1
    return row if 0 <= row < len(tops) - 1 else -1
