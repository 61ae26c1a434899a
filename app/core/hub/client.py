"""The Hugging Face Hub, as Fireside uses it: search GGUF repositories, read one's files, explain errors.

Everything goes through huggingface_hub's client. Calls block: the UI runs them on worker threads.
Only the endpoint is configurable (`HF_ENDPOINT`, read on each call), so a mirror or a test server works.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from app.core.hub.files import FileGroup, RemoteFile, UnsafeFileName, group_files, projector_files
from app.core.models.gguf_header import AdapterShape
from app.core.models.projector import is_projector
from app.core.models.shape import ModelShape
from app.core.platform import logs

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
REACHABLE_TTL_S = 60.0
#: When each endpoint last answered (monotonic seconds).
_last_reachable: dict[str, float] = {}
SortKey = Literal["downloads", "likes", "trending_score", "last_modified"]
SORTS: dict[str, SortKey] = {
    "Most downloaded": "downloads",
    "Most liked": "likes",
    "Trending": "trending_score",
    "Recently updated": "last_modified",
}


@dataclass(frozen=True, slots=True)
class RepoSummary:
    """A search result."""

    repo_id: str
    author: str
    downloads: int
    likes: int
    last_modified: datetime | None
    gated: bool
    private: bool
    #: Its files include a vision projector (mmproj): its models read images too.
    vision: bool = False


@dataclass(frozen=True, slots=True)
class RepoDetails:
    """What the details view shows for one repository."""

    repo_id: str
    revision: str
    license: str | None
    gated: bool
    groups: list[FileGroup]
    card: str = ""
    #: From the Hub's GGUF metadata where the API gives it.
    n_params: int | None = None
    architecture: str | None = None
    context_length: int | None = None
    other_files: list[str] = field(default_factory=list)
    #: Vision projectors (`mmproj*.gguf`), best first: the repository's models can see images.
    projectors: list[RemoteFile] = field(default_factory=list)

    @property
    def vision(self) -> bool:
        """The repository has a projector: its models read images too."""
        return bool(self.projectors)


class HubErrorKind(StrEnum):
    """What went wrong with the Hub or a download from it (each member equals its string: "gated" ...)."""

    #: The Hub cannot be reached (no network, DNS, a timeout, offline mode).
    OFFLINE = "offline"
    #: The repository needs its license accepted (or the token has no access yet).
    GATED = "gated"
    #: The Hub refused the access token.
    AUTH = "auth"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    #: The Hub answered with a 5xx error.
    SERVER = "server"
    #: A file name that could escape the models folder.
    UNSAFE = "unsafe"
    #: Downloads only: the models folder cannot take the file (not enough space, the disk filled up,
    #: it turned read-only or was deleted).
    DISK = "disk"
    #: Downloads only: the bytes did not match the Hub's sha256.
    CHECKSUM = "checksum"
    OTHER = "other"


class HubError(Exception):
    """A Hub failure explained for users; `kind` says which, for the UI to offer the right way out."""

    def __init__(self, kind: HubErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = HubErrorKind(kind)  # a caller's plain "gated" becomes the member too
        self.message = message


def endpoint() -> str:
    """The Hub's address: `HF_ENDPOINT` if set (a mirror, a test server), else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def explain(exc: BaseException, repo_id: str | None = None, token: str | None = None) -> HubError:
    """Turn an exception from huggingface_hub (or the network) into a HubError with a clear message.

    The token never appears in the message, whatever the exception's text contains."""
    import httpx2
    from huggingface_hub import errors

    what = repo_id or "the Hub"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, HubError):
        result = exc
    elif isinstance(exc, UnsafeFileName):
        result = HubError(HubErrorKind.UNSAFE, f"{what}: {exc}")
    elif isinstance(exc, errors.GatedRepoError):
        if token:
            text = (
                f"{what} is gated and your access token does not have access yet. Accept the model's license "
                f"on {endpoint()}/{repo_id} while signed in, then try again."
            )
        else:
            text = (
                f"{what} is gated: accept the model's license on {endpoint()}/{repo_id} while signed in, "
                "then add a Hugging Face access token in Preferences."
            )
        result = HubError(HubErrorKind.GATED, text)
    elif isinstance(exc, errors.RepositoryNotFoundError):
        hint = "" if token else " If it is private, add a Hugging Face access token in Preferences."
        result = HubError(HubErrorKind.NOT_FOUND, f"{what} was not found on the Hub.{hint}")
    elif isinstance(exc, errors.RemoteEntryNotFoundError):
        result = HubError(HubErrorKind.NOT_FOUND, f"That file is no longer in {what}. Refresh the file list.")
    elif status == 401:
        result = HubError(
            HubErrorKind.AUTH, "The Hub refused the access token (401). Check or replace it in Preferences."
        )
    elif status == 403:
        result = HubError(
            HubErrorKind.GATED, f"The Hub refused access to {what} (403). Accept its license on the Hub."
        )
    elif status == 429:
        result = HubError(
            HubErrorKind.RATE_LIMITED, "The Hub is rate-limiting requests. Wait a minute, then retry."
        )
    elif status is not None and status >= 500:
        result = HubError(HubErrorKind.SERVER, f"The Hub had an error ({status}). Try again in a moment.")
    elif isinstance(
        exc, httpx2.TransportError | errors.OfflineModeIsEnabled | ConnectionError | TimeoutError
    ):
        result = HubError(
            HubErrorKind.OFFLINE, f"Can't reach {endpoint()}. Check your internet connection, then retry."
        )
    elif isinstance(exc, TypeError | KeyError | AttributeError | ValueError | OverflowError):
        # The answer came, but not in the shape huggingface_hub or Fireside reads (JSON errors are
        # ValueErrors too): a broken mirror or proxy, or an API change.
        result = HubError(
            HubErrorKind.OTHER,
            f"The answer from {endpoint()} about {what} was not understood ({exc}). Try again later.",
        )
    else:
        result = HubError(HubErrorKind.OTHER, f"{type(exc).__name__}: {exc}")
    if token and token in result.message:
        result = HubError(result.kind, result.message.replace(token, "hf_***"))
    return result


