"""What a user attaches to a message, and the folder where attached files are kept.

An attached file is copied into the data folder's `attachments` folder as soon as it is attached,
named by its sha256 (so the same picture attached twice is kept once, and a name from outside can
never point anywhere else), and the message refers to it by that hash. So the original may move or
vanish before Send, and a conversation keeps its images as long as it exists; a file no message
refers to any more is removed when conversations are purged.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from app.core.media.documents import DocumentError, is_document, read_document
from app.core.media.images import MEDIA_TYPES, DecodedImage, ImageError, ImageSource, decode, image_part
from app.core.platform import paths
from app.core.values.stored_json import json_list

log = logging.getLogger(__name__)

#: The largest image file accepted (the pixels are capped anyway: see images.MAX_PIXELS).
MAX_IMAGE_BYTES = 64 << 20
#: The longer side of the small picture the chat shows of an attached image (2x a 128-pixel tile).
THUMBNAIL_SIDE = 256
#: A file nothing refers to is kept this long (it may be attached to a message not sent yet).
KEEP_UNSENT_S = 24 * 3600
_HASH = re.compile(r"[0-9a-f]{64}")
_SUFFIX = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "application/pdf": ".pdf",
    "text/html": ".html",
    "text/plain": ".txt",
}
#: What kind of attachment each media type is.
_KIND = {media: ("image" if media.startswith("image/") else "document") for media in _SUFFIX}


class AttachmentError(ValueError):
    """A file could not be attached; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a message, kept in the attachments folder under its sha256."""

    kind: str  # "image" | "document"
    name: str
    media_type: str
    sha256: str
    size: int
    #: An image's size in pixels; a document's pages (width) and characters of text (height).
    width: int = 0
    height: int = 0

    @property
    def file_name(self) -> str:
        """Its name in the attachments folder."""
        return self.sha256 + _SUFFIX.get(self.media_type, "")

    def to_dict(self) -> dict[str, Any]:
        """As stored with the message (JSON)."""
        return {
            "kind": self.kind, "name": self.name, "media_type": self.media_type, "sha256": self.sha256,
            "size": self.size, "width": self.width, "height": self.height,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> Attachment | None:
        """One stored by to_dict (None for anything else: a damaged or foreign entry is skipped)."""
        if not isinstance(data, dict):
            return None
        sha, kind, media = data.get("sha256"), data.get("kind"), data.get("media_type")
        if (
            not isinstance(sha, str)
            or not _HASH.fullmatch(sha)
            or media not in _SUFFIX
            or kind != _KIND[media]
        ):
            return None
        name = data.get("name")
        return cls(
            kind, name if isinstance(name, str) and name else kind, media, sha,
            _int(data.get("size")), _int(data.get("width")), _int(data.get("height")),
        )  # fmt: skip


class AttachmentFolder:
    """The folder attached files are kept in (thread-safe: each file is written once, atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, attachment: Attachment) -> Path:
        """Where `attachment`'s file is."""
        return self.root / attachment.sha256[:2] / attachment.file_name

    def thumbnail_path(self, attachment: Attachment) -> Path:
        """Where `attachment`'s small picture is (what the chat shows; made when it was attached)."""
        return self.root / attachment.sha256[:2] / f"{attachment.sha256}.thumb.jpg"

    def source(self, attachment: Attachment) -> ImageSource:
        """The image, read from the folder when a model needs it (not now)."""
        return ImageSource(name=attachment.name, path=self.path(attachment), sha256=attachment.sha256)

    def add_document(self, path: Path, progress: Callable[[int, int], bool] | None = None) -> Attachment:
        """Attach the document at `path` once its text has been read (AttachmentError saying why
        it cannot be): the file is copied in, hashed as it is copied."""
        name = path.name
        try:
            text = read_document(path, progress, name)
        except DocumentError as exc:
            raise AttachmentError(str(exc)) from exc
        media = {"pdf": "application/pdf", "html": "text/html"}.get(text.kind, "text/plain")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=self.root)
            digest = hashlib.sha256()
            size = 0
            try:
                with open(path, "rb") as source, os.fdopen(fd, "wb") as copy:
                    while block := source.read(1 << 20):
                        digest.update(block)
                        copy.write(block)
                        size += len(block)
                    copy.flush()
                    os.fsync(copy.fileno())
                attachment = Attachment(
                    "document", name, media, digest.hexdigest(), size, len(text.pages), text.chars
                )
                target = self.path(attachment)
                target.parent.mkdir(parents=True, exist_ok=True)
                if _kept(target):
                    os.utime(target)
                else:  # also over a link someone put there: the file is ours, never theirs
                    os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except FileNotFoundError as exc:
            raise AttachmentError(f"“{name}” is no longer there (it was moved or deleted).") from exc
        except OSError as exc:
            raise AttachmentError(
                f"“{name}” could not be kept in the data folder ({exc.strerror or exc}). "
                "Free some disk space, or check that the data folder can be written."
            ) from exc
        return attachment

    def add_file(self, path: Path) -> Attachment:
        """Attach the file at `path`: an image, or a document (AttachmentError saying why it
        cannot be)."""
        if is_document(path.name):
            return self.add_document(path)
        name = path.name
        try:
            size = path.stat().st_size
            if size > MAX_IMAGE_BYTES:
                limit = MAX_IMAGE_BYTES >> 20
                raise AttachmentError(
                    f"“{name}” is {size / 1e6:,.0f} MB: images of up to {limit} MB may be attached."
                )
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise AttachmentError(f"“{name}” is no longer there (it was moved or deleted).") from exc
        except IsADirectoryError as exc:
            raise AttachmentError(f"“{name}” is a folder, not a file.") from exc
        except OSError as exc:
            raise AttachmentError(f"“{name}” could not be read: {exc.strerror or exc}.") from exc
        return self.add_bytes(data, name)

    def add_bytes(self, data: bytes, name: str) -> Attachment:
        """Attach an image given as bytes (pasted, or read from a file)."""
        if len(data) > MAX_IMAGE_BYTES:
            raise AttachmentError(f"“{name}” is larger than the {MAX_IMAGE_BYTES >> 20} MB an image may be.")
        try:
            # Decoded whole now, off the GUI thread: a damaged picture is refused when attached,
            # not when it is sent.
            image = decode(ImageSource(data, name))
        except ImageError as exc:
            raise AttachmentError(str(exc)) from exc
        width, height = image.original
        attachment = Attachment(
            "image", name, MEDIA_TYPES[image.format], image.digest, len(data), width, height
        )
        target = self.path(attachment)
        if not _kept(target):
            self._write(target, data)
        thumbnail = self.thumbnail_path(attachment)
        if not _kept(thumbnail):
            self._write(thumbnail, _thumbnail(image))
        else:
            with contextlib.suppress(OSError):
                os.utime(target)  # attached again: not an orphan to collect
        return attachment

    def _write(self, target: Path, data: bytes) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)  # never half a file under its final name
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            raise AttachmentError(
                f"The image could not be kept in the data folder ({exc.strerror or exc}). "
                "Free some disk space, or check that the data folder can be written."
            ) from exc

    def collect(self, referenced: Iterable[str], keep_unsent_s: float = KEEP_UNSENT_S) -> int:
        """Remove the files whose hash is not in `referenced` (older than `keep_unsent_s`: a file
        attached a moment ago may belong to a message not sent yet); how many attachments (a file
        and its thumbnail) were removed."""
        wanted = set(referenced)
        removed: set[str] = set()
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - keep_unsent_s
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for file in folder.iterdir():
                sha = file.name.split(".", 1)[0]
                try:
                    old = file.stat().st_mtime <= cutoff
                except OSError:
                    continue
                if old and (sha not in wanted or file.name.startswith(".part-")):
                    with contextlib.suppress(OSError):
                        file.unlink()
                        removed.add(sha)
        return len(removed)


