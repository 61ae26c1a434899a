"""What the attachment strip says of each attachment (its tooltip and its screen-reader name)."""

from __future__ import annotations

from app.core.media.attachments import Attachment
from app.ui.chat.attachments import describe


def test_an_attached_image_larger_than_it_is_read_says_to_what() -> None:
    big = Attachment("image", "panorama.jpg", "image/jpeg", "a" * 64, 10, 8000, 2000)
    assert describe(big) == "panorama.jpg, 8,000 × 2,000 pixels, read as 2,048 × 512"
    small = Attachment("image", "icon.png", "image/png", "b" * 64, 10, 64, 64)
    assert describe(small) == "icon.png, 64 × 64 pixels"


def test_a_document_says_its_pages_and_text() -> None:
    report = Attachment("document", "report.pdf", "application/pdf", "c" * 64, 10, 12, 34_567)
    assert describe(report) == "report.pdf, 12 pages, 34,567 characters of text"
