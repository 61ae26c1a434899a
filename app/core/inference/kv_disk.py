"""Conversations' KV caches kept on disk, so a conversation is not read again after a restart.

When a conversation's sequence is given to another reply, when another model is loaded and when the
app quits, the sequence's state (llama.cpp's `llama_state_seq_get_data`) is written here with the
tokens it holds and what shaped it (the model file, the KV cache type, flash attention, llama.cpp's
version). Reopening the conversation later restores it when all of that still matches.

A file is never given to llama.cpp unchecked: its magic, version, header, sizes, the fingerprint and
a SHA-256 of its contents are checked first; anything damaged, truncated, foreign or stale is
deleted with a log line and the history is read as usual. The folder has a size cap: the entries
used least recently go first.

A save writes a temporary ".part" file, flushes it to the disk and only then renames it over the
entry, so a crash or a full disk leaves the earlier entry (or none), never half of one. A ".part"
file a killed save left behind is never loaded; the next save or clean-up deletes it.

File layout: b"FSKV", uint32 version, uint32 header length, the header (JSON: key, fingerprint,
token count, payload size, sha256), the tokens (int32, little-endian), then the payload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import uuid
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAGIC = b"FSKV"
VERSION = 1
#: A header is a few hundred bytes; anything much larger is not one of ours.
MAX_HEADER = 64 * 1024
SUFFIX = ".kv"
#: A save's file while it is being written; renamed to SUFFIX once whole.
PART = ".part"
#: The names of the ".part" files this process is writing now (any other is a crash's leftover).
_writing: set[str] = set()


@dataclass(frozen=True, slots=True)
class Entry:
    """What a cache file holds: the tokens a sequence held, and its state."""

    tokens: list[int]
    payload: bytes


class KvDiskCache:
    """A folder of saved sequence states, capped at `cap_bytes` (least recently used first out)."""

    def __init__(self, folder: Path, cap_bytes: int) -> None:
        self.folder = folder
        self.cap_bytes = cap_bytes

    def path_for(self, key: str) -> Path:
        """The file that holds `key`'s state."""
        return self.folder / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:40] + SUFFIX)

    def save(self, key: str, fingerprint: dict[str, Any], tokens: list[int], payload: bytes) -> bool:
        """Write `key`'s state (atomically: a crash leaves the old file or none); False if it could not
        be written (a full disk, say: it is only a cache)."""
        if not tokens or not payload or self.cap_bytes <= 0:
            return False
        token_bytes = array("i", tokens)
        if struct.pack("<i", 1) != array("i", [1]).tobytes():  # pragma: no cover - big-endian machines
            token_bytes.byteswap()
        body = token_bytes.tobytes()
        digest = hashlib.sha256(body)
        digest.update(payload)
        header = json.dumps(
            {
                "key": key,
                "fingerprint": fingerprint,
                "n_tokens": len(tokens),
                "payload_bytes": len(payload),
                "sha256": digest.hexdigest(),
            },
            sort_keys=True,
        ).encode("utf-8")
        self.remove_leftovers()  # a killed save's file would take the space this one needs
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f"{uuid.uuid4().hex}{PART}"
            _writing.add(tmp.name)  # before it exists: a clean-up on another thread leaves it alone
            try:
                with open(tmp, "xb") as out:
                    out.write(MAGIC + struct.pack("<II", VERSION, len(header)) + header + body)
                    out.write(payload)
                    out.flush()
                    os.fsync(out.fileno())  # on the disk before the rename: never a renamed half-file
                os.replace(tmp, self.path_for(key))
            except BaseException:
                tmp.unlink(missing_ok=True)  # a full disk: nothing half-written stays behind
                raise
            finally:
                _writing.discard(tmp.name)
        except OSError as exc:
            log.warning("could not save the KV cache of %s in %s: %s", key, self.folder, exc)
            return False
        _sync_folder(self.folder)
        self._trim()
        return True

    def load(self, key: str, fingerprint: dict[str, Any]) -> Entry | None:
        """`key`'s saved state when it is whole and was made the way the context is now, else None
        (a file that is not is deleted)."""
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("could not read the KV cache file %s: %s", path.name, exc)
            return None
        problem, entry = _parse(data, key, fingerprint)
        if entry is None:
            log.info("KV cache file %s discarded: %s", path.name, problem)
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: the last to be evicted
        return entry

    def discard(self, key: str) -> None:
        """Forget `key`'s saved state (llama.cpp refused it, say)."""
        self.path_for(key).unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """The cache's files, least recently used first."""
        try:
            found = [p for p in self.folder.iterdir() if p.suffix == SUFFIX and p.is_file()]
        except OSError:
            return []
        return sorted(found, key=_mtime)

    def size(self) -> int:
        """Bytes the cache takes on disk."""
        return sum(_size(p) for p in self.files())

    def remove_leftovers(self) -> int:
        """Delete the ".part" files saves that were killed (or lost power) left behind; how many."""
        try:
            leftovers = [p for p in self.folder.iterdir() if p.suffix == PART and p.name not in _writing]
        except OSError:
            return 0
        for path in leftovers:
            log.info("KV cache file %s deleted: left half-written by a save that did not finish", path.name)
            with contextlib.suppress(OSError):  # a tidy-up: never the reason a save fails
                path.unlink(missing_ok=True)
        return len(leftovers)

    def enforce_cap(self) -> None:
        """Delete the least recently used entries until the cache is within its cap."""
        self.remove_leftovers()
        self._trim()

    def _trim(self) -> None:
        # The cap alone: a save has just removed the leftovers before writing its own file.
        files = self.files()
        total = sum(_size(p) for p in files)
        for path in files:
            if total <= self.cap_bytes:
                break
            total -= _size(path)
            path.unlink(missing_ok=True)

    def clear(self) -> int:
        """Delete every entry; the bytes freed."""
        freed = 0
        self.remove_leftovers()
        for path in self.files():
            freed += _size(path)
            path.unlink(missing_ok=True)
        return freed


