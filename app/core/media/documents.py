"""Documents a user attaches: their text, read locally, page by page.

PDF through pypdfium2 (PDFium, the PDF engine of Chrome: fast, and it survives damaged files);
HTML as the text a browser shows (scripts and styles left out); plain text, Markdown and source
files as they are. Each failure is a DocumentError with a message for the user: a PDF with a
password, one with no text layer (a scan), a damaged or truncated one, a file too large, a binary
file that is not text. Nothing is sent anywhere: the text stays on this computer.
"""

from __future__ import annotations

import html.parser
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

#: The largest document read (a 2 GB PDF is refused before a byte of it is read).
MAX_DOCUMENT_BYTES = 256 << 20
#: The most text kept of one document (about 2.5 million tokens: far beyond any context).
MAX_TEXT_CHARS = 10_000_000
#: File name endings read as text: prose, data and source code.
TEXT_SUFFIXES = (
    ".txt", ".md", ".markdown", ".rst", ".org", ".tex", ".csv", ".tsv", ".json", ".jsonl", ".yaml",
    ".yml", ".toml", ".ini", ".cfg", ".conf", ".log", ".xml", ".py", ".pyi", ".js", ".mjs", ".ts",
    ".tsx", ".jsx", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".java", ".kt", ".go", ".rs", ".rb",
    ".php", ".swift", ".m", ".scala", ".lua", ".pl", ".r", ".sql", ".sh", ".bash", ".zsh", ".ps1",
    ".bat", ".css", ".scss", ".vue", ".svelte", ".dart", ".zig", ".hs", ".ex", ".exs", ".clj",
)  # fmt: skip
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
PDF_SUFFIXES = (".pdf",)
#: Every ending Fireside reads as a document (for file dialogs and dropped files).
SUFFIXES = PDF_SUFFIXES + HTML_SUFFIXES + TEXT_SUFFIXES
#: PDFium is not thread-safe: one document is read at a time.
_PDFIUM = threading.Lock()


class DocumentError(ValueError):
    """A document could not be read; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class DocumentText:
    """A document's text: one string per page (a text file is one page)."""

    name: str
    kind: str  # "pdf" | "html" | "text"
    pages: tuple[str, ...]

    @property
    def chars(self) -> int:
        """How many characters of text it holds."""
        return sum(len(page) for page in self.pages)


def is_document(name: str) -> bool:
    """A file Fireside reads as a document, by its name."""
    return name.lower().endswith(SUFFIXES)


def read_document(
    path: Path, progress: Callable[[int, int], bool] | None = None, name: str | None = None
) -> DocumentText:
    """The text of the document at `path` (DocumentError saying why it cannot be read).
    `progress(done, total)` is called after each PDF page; returning False stops the reading."""
    name = name or path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise DocumentError(f"“{name}” is no longer there (it was moved or deleted).") from exc
    except OSError as exc:
        raise DocumentError(f"“{name}” could not be read: {exc.strerror or exc}.") from exc
    if path.is_dir():
        raise DocumentError(f"“{name}” is a folder, not a file.")
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            f"“{name}” is {size / 1e9:,.1f} GB: documents of up to {MAX_DOCUMENT_BYTES >> 20} MB can be "
            "attached. Split it, or attach the chapters you need."
        )
    lowered = name.lower()
    if lowered.endswith(PDF_SUFFIXES):
        return _pdf(path, name, progress)
    data = _read(path, name)
    if lowered.endswith(HTML_SUFFIXES):
        return DocumentText(name, "html", (_html_text(_decode(data, name)),))
    return DocumentText(name, "text", (_decode(data, name),))


def _read(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DocumentError(f"“{name}” is no longer there (it was moved or deleted).") from exc
    except OSError as exc:
        raise DocumentError(f"“{name}” could not be read: {exc.strerror or exc}.") from exc


def _decode(data: bytes, name: str) -> str:
    """Text from bytes: UTF-8 (with or without a BOM), else UTF-16 with a BOM, else Latin-1; a file
    with NUL bytes in its first block is binary, not text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", "replace")
    elif b"\x00" in data[:8192]:
        raise DocumentError(f"“{name}” is not a text file (it holds binary data).")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", "replace")
    if not text.strip():
        raise DocumentError(f"“{name}” is empty.")
    return text[:MAX_TEXT_CHARS]


class _TextOfHtml(html.parser.HTMLParser):
    """The text a browser would show: scripts, styles and the head left out, blocks as lines."""

    BLOCKS: ClassVar[frozenset[str]] = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section", "article"}
    )
    HIDDEN: ClassVar[frozenset[str]] = frozenset({"script", "style", "head", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _html_text(markup: str) -> str:
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return "\n".join(line for line in lines if line)


def _pdf(path: Path, name: str, progress: Callable[[int, int], bool] | None) -> DocumentText:
    import pypdfium2 as pdfium

    pages: list[str] = []
    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            reason = str(exc).lower()
            if "password" in reason:
                raise DocumentError(
                    f"“{name}” is protected by a password. Open it in a PDF reader, save a copy without "
                    "the password, and attach that."
                ) from exc
            raise DocumentError(f"“{name}” is damaged or is not a PDF, and cannot be read.") from exc
        except OSError as exc:
            raise DocumentError(f"“{name}” could not be read: {exc.strerror or exc}.") from exc
        try:
            total = len(document)
            chars = 0
            for index in range(total):
                page = document[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        text = textpage.get_text_range()
                    finally:
                        textpage.close()
                finally:
                    page.close()
                # PDFium ends lines with CRLF and marks soft hyphens; plain newlines read better.
                text = (
                    text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufffe", "").replace("\x02", "")
                )
                pages.append(text)
                chars += len(text)
                if chars > MAX_TEXT_CHARS:
                    break
                if progress is not None and not progress(index + 1, total):
                    raise DocumentError(f"Reading “{name}” was stopped.")
        finally:
            document.close()
    if not any(page.strip() for page in pages):
        raise DocumentError(
            f"“{name}” has no text to read: it looks like a scan (pictures of pages). Fireside reads a "
            "PDF's text layer; run it through text recognition (OCR) first."
        )
    return DocumentText(name, "pdf", tuple(pages))
