"""Model downloads that never lose a byte: queued, resumable across restarts, verified before use.

- jobs: a download job (Job), its State, and how it is saved;
- layout: the staging folder for partial files and the final place of verified ones;
- transfer: one file's fetch, with Range resume, retries, progress, sha256 and installation;
- manager: the queue (DownloadManager): scheduling, pause, resume, cancel, the saved list.

The tunable constants (RETRY_DELAYS, DISK_MARGIN, TRANSFER_CHUNK, PROGRESS_INTERVAL) live in, and
are read from, `transfer`; they are not re-exported here, so that changing one means changing it
where it is read.
"""

from __future__ import annotations

from app.core.hub.downloads.jobs import Job, State, format_eta
from app.core.hub.downloads.layout import STAGING, find_unfinished
from app.core.hub.downloads.manager import DownloadManager

__all__ = ["STAGING", "DownloadManager", "Job", "State", "find_unfinished", "format_eta"]
