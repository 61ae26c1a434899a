"""Images a user attaches or an API client sends: checked, decoded and scaled before a vision model
sees them.

An image arrives as the bytes of a file (PNG, JPEG, WebP, GIF: its first frame, BMP). It is
decoded to RGB pixels here, never by llama.cpp (whose decoder would read a 20,000-pixel-wide image
whole): its size is known before its pixels are read, a JPEG is read already reduced, and anything
larger than MAX_SIDE on its longer side is scaled down to it, which vision encoders do anyway (they
see a few hundred pixels a side). Each failure is an ImageError with a message for the user.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

#: The longest side an image keeps: more detail than any vision encoder reads, at 12 MB of pixels.
MAX_SIDE = 2048
#: Larger images are refused rather than decoded (a 100-megapixel RGBA image is 400 MB of memory).
MAX_PIXELS = 100_000_000
#: The formats accepted, by Pillow's name, with how a user knows them.
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF", "BMP": "BMP"}
#: File name endings of those formats (for file dialogs and dropped files).
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
#: The media type of each format (data: URLs, the JSON export).
MEDIA_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}


class ImageError(ValueError):
    """An image could not be used; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class ImageSource:
    """An image as it was given, not decoded yet: the file's bytes, or the file they are read from
    when a model needs them (a conversation's images are not all read for every turn)."""

    data: bytes = field(default=b"", repr=False)
    name: str = "image"
    path: Path | None = None
    #: The sha256 of the bytes when known already (a kept attachment is named by it).
    sha256: str | None = None

    def read(self) -> bytes:
        """The file's bytes (ImageError when the file is gone)."""
        if self.path is None:
            return self.data
        try:
            return self.path.read_bytes()
        except FileNotFoundError as exc:
            raise ImageError(f"The image “{self.name}” is no longer in the data folder.") from exc
        except OSError as exc:
            raise ImageError(f"The image “{self.name}” could not be read: {exc.strerror or exc}.") from exc

    @property
    def digest(self) -> str:
        """The sha256 of the bytes (hex): the same image always has the same one."""
        return self.sha256 or hashlib.sha256(self.read()).hexdigest()


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An image's RGB pixels (row by row, 3 bytes each), ready for a vision encoder."""

    pixels: bytes = field(repr=False)
    width: int
    height: int
    #: The size of the file's own picture, before any scaling.
    original: tuple[int, int]
    format: str
    digest: str

    @property
    def scaled(self) -> bool:
        """True when the image was scaled down to fit MAX_SIDE."""
        return (self.width, self.height) != self.original

    def describe(self) -> str:
        """Its size for the user ("800 × 600", or "scaled from 20,000 × 20,000 to 2,048 × 2,048")."""
        size = f"{self.width:,} × {self.height:,}"
        if not self.scaled:
            return size
        return f"scaled from {self.original[0]:,} × {self.original[1]:,} to {size}"


def probe(data: bytes, name: str = "image") -> tuple[str, int, int]:
    """The format, width and height of an image file, read from its header (ImageError if it is
    not an image of an accepted format, or is too large to use)."""
    with _opened(data, name) as image:
        return str(image.format), image.width, image.height


def decode(source: ImageSource, max_side: int = MAX_SIDE) -> DecodedImage:
    """The image's pixels, scaled down to `max_side` on its longer side (ImageError if unusable)."""
    name = source.name
    with _opened(source.read(), name) as image:
        original = (image.width, image.height)
        kind = str(image.format)
        if kind == "JPEG":
            image.draft("RGB", _fitted(original, max_side))  # read already reduced: far less memory
        try:
            image.seek(0)  # an animated GIF or WebP: its first frame
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or damaged pixel data
            raise ImageError(
                f"“{name}” is damaged or cut short and cannot be read ({_reason(exc)})."
            ) from exc
        rgb = image.convert("RGB") if image.mode != "RGB" else image
        if max(rgb.size) > max_side:
            rgb = rgb.resize(_fitted(rgb.size, max_side), Image.Resampling.LANCZOS)
        return DecodedImage(rgb.tobytes(), rgb.width, rgb.height, original, kind, source.digest)


def media_type(data: bytes) -> str:
    """The media type of an image file ("image/png"...; ImageError if it is not one)."""
    kind, _, _ = probe(data)
    return MEDIA_TYPES[kind]