class SearchResults:
    """A search whose results arrive page by page (the Hub paginates with Link headers)."""

    def __init__(self, items: Iterator[Any], token: str | None = None) -> None:
        self._items = items
        self._token = token
        self.exhausted = False

    def next(self, count: int) -> list[RepoSummary]:
        """Up to `count` more results (blocking); HubError when the Hub fails or answers nonsense."""
        try:
            batch = [_summary(m) for m in itertools.islice(self._items, count)]
        except Exception as exc:  # pages are fetched (and parsed) while iterating
            raise explain(exc, None, self._token) from exc
        if len(batch) < count:
            self.exhausted = True
        return batch


def _summary(m: Any) -> RepoSummary:
    """A search result from huggingface_hub's ModelInfo, whose fields hold whatever the JSON held."""
    if not isinstance(m.id, str) or not m.id:
        raise ValueError(f"a search result has no repository id ({m.id!r})")
    siblings = getattr(m, "siblings", None)
    return RepoSummary(
        repo_id=m.id,
        author=m.author if isinstance(m.author, str) and m.author else m.id.split("/")[0],
        downloads=_count(m.downloads) or 0,
        likes=_count(m.likes) or 0,
        last_modified=m.last_modified,
        gated=bool(m.gated),
        private=bool(m.private),
        vision=any(
            isinstance(s.rfilename, str) and is_projector(s.rfilename)
            for s in (siblings if isinstance(siblings, list) else ())
        ),
    )


def _count(value: object) -> int | None:
    """`value` when it is a whole number of zero or more (the Hub's JSON may hold anything), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _remote_file(sibling: Any) -> RemoteFile:
    """One file of a repository's listing, or ValueError for an entry of the wrong shape."""
    name, lfs = sibling.rfilename, sibling.lfs
    if not isinstance(name, str):
        raise ValueError(f"a file name is not text ({name!r})")
    sha = lfs.sha256 if lfs is not None else None
    size = _count(sibling.size if sibling.size is not None else (lfs.size if lfs is not None else 0))
    if size is None or not (sha is None or isinstance(sha, str)):
        raise ValueError(f"{name!r} has no valid size or sha256")
    return RemoteFile(name, size, sha)


