"""Write small, real PDF files for the document tests: pages of text in a standard font (no font file
needed: Helvetica is one of PDF's base fonts), with a correct cross-reference table, so any PDF
reader (pdfium included) extracts the text back. Also damaged, image-only and encrypted ones."""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from pathlib import Path

#: Points per line, and lines a page holds at 11 pt on A4.
LEADING = 14
LINES_PER_PAGE = 52


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _wrap(paragraph: str, width: int = 95) -> list[str]:
    lines, line = [], ""
    for word in paragraph.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines or [""]


def pdf_bytes(pages: Sequence[str], *, images_only: bool = False) -> bytes:
    """A PDF with one page per item of `pages` (each text wrapped into lines). With `images_only`,
    each page is a grey rectangle and no text: what a scanned document looks like to a text reader."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    page_tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for text in pages:
        if images_only:
            stream = b"0.6 g 72 72 451 698 re f"
        else:
            lines = [line for paragraph in text.split("\n") for line in _wrap(paragraph)]
            ops = ["BT", "/F1 11 Tf", f"{LEADING} TL", "72 770 Td"]
            for line in lines[:LINES_PER_PAGE]:
                ops.append(f"({_escape(line)}) Tj T*")
            ops.append("ET")
            stream = "\n".join(ops).encode("cp1252", "replace")
        packed = zlib.compress(stream)
        content = add(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"
        )
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (page_tree, content, font)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % page_tree
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects[page_tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref)
    )
    return out.getvalue()


def write_pdf(path: Path, pages: Sequence[str], *, images_only: bool = False) -> Path:
    """Write pdf_bytes(pages) to `path`."""
    path.write_bytes(pdf_bytes(pages, images_only=images_only))
    return path


def write_encrypted_pdf(path: Path, pages: Sequence[str], password: str = "secret") -> Path:
    """The same PDF protected by a password (pypdf encrypts it: AES-128)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(pages))))
    writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
    with path.open("wb") as handle:
        writer.write(handle)
    return path
