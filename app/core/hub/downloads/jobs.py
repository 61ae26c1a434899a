"""A download job: one model (every part of a split one), where it is in its life, its progress, and
how it is saved between launches."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from app.core.hub.client import HubErrorKind
from app.core.hub.downloads.layout import repo_folder
from app.core.hub.files import RemoteFile, safe_relative_path


class State(StrEnum):
    """Where a download is in its life."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """Waiting for or using a worker."""
        return self in (State.QUEUED, State.DOWNLOADING, State.VERIFYING)


@dataclass(slots=True)
class Job:
    """One model to download (all parts of a split model)."""

    id: str
    repo_id: str
    revision: str
    label: str
    quant: str | None
    files: list[RemoteFile]
    state: State = State.QUEUED
    done_bytes: int = 0
    speed: float = 0.0
    note: str = ""
    error: str | None = None
    error_kind: HubErrorKind | None = None
    path: str | None = None
    #: Bytes fetched over the network by this session (a resumed download does not count what was on disk).
    fetched_bytes: int = 0

    @property
    def total(self) -> int:
        """Bytes of all files."""
        return sum(f.size for f in self.files)

    @property
    def fraction(self) -> float:
        """Progress 0..1."""
        return min(1.0, self.done_bytes / self.total) if self.total else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current speed (None when unknown)."""
        if self.state is not State.DOWNLOADING or self.speed <= 0:
            return None
        return max(0.0, (self.total - self.done_bytes) / self.speed)

    def to_dict(self) -> dict[str, Any]:
        """What is saved between launches (progress is re-read from the files on disk)."""
        data = asdict(self)
        data["state"] = self.state.value
        data["error_kind"] = self.error_kind.value if self.error_kind is not None else None
        data["files"] = [asdict(f) for f in self.files]
        for transient in ("done_bytes", "speed", "note", "fetched_bytes"):
            data.pop(transient)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """The inverse of to_dict (raises KeyError/TypeError/ValueError on a damaged record)."""
        files = [RemoteFile(str(f["filename"]), int(f["size"]), f.get("sha256")) for f in data["files"]]
        for f in files:
            safe_relative_path(f.filename)
        repo_folder(str(data["repo_id"]))  # a damaged or hand-edited record must not point outside
        return cls(
            id=str(data["id"]), repo_id=str(data["repo_id"]), revision=str(data["revision"]),
            label=str(data["label"]), quant=data.get("quant"), files=files, state=State(data["state"]),
            error=data.get("error"), error_kind=_error_kind(data.get("error_kind")), path=data.get("path"),
        )  # fmt: skip


def _error_kind(saved: Any) -> HubErrorKind | None:
    # A kind this version does not know (saved by a newer Fireside) reads as "other" rather than
    # dropping the record: the job stays on the list with a plain retry, all a kind it does not
    # know could get from the UI anyway.
    if saved is None:
        return None
    try:
        return HubErrorKind(saved)
    except ValueError:
        return HubErrorKind.OTHER


def format_eta(seconds: float | None) -> str:
    """ "3 min 20 s left" style text."""
    if seconds is None:
        return ""
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min left"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s left"
    return f"{seconds} s left"
