"""Documents read locally: PDF (pdfium), HTML, text and source files, cut into passages; each file
that cannot be read (a password, a scan, damage, 2 GB, binary, gone) is a clear DocumentError."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.media.chunking import TARGET_CHARS, chunk_pages
from app.core.media.documents import MAX_DOCUMENT_BYTES, DocumentError, is_document, read_document
from tests.documents_text import PAGES
from tests.pdf_writer import pdf_bytes, write_encrypted_pdf, write_pdf


def test_a_pdf_is_read_page_by_page(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "facts.pdf", PAGES)
    seen: list[tuple[int, int]] = []
    text = read_document(path, lambda done, total: seen.append((done, total)) or True)
    assert text.kind == "pdf" and len(text.pages) == len(PAGES)
    assert "Marta Olsen" in text.pages[0] and "Aletsch" in text.pages[1] and "Aletsch" not in text.pages[0]
    assert seen[-1] == (len(PAGES), len(PAGES)) and len(seen) == len(PAGES)
    assert text.chars > 3000


def test_html_is_read_as_the_text_a_browser_shows(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>t</title><style>p {color: red}</style></head><body><h1>Ovens</h1>"
        "<p>The oven is &amp; was <b>hot</b>.</p><script>alert('no')</script>"
        "<ul><li>one</li><li>two</li></ul>"
        "</body></html>"
    )
    text = read_document(page)
    assert text.kind == "html"
    assert text.pages[0].splitlines() == ["Ovens", "The oven is & was hot.", "one", "two"]


def test_text_markdown_and_source_files_are_read_as_they_are(tmp_path: Path) -> None:
    for name, body in (("notes.md", "# Title\n\nSome *text*."), ("main.py", "def f():\n    return 1\n")):
        (tmp_path / name).write_text(body)
        assert read_document(tmp_path / name).pages == (body,)
    latin = tmp_path / "old.txt"
    latin.write_bytes("café crème".encode("cp1252"))
    assert read_document(latin).pages == ("café crème",)
    utf16 = tmp_path / "wide.txt"
    utf16.write_bytes("hello wide".encode("utf-16"))
    assert read_document(utf16).pages == ("hello wide",)
    assert is_document("Report.PDF") and is_document("x.rs") and not is_document("photo.png")


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: write_encrypted_pdf(p, PAGES[:2]), "protected by a password"),
        (lambda p: write_pdf(p, ["one", "two", "three"], images_only=True), "looks like a scan"),
        (lambda p: p.write_bytes(pdf_bytes(PAGES[:3])[:700]), "damaged"),
        (lambda p: p.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50), "damaged"),
        (lambda p: None, "no longer there"),
        (lambda p: p.mkdir(), "is a folder"),
    ],
    ids=["encrypted", "scanned", "truncated", "garbage", "vanished", "folder"],
)
def test_a_pdf_that_cannot_be_read_says_why(tmp_path: Path, make: object, said: str) -> None:
    path = tmp_path / "report.pdf"
    make(path)  # type: ignore[operator]
    with pytest.raises(DocumentError, match=said) as raised:
        read_document(path)
    assert "report.pdf" in str(raised.value)


def test_a_2_gb_document_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "archive.pdf"
    with huge.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: two gigabytes that take no disk space
    assert huge.stat().st_size > MAX_DOCUMENT_BYTES
    with pytest.raises(DocumentError, match=r"2\.1 GB: documents of up to 256 MB"):
        read_document(huge)


def test_binary_and_empty_files_are_not_text(tmp_path: Path) -> None:
    binary = tmp_path / "data.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(DocumentError, match="not a text file"):
        read_document(binary)
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    with pytest.raises(DocumentError, match="is empty"):
        read_document(empty)


def test_reading_a_pdf_can_be_stopped(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "long.pdf", PAGES)
    with pytest.raises(DocumentError, match="was stopped"):
        read_document(path, lambda done, total: done < 3)


def test_passages_keep_their_page_and_never_cross_one() -> None:
    pages = ["Short first page.", " ".join(f"Sentence number {i} of a long page." for i in range(200)), ""]
    passages = chunk_pages(pages)
    assert passages[0].page == 1 and passages[0].text == "Short first page."
    long_ones = [p for p in passages if p.page == 2]
    assert len(long_ones) > 3 and all(len(p.text) <= TARGET_CHARS + 40 for p in long_ones)
    assert all(p.text.startswith("Sentence number") for p in long_ones)  # cut between sentences
    assert " ".join(p.text for p in long_ones).split() == pages[1].split()  # nothing lost or doubled
    blob = chunk_pages(["x" * 5000])
    assert sum(len(p.text) for p in blob) == 5000 and max(len(p.text) for p in blob) <= TARGET_CHARS
