"""Where download files live: a partial file in the staging folder while it arrives, the verified file
where the library finds it.

A download of `<file>` from `<owner>/<repo>` goes to `<models>/.downloads/<owner>--<repo>/<file>.part`
and, once its sha256 matches, is moved to `<models>/<owner>/<repo>/<file>`. The staging folder's name
starts with a dot, so the library's scan never mistakes a partial file for a model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from app.core.hub.files import RemoteFile, safe_relative_path

STAGING = ".downloads"


def repo_folder(repo_id: str) -> Path:
    """A repository's folder below the models folder, `<owner>/<repo>` (UnsafeFileName if either part
    could escape it)."""
    owner, _, name = repo_id.partition("/")
    return Path(*safe_relative_path(owner).parts) / Path(*safe_relative_path(name or "_").parts)


def staging_dir(models_dir: Path, repo_id: str) -> Path:
    """Where a repository's partial files live (UnsafeFileName for a repository id that could
    escape the staging folder)."""
    repo_folder(repo_id)  # the same check as the installed files' folder
    owner, _, name = repo_id.partition("/")
    return models_dir / STAGING / f"{owner}--{name}"


def final_path(models_dir: Path, repo_id: str, filename: str) -> Path:
    """Where a verified file is installed."""
    return models_dir / repo_folder(repo_id) / Path(*safe_relative_path(filename).parts)


def part_path(models_dir: Path, repo_id: str, filename: str) -> Path:
    """The partial file of a download in progress."""
    rel = Path(*safe_relative_path(filename).parts)
    return staging_dir(models_dir, repo_id) / rel.with_name(rel.name + ".part")


def bytes_on_disk(models_dir: Path, repo_id: str, files: Iterable[RemoteFile]) -> int:
    """How much of `files` is already here: whole verified files plus what their partial files hold."""
    done = 0
    for f in files:
        final = final_path(models_dir, repo_id, f.filename)
        part = part_path(models_dir, repo_id, f.filename)
        if final.is_file() and final.stat().st_size == f.size:
            done += f.size
        elif part.is_file():
            done += min(part.stat().st_size, f.size)
    return done


def installed(models_dir: Path, repo_id: str, files: Iterable[RemoteFile]) -> bool:
    """True when every one of `files` is in its final place."""
    return all(final_path(models_dir, repo_id, f.filename).is_file() for f in files)


def installed_whole(models_dir: Path, repo_id: str, files: Iterable[RemoteFile]) -> bool:
    """True when every one of `files` is in its final place at its full size (only verified files
    are ever moved there)."""
    for f in files:
        final = final_path(models_dir, repo_id, f.filename)
        if not final.is_file() or final.stat().st_size != f.size:
            return False
    return True


def remove_parts(models_dir: Path, repo_id: str, files: Iterable[RemoteFile]) -> None:
    """Delete the partial files of `files`, then the staging folders they leave empty."""
    for f in files:
        part_path(models_dir, repo_id, f.filename).unlink(missing_ok=True)
    folder = staging_dir(models_dir, repo_id)
    # Remove now-empty folders, deepest first; anything still holding a file stays.
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


def find_unfinished(models_dir: Path) -> list[Path]:
    """Partial files left in the staging folder (for diagnostics and tests)."""
    root = models_dir / STAGING
    return sorted(root.rglob("*.part")) if root.is_dir() else []
