"""Images before a vision model sees them: every accepted format read, huge ones scaled or refused
before their pixels are decoded, and each damaged input a clear ImageError."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from app.core.media.images import (
    MAX_SIDE,
    DecodedCache,
    ImageError,
    ImageSource,
    content_text,
    decode,
    image_part,
    message_images,
    probe,
)


def encoded(kind: str, size: tuple[int, int] = (40, 30), mode: str = "RGB", **save: object) -> bytes:
    image = Image.new(mode, size, "red" if mode != "P" else 1)
    out = io.BytesIO()
    image.save(out, kind, **save)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width` × `height` (its pixels are never there): what a 20,000-pixel image
    looks like to anything that reads the header first."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_accepted_format_is_read_as_rgb(kind: str) -> None:
    data = encoded(kind)
    image = decode(ImageSource(data, f"x.{kind.lower()}"))
    assert (image.width, image.height) == (40, 30)
    assert len(image.pixels) == 40 * 30 * 3
    assert image.format == kind and not image.scaled
    assert image.digest == ImageSource(data).digest


def test_an_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "blue", "green")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = decode(ImageSource(out.getvalue(), "moving.gif"))
    assert image.pixels[:3] == bytes((255, 0, 0))


def test_a_transparent_or_grey_image_becomes_rgb() -> None:
    for mode in ("RGBA", "L", "P"):
        image = decode(ImageSource(encoded("PNG", mode=mode)))
        assert len(image.pixels) == 40 * 30 * 3


def test_a_large_image_is_scaled_down_keeping_its_shape_and_says_so() -> None:
    image = decode(ImageSource(encoded("PNG", (3000, 1500))))
    assert (image.width, image.height) == (MAX_SIDE, MAX_SIDE // 2)
    assert image.scaled and image.original == (3000, 1500)
    assert image.describe() == "scaled from 3,000 × 1,500 to 2,048 × 1,024"
    jpeg = decode(ImageSource(encoded("JPEG", (5000, 2500))))  # read reduced, then fitted
    assert (jpeg.width, jpeg.height) == (MAX_SIDE, MAX_SIDE // 2)


def test_a_20000_pixel_image_is_refused_before_its_pixels_are_read() -> None:
    with pytest.raises(ImageError, match=r"“huge.png” is too large \(400 megapixels\).*Scale it down"):
        decode(ImageSource(png_header_only(20_000, 20_000), "huge.png"))
    # Under Pillow's own limit, above Fireside's: the size is named.
    with pytest.raises(ImageError, match=r"12,000 × 10,000 pixels \(120 megapixels\)"):
        probe(png_header_only(12_000, 10_000), "big.png")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"%PDF-1.7 not a picture at all", "not an image Fireside can read"),
        (encoded("PNG")[:60], "damaged"),
        (encoded("JPEG")[:200], "damaged or cut short"),
        (encoded("PNG")[:8] + b"\x00" * 64, "not an image"),
    ],
    ids=["empty", "pdf", "truncated-png", "truncated-jpeg", "garbage-after-signature"],
)
def test_what_is_not_a_whole_image_is_a_clear_error_naming_the_file(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message) as raised:
        decode(ImageSource(data, "holiday.png"))
    assert "holiday.png" in str(raised.value)


def test_message_parts_give_their_images_and_text_with_a_marker() -> None:
    picture = ImageSource(encoded("PNG"), "a.png")
    content = [image_part(picture), {"type": "text", "text": "What is <m> this?"}]
    assert message_images(content) == [picture]
    assert message_images("plain text") == []
    assert content_text(content, "<m>") == "<m>What is  this?"  # a marker the user typed is not an image
    assert content_text(content) == "What is <m> this?"


def test_the_cache_decodes_an_image_once_and_forgets_the_oldest() -> None:
    cache = DecodedCache(count=2)
    sources = [ImageSource(encoded("PNG", (10 + i, 10))) for i in range(3)]
    first = cache.get(sources[0])
    assert cache.get(sources[0]) is first
    cache.get(sources[1])
    cache.get(sources[2])
    assert cache.get(sources[0]) is not first  # evicted, decoded again