class _opened:
    """Opens image bytes with Pillow, turning each way it can fail into an ImageError."""

    def __init__(self, data: bytes, name: str) -> None:
        self._data, self._name = data, name
        self._image: Image.Image | None = None

    def __enter__(self) -> Image.Image:
        name = self._name
        if not self._data:
            raise ImageError(f"“{name}” is empty.")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(self._data), formats=list(FORMATS))
        except UnidentifiedImageError as exc:
            accepted = ", ".join(FORMATS.values())
            raise ImageError(f"“{name}” is not an image Fireside can read (it reads {accepted}).") from exc
        except Image.DecompressionBombError as exc:  # Pillow's own limit, checked as it opens
            found = re.search(r"\((\d+) pixels\)", str(exc))
            size = f" ({int(found.group(1)) / 1e6:,.0f} megapixels)" if found else ""
            raise ImageError(f"“{name}” is too large{size}: {_limit()}") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(
                f"“{name}” is damaged or cut short and cannot be read ({_reason(exc)})."
            ) from exc
        self._image = image
        width, height = image.width, image.height
        if width <= 0 or height <= 0:
            image.close()
            raise ImageError(f"“{name}” has no pixels.")
        pixels = width * height
        if pixels > MAX_PIXELS and image.format != "JPEG":  # a JPEG is read reduced (draft)
            image.close()
            raise ImageError(
                f"“{name}” is {width:,} × {height:,} pixels ({pixels / 1e6:,.0f} megapixels): {_limit()}"
            )
        return image

    def __exit__(self, *exc: object) -> None:
        if self._image is not None:
            self._image.close()


def _limit() -> str:
    limit = MAX_PIXELS // 1_000_000
    return f"more than the {limit} megapixels Fireside reads. Scale it down and attach it again."


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled to fit `max_side` on its longer side (unchanged when it fits)."""
    width, height = size
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    return text or type(exc).__name__


def image_part(source: ImageSource) -> dict[str, Any]:
    """A message content part holding an image (beside {"type": "text", "text": ...} parts)."""
    return {"type": "image", "image": source}


def message_images(content: object) -> list[ImageSource]:
    """The images in a message's content (a string has none)."""
    if not isinstance(content, list):
        return []
    return [part["image"] for part in content if isinstance(part, dict) and part.get("type") == "image"]


#: What an earlier image becomes in the prompt of a model that reads text only.
UNSEEN_IMAGE = "[An image was attached here; the model now answering reads text only.]"


def images_as_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` with every image written as UNSEEN_IMAGE: a conversation that holds images goes on
    with a model that reads none (the new turn's images are refused before it is sent)."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and message_images(content):
            pieces = [UNSEEN_IMAGE + "\n" if part.get("type") == "image" else str(part.get("text", ""))
                      for part in content if isinstance(part, dict)]  # fmt: skip
            message = {**message, "content": "".join(pieces)}
        out.append(message)
    return out


def content_text(content: object, marker: str = "") -> str:
    """A message's text: a string as it is; parts joined, each image written as `marker`."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    pieces = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            text = str(part.get("text", ""))
            # A marker typed in the text would stand for an image that is not there.
            pieces.append(text.replace(marker, "") if marker else text)
        elif part.get("type") == "image" and marker:
            pieces.append(marker)
    return "".join(pieces)


class DecodedCache:
    """The images decoded last, by content, so a conversation's earlier images are not decoded
    again for every follow-up (bounded in count and bytes)."""

    def __init__(self, count: int = 16, max_bytes: int = 256 << 20) -> None:
        self._count, self._max_bytes = count, max_bytes
        self._held: OrderedDict[str, DecodedImage] = OrderedDict()

    def get(self, source: ImageSource) -> DecodedImage:
        """`source` decoded (from the cache when it was lately); ImageError if it cannot be."""
        digest = source.digest
        found = self._held.get(digest)
        if found is not None:
            self._held.move_to_end(digest)
            return found
        image = decode(source)
        self._held[digest] = image
        while (
            len(self._held) > self._count or sum(len(i.pixels) for i in self._held.values()) > self._max_bytes
        ):
            if len(self._held) == 1:
                break
            self._held.popitem(last=False)
        return image


def data_url(source: ImageSource) -> str:
    """The image as a data: URL ("data:image/png;base64,..."), as OpenAI's image_url parts carry it."""
    data = source.read()
    return f"data:{media_type(data)};base64,{base64.b64encode(data).decode()}"


def openai_content(content: Any) -> Any:
    """A message's content as OpenAI's API takes it: a string as it is, image parts as image_url
    parts with data: URLs (ImageError when an image cannot be read)."""
    if not isinstance(content, list):
        return content
    converted = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image":
            converted.append({"type": "image_url", "image_url": {"url": data_url(part["image"])}})
        else:
            converted.append(part)
    return converted