class HubClient:
    """Search and inspect GGUF repositories (blocking; call from a worker thread)."""

    def __init__(
        self, token: str | None = None, cache_dir: Path | None = None, timeout: float = 15.0
    ) -> None:
        self.token = token
        logs.remember_secret(token)  # the log never shows it, whatever a library logs
        self.cache_dir = cache_dir
        self.timeout = timeout

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        # token=False: never fall back to a token some other tool stored; Fireside's lives in the keyring.
        return HfApi(endpoint=endpoint(), token=self.token or False, library_name="fireside")

    def check_reachable(self) -> None:
        """Fail fast with HubError(HubErrorKind.OFFLINE) when the Hub cannot be reached.

        huggingface_hub's paginated listings retry connection errors with back-off for about 20 s,
        which an offline user would see as a hang; one quick request first answers in milliseconds.
        A success is trusted for a minute."""
        address = endpoint()
        if time.monotonic() - _last_reachable.get(address, -REACHABLE_TTL_S) < REACHABLE_TTL_S:
            return
        from huggingface_hub import get_session

        try:
            get_session().head(address + "/api/models", timeout=min(self.timeout, 5.0))
        except Exception as exc:
            raise explain(exc, None, self.token) from exc
        _last_reachable[address] = time.monotonic()

    def search(self, query: str, sort: SortKey = "downloads") -> SearchResults:
        """GGUF repositories matching `query`, best first by `sort`. Nothing is fetched until `next()`."""
        self.check_reachable()
        items = self._api().list_models(
            search=query.strip() or None,
            filter="gguf",
            sort=sort,
            # The file names come too: a repository with a projector is marked "vision".
            expand=["author", "downloads", "likes", "lastModified", "gated", "private", "siblings"],
        )
        return SearchResults(iter(items), self.token)

    def details(self, repo_id: str) -> RepoDetails:
        """A repository's GGUF files with sizes and sha256, its license, and the start of its model card."""
        try:
            info = self._api().model_info(repo_id, files_metadata=True, timeout=self.timeout)
        except Exception as exc:
            raise explain(exc, repo_id, self.token) from exc
        try:
            return self._details(repo_id, info)
        except (TypeError, KeyError, AttributeError, ValueError, OverflowError) as exc:
            raise explain(exc, repo_id, self.token) from exc  # an answer of the wrong shape

    def _details(self, repo_id: str, info: Any) -> RepoDetails:
        """RepoDetails from huggingface_hub's ModelInfo, whose fields hold whatever the JSON held
        (ValueError, TypeError or AttributeError for an answer of the wrong shape)."""
        files, others = [], []
        siblings = info.siblings or []
        if not isinstance(siblings, list):
            raise ValueError("its file list is not a list")
        for sibling in siblings:
            remote = _remote_file(sibling)
            if remote.filename.lower().endswith(".gguf"):
                files.append(remote)
            else:
                others.append(remote.filename)
        gguf = info.gguf if isinstance(info.gguf, dict) else {}
        card_data = info.card_data.to_dict() if info.card_data is not None else {}
        tags = info.tags if isinstance(info.tags, list) else []
        license_ = card_data.get("license") or next(
            (t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith("license:")), None
        )
        revision = info.sha if isinstance(info.sha, str) and info.sha else "main"
        card = self._card(repo_id, revision) if "README.md" in others else ""
        architecture = gguf.get("architecture")
        return RepoDetails(
            repo_id=repo_id,
            revision=revision,
            license=str(license_) if license_ else None,
            gated=bool(info.gated),
            groups=group_files(files),
            projectors=projector_files(files),
            card=card,
            n_params=_count(gguf.get("total")),
            architecture=architecture if isinstance(architecture, str) else None,
            context_length=_count(gguf.get("context_length")),
            other_files=others,
        )

    def remote_shape(self, repo_id: str, revision: str, filename: str) -> ModelShape:
        """Layers, heads and vocabulary read from a GGUF's header on the Hub with HTTP Range requests
        (a few MB at most, never the weights), so the estimate is exact before anything is downloaded."""
        return self.remote_header(repo_id, revision, filename)[0]

    def remote_header(
        self, repo_id: str, revision: str, filename: str
    ) -> tuple[ModelShape, AdapterShape | None]:
        """The model shape of a GGUF on the Hub (see remote_shape) and, for a LoRA adapter, the
        shape of the base model it was made for (None for a model), from one read of its header."""
        from huggingface_hub import get_session, hf_hub_url
        from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

        from app.core.models.gguf_header import ByteSource, read_adapter, read_shape

        url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint())
        headers = build_hf_headers(token=self.token or False, library_name="fireside")

        def fetch(offset: int, size: int) -> bytes:
            ranged = {**headers, "Range": f"bytes={offset}-{offset + size - 1}"}
            data = bytearray()
            with get_session().stream(
                "GET", url, headers=ranged, follow_redirects=True, timeout=self.timeout
            ) as response:
                hf_raise_for_status(response)
                skip = offset if response.status_code == 200 else 0  # the server ignored the Range
                for block in response.iter_bytes():
                    data += block
                    if len(data) >= skip + size:
                        break
            return bytes(data[skip : skip + size])

        try:
            source = ByteSource(fetch)
            _arch, shape = read_shape(source)
            source.pos = 0  # the same bytes again (kept): the tensor list was read already
            adapter = read_adapter(source)
        except Exception as exc:
            raise explain(exc, repo_id, self.token) from exc
        return shape, adapter

    def _card(self, repo_id: str, revision: str | None) -> str:
        """The model card's opening paragraphs (empty when it cannot be read: the card is optional)."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # a GUI app: no tqdm bars on a terminal that may not exist
        try:
            path = hf_hub_download(
                repo_id, "README.md", revision=revision, cache_dir=self.cache_dir,
                token=self.token or False, endpoint=endpoint(), etag_timeout=self.timeout,
            )  # fmt: skip
            return card_excerpt(Path(str(path)).read_text("utf-8", errors="replace"))
        except Exception as exc:
            log.info("model card of %s not read: %s", repo_id, explain(exc, repo_id, self.token).message)
            return ""


def card_excerpt(text: str, limit: int = 1200) -> str:
    """The first paragraphs of a model card's Markdown: front matter, HTML and images left out."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        text = text[end + 4 :] if end != -1 else ""
    blocks, length = [], 0
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if not block or block.startswith(("<", "![", "[![", "```")) or block.startswith("|"):
            continue
        blocks.append(block)
        length += len(block)
        if length >= limit or len(blocks) >= 4:
            break
    while blocks and blocks[-1].startswith("#"):  # a heading whose text was cut off
        blocks.pop()
    return "\n\n".join(blocks)