def _parse(data: bytes, key: str, fingerprint: dict[str, Any]) -> tuple[str, Entry | None]:
    """(why it was refused, None) or ("", the entry)."""
    if len(data) < 12 or data[:4] != MAGIC:
        return "not a Fireside KV cache file", None
    version, header_len = struct.unpack_from("<II", data, 4)
    if version != VERSION:
        return f"format version {version}, not {VERSION}", None
    if header_len > MAX_HEADER or 12 + header_len > len(data):
        return "truncated or damaged header", None
    try:
        header = json.loads(data[12 : 12 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "unreadable header", None
    if not isinstance(header, dict):
        return "unreadable header", None
    if header.get("key") != key:
        return "written for another conversation", None
    if header.get("fingerprint") != fingerprint:
        return "written with another model or other load settings", None
    n_tokens, payload_bytes = header.get("n_tokens"), header.get("payload_bytes")
    if (
        not isinstance(n_tokens, int)
        or not isinstance(payload_bytes, int)
        or n_tokens <= 0
        or payload_bytes <= 0
    ):
        return "bad sizes in the header", None
    start = 12 + header_len
    if len(data) != start + 4 * n_tokens + payload_bytes:
        return "truncated (or has bytes it should not)", None
    body = data[start:]
    if hashlib.sha256(body).hexdigest() != header.get("sha256"):
        return "damaged (its checksum does not match)", None
    tokens = array("i")
    tokens.frombytes(body[: 4 * n_tokens])
    if struct.pack("<i", 1) != array("i", [1]).tobytes():  # pragma: no cover - big-endian machines
        tokens.byteswap()
    return "", Entry(tokens.tolist(), body[4 * n_tokens :])


def _sync_folder(folder: Path) -> None:
    # The rename itself is on the disk only once the folder is; best effort (not every system can).
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