def _kept(target: Path) -> bool:
    """True when `target` is a file this folder wrote: a symbolic link in its place (to a file
    anywhere on the computer) is not, and is replaced by the real file rather than read as it."""
    return target.is_file() and not target.is_symlink()


def _thumbnail(image: DecodedImage) -> bytes:
    """A small JPEG of `image` (THUMBNAIL_SIDE on its longer side) for the chat to show."""
    picture = Image.frombytes("RGB", (image.width, image.height), image.pixels)
    picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


def default_folder() -> AttachmentFolder:
    """The attachments folder of the data folder in use."""
    return AttachmentFolder(paths.attachments_dir())


def with_images(text: str, attachments: Iterable[Attachment], folder: AttachmentFolder | None = None) -> Any:
    """A message's content: `text` alone, or its images (read when the model needs them) then the
    text, as content parts (see images.image_part)."""
    images = [a for a in attachments if a.kind == "image"]
    if not images:
        return text
    where = folder or default_folder()
    return [*(image_part(where.source(a)) for a in images), {"type": "text", "text": text}]


def attachments_to_json(attachments: Iterable[Attachment]) -> str | None:
    """As the messages table keeps them (None for none)."""
    items = [a.to_dict() for a in attachments]
    return json.dumps(items) if items else None


def attachments_from_json(text: str | None) -> list[Attachment]:
    """What attachments_to_json wrote (a damaged value gives none, never an error)."""
    return [a for a in map(Attachment.from_dict, json_list(text)) if a is not None]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
