"""Fixtures for the fault tests: a small real file system that fills up, one that turns read-only,
and a child process that is killed at a chosen point.

The file systems are tmpfs mounts (the tests run as root on these machines); where mounting is not
allowed the tests that need one are skipped with the reason, and the simulated-ENOSPC tests beside
them still run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _mount_tmpfs(where: Path, size_bytes: int) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", f"fireside-{uuid.uuid4().hex[:8]}", str(where)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount a tmpfs of `size_bytes` under tmp_path and return its folder; unmounted afterwards."""
    mounted: list[Path] = []

    def make(size_bytes: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        if not _mount_tmpfs(where, size_bytes):
            pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN); the simulated-ENOSPC tests still run")
        mounted.append(where)
        return where

    yield make
    for where in reversed(mounted):
        _umount(where)


def set_read_only(where: Path, read_only: bool) -> None:
    """Remount the tmpfs at `where` read-only (True) or writable again (False)."""
    mode = "ro" if read_only else "rw"
    done = subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def fill_disk(where: Path, leave: int = 0) -> Path:
    """Write a file that takes all the free space of `where` but `leave` bytes; returns it."""
    filler = where / "filler.bin"
    stat = os.statvfs(where)
    free = stat.f_bavail * stat.f_frsize - leave
    with filler.open("wb") as out:
        chunk = b"\0" * 65536
        while free > 0:
            try:
                free -= out.write(chunk[: min(len(chunk), free)])
                out.flush()
            except OSError:
                break
    return filler


def run_killed(
    code: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh Python that is expected to SIGKILL itself at the point it chooses."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
