"""The Hub client through the real huggingface_hub against a local Hub look-alike, and the pure helpers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.core.hub import client as hub
from app.core.hub import files as hub_files
from app.core.hub.client import HubClient, HubError
from app.core.hub.files import FileGroup, RemoteFile, UnsafeFileName
from app.core.models import starter
from tests.conftest import STARTER_GGUF, STARTER_REPO
from tests.fakehub import COMMIT, FakeHub, HubFile, HubRepo, Request

TOKEN = "hf_TestTokenValue1234567890abcdefXYZ"

# ----- quant_from_name ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("model-UD-Q4_K_XL.gguf", "Q4_K_XL"),
        ("x.IQ3_XXS.gguf", "IQ3_XXS"),
        ("y-f16.gguf", "F16"),
        ("z-bf16-00001-of-00002.gguf", "BF16"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("mistral-7b-instruct-v0.2.Q4_K_M.gguf", "Q4_K_M"),  # TheBloke style
        ("qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M"),  # Qwen: lower case, split
        ("qwen2.5-7b-instruct-fp16-00001-of-00004.gguf", "F16"),  # Qwen's full precision is "fp16"
        ("Phi-3-mini-4k-instruct-fp16.gguf", "F16"),
        ("Llama-3.2-3B-Instruct-f32.gguf", "F32"),
        ("gemma-2-9b-it-Q6_K_L.gguf", "Q6_K_L"),
        ("Meta-Llama-3.1-8B-Instruct-IQ4_XS.gguf", "IQ4_XS"),
        ("Qwen3-30B-A3B-UD-Q8_K_XL.gguf", "Q8_K_XL"),
        ("DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf", "IQ1_S"),
        ("gpt-oss-20b-MXFP4.gguf", "MXFP4"),
        ("tinyllama-1.1b-chat-v1.0.Q2_K.gguf", "Q2_K"),
        ("ggml-model-q8_0.gguf", "Q8_0"),
        ("BitNet-b1.58-2B-4T-TQ1_0.gguf", "TQ1_0"),
        ("Q4_K_M/Llama-4-Scout-Q4_K_M-00001-of-00002.gguf", "Q4_K_M"),  # the folder does not count
        ("model.gguf", None),
        ("ggml-model.gguf", None),
        ("Q4_K_Mega-model.gguf", None),  # a quant name glued to a word is not one
    ],
)
def test_quant_from_name(name: str, quant: str | None) -> None:
    assert hub_files.quant_from_name(name) == quant


def test_quant_rank_orders_best_first_and_unknown_last() -> None:
    assert (
        hub_files.quant_rank("F16")
        < hub_files.quant_rank("Q8_0")
        < hub_files.quant_rank("Q4_K_M")
        < hub_files.quant_rank("IQ1_S")
    )
    assert hub_files.quant_rank(None) == hub_files.quant_rank("Q9_WHAT") == len(hub_files.QUANT_ORDER)


# ----- group_files --------------------------------------------------------------------------------


def _rf(name: str, size: int = 1000) -> RemoteFile:
    return RemoteFile(name, size, None)


def test_group_files_groups_splits_excludes_projectors_and_orders_best_first() -> None:
    files = [
        _rf("M-Q4_K_M.gguf", 4000),
        _rf("README.md", 10),
        _rf("M-F16-00002-of-00002.gguf", 6000),  # parts listed out of order
        _rf("model.gguf", 500),
        _rf("M-Q2_K-00001-of-00003.gguf", 900),
        _rf("mmproj-M-f16.gguf", 700),
        _rf("M-IQ3_XXS.gguf", 2500),
        _rf("M-F16-00001-of-00002.gguf", 10000),
        _rf("M-Q2_K-00002-of-00003.gguf", 900),  # part 3 of 3 is missing
        _rf("M-UD-Q4_K_XL.gguf", 4500),
        _rf("M-Q8_0.gguf", 8000),
        _rf("sub/mmproj-model-bf16.gguf", 700),
        _rf("M-Q6_K.gguf", 6000),
    ]
    groups = hub_files.group_files(files)
    assert [g.quant for g in groups] == ["F16", "Q8_0", "Q6_K", "Q4_K_XL", "Q4_K_M", "IQ3_XXS", "Q2_K", None]
    f16 = groups[0]
    assert [f.filename for f in f16.files] == ["M-F16-00001-of-00002.gguf", "M-F16-00002-of-00002.gguf"]
    assert f16.size == 16000
    assert f16.name == "M-F16-00001-of-00002.gguf"
    assert f16.label == "M-F16.gguf (2 parts)"
    assert f16.complete
    q2 = groups[6]
    assert q2.size == 1800 and not q2.complete
    assert all(g.complete for g in groups if g is not q2)
    assert not any("mmproj" in f.filename for g in groups for f in g.files)
    assert groups[-1].label == "model.gguf"


def test_group_files_keeps_same_named_splits_of_different_part_counts_apart() -> None:
    groups = hub_files.group_files(
        [_rf("a/M-Q4_K_M-00001-of-00002.gguf"), _rf("a/M-Q4_K_M-00002-of-00002.gguf"), _rf("M-Q4_K_M.gguf")]
    )
    assert sorted(len(g.files) for g in groups) == [1, 2]
    split = next(g for g in groups if len(g.files) == 2)
    assert split.label == "a/M-Q4_K_M.gguf (2 parts)" and split.size == 2000


# ----- safe_relative_path -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x.gguf",
        "/etc/passwd",
        "a/../../b",
        "sub/../x.gguf",
        "C:\\x.gguf",
        "C:x.gguf",
        "a\\..\\b.gguf",
        "\\\\server\\share\\x.gguf",
        "con.gguf",
        "NUL",
        "sub/aux.tar.gz",
        "COM1.gguf",
        "lpt9.gguf",
        "x.gguf.",
        "x.gguf ",
        "a\x00b.gguf",
        "a\nb.gguf",
        "a\x1b[31m.gguf",
        "what?.gguf",
        "x" * 300 + ".gguf",
    ],
)
def test_safe_relative_path_rejects(name: str) -> None:
    with pytest.raises(UnsafeFileName):
        hub_files.safe_relative_path(name)


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("sub/dir/x.gguf", ("sub", "dir", "x.gguf")),
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", ("Llama-3.2-1B-Instruct-Q4_K_M.gguf",)),
        ("conference.gguf", ("conference.gguf",)),  # starts like CON but is not a reserved name
        ("Q4_K_M/model-Q4_K_M-00001-of-00002.gguf", ("Q4_K_M", "model-Q4_K_M-00001-of-00002.gguf")),
    ],
)
def test_safe_relative_path_accepts(name: str, parts: tuple[str, ...], tmp_path: Path) -> None:
    path = hub_files.safe_relative_path(name)
    assert path.parts == parts
    assert not path.is_absolute()
    joined = (tmp_path / Path(*path.parts)).resolve()
    assert joined.is_relative_to(tmp_path.resolve())


# ----- card_excerpt -------------------------------------------------------------------------------


def test_card_excerpt_strips_front_matter_html_images_and_tables() -> None:
    text = (
        "---\nlicense: llama3.2\ntags:\n- gguf\n---\n\n"
        '<img src="logo.png">\n\n![banner](banner.png)\n\n'
        "# Llama 3.2 1B\n\nA small model for chat.\n\n| a | b |\n|---|---|\n\n"
        "```bash\nllama-cli -m x.gguf\n```\n\nIt runs everywhere.\n\nFourth.\n\nFifth, left out.\n"
    )
    excerpt = hub.card_excerpt(text)
    assert excerpt == "# Llama 3.2 1B\n\nA small model for chat.\n\nIt runs everywhere.\n\nFourth."
    assert hub.card_excerpt("---\nlicense: mit\n") == ""  # unterminated front matter: nothing to show


# ----- search -------------------------------------------------------------------------------------


def _listings(fake: FakeHub) -> list[Request]:
    """The search pages fetched (GETs of /api/models; a HEAD there is the reachability check)."""
    return [r for r in fake.requests if r.method == "GET" and r.path == "/api/models"]


@pytest.fixture
def search_hub(fake_hub: FakeHub) -> FakeHub:
    """A Hub with a few well-known repositories whose counts order differently per sort key."""
    fake_hub.add(HubRepo("bartowski/Llama-3.2-1B-Instruct-GGUF", downloads=900, likes=10, trending=3,
                         last_modified="2025-03-01T00:00:00.000Z"))  # fmt: skip
    fake_hub.add(HubRepo("unsloth/Llama-3.2-3B-Instruct-GGUF", downloads=500, likes=90, trending=1,
                         last_modified="2025-01-01T00:00:00.000Z"))  # fmt: skip
    fake_hub.add(HubRepo("lmstudio-community/Llama-3.2-3B-Instruct-GGUF", downloads=100, likes=20,
                         trending=80, last_modified="2025-02-01T00:00:00.000Z"))  # fmt: skip
    fake_hub.add(HubRepo("ggml-org/Llama-3.2-1B-Instruct-GGUF", downloads=300, likes=5, trending=2,
                         last_modified="2025-06-01T00:00:00.000Z", gated="auto"))  # fmt: skip
    fake_hub.add(HubRepo("meta-llama/Llama-3.2-1B-Instruct", downloads=99999, tags=["transformers"]))
    fake_hub.add(HubRepo("Qwen/Qwen2.5-7B-Instruct-GGUF", downloads=5000))
    return fake_hub


def test_search_filters_by_query_and_gguf(search_hub: FakeHub) -> None:
    results = HubClient().search("  llama-3.2 ")
    found = results.next(20)
    ids = {r.repo_id for r in found}
    assert ids == {
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        "unsloth/Llama-3.2-3B-Instruct-GGUF",
        "lmstudio-community/Llama-3.2-3B-Instruct-GGUF",
        "ggml-org/Llama-3.2-1B-Instruct-GGUF",
    }  # not the transformers-only repository, not Qwen
    assert results.exhausted
    request = _listings(search_hub)[0]
    assert request.query["search"] == ["llama-3.2"]
    assert request.query["filter"] == ["gguf"]


def test_search_without_query_lists_every_gguf_repo(search_hub: FakeHub) -> None:
    found = HubClient().search("").next(50)
    assert [r.repo_id for r in found][:2] == ["Qwen/Qwen2.5-7B-Instruct-GGUF", STARTER_REPO]
    assert "meta-llama/Llama-3.2-1B-Instruct" not in {r.repo_id for r in found}
    assert "search" not in _listings(search_hub)[0].query


@pytest.mark.parametrize(
    ("sort", "first_owners"),
    [
        ("downloads", ["bartowski", "unsloth", "ggml-org", "lmstudio-community"]),
        ("likes", ["unsloth", "lmstudio-community", "bartowski", "ggml-org"]),
        ("trending_score", ["lmstudio-community", "bartowski", "ggml-org", "unsloth"]),
        ("last_modified", ["ggml-org", "bartowski", "lmstudio-community", "unsloth"]),
    ],
)
def test_search_sort_keys_change_the_order(
    search_hub: FakeHub, sort: hub.SortKey, first_owners: list[str]
) -> None:
    found = HubClient().search("Llama-3.2", sort=sort).next(10)
    assert [r.author for r in found] == first_owners


def test_search_summaries_carry_counts_dates_and_gated_flag(search_hub: FakeHub) -> None:
    found = {r.repo_id: r for r in HubClient().search("llama").next(10)}
    gated = found["ggml-org/Llama-3.2-1B-Instruct-GGUF"]
    assert gated.gated and not gated.private
    assert gated.downloads == 300 and gated.likes == 5
    assert gated.last_modified is not None and (gated.last_modified.year, gated.last_modified.month) == (
        2025,
        6,
    )
    plain = found["bartowski/Llama-3.2-1B-Instruct-GGUF"]
    assert not plain.gated and plain.author == "bartowski" and plain.downloads == 900


def test_search_paginates_lazily_across_link_pages(fake_hub: FakeHub) -> None:
    for i in range(1200):
        fake_hub.add(HubRepo(f"owner{i % 7}/model-{i:04d}-GGUF", downloads=10_000 + i))
    results = HubClient().search("model-")
    first = results.next(100)
    pages_after_first = len(_listings(fake_hub))
    second = results.next(100)
    pages_after_second = len(_listings(fake_hub))
    ids = [r.repo_id for r in first + second]
    assert len(ids) == len(set(ids)) == 200
    expected = [f"owner{i % 7}/model-{i:04d}-GGUF" for i in range(1199, 999, -1)]
    assert ids == expected  # most downloaded first, no gap or repeat at the page boundaries
    assert not results.exhausted
    # 50 per page: two pages per hundred, and nothing fetched ahead of what was asked for.
    assert (pages_after_first, pages_after_second) == (2, 4)
    cursors = [r.query.get("cursor", ["0"])[0] for r in _listings(fake_hub)]
    assert cursors == ["0", "50", "100", "150"]


def test_search_reports_exhausted_at_the_end(fake_hub: FakeHub) -> None:
    for i in range(1200):
        fake_hub.add(HubRepo(f"o/m{i}-GGUF", downloads=i))
    results = HubClient().search("m11")  # m11, m110..m119 and m1100..m1199: 111 repositories
    assert len(results.next(100)) == 100 and not results.exhausted
    last = results.next(100)
    assert len(last) == 11 and results.exhausted
    assert last[-1].repo_id == "o/m11-GGUF"  # the least downloaded comes last
    assert results.next(100) == [] and results.exhausted


# ----- details ------------------------------------------------------------------------------------


def test_details_of_the_starter_repository(fake_hub: FakeHub, starter_model: Path) -> None:
    details = HubClient().details(STARTER_REPO)
    assert details.repo_id == STARTER_REPO
    assert details.revision == COMMIT
    assert details.license == "apache-2.0"
    assert not details.gated
    assert len(details.groups) == 1
    group = details.groups[0]
    assert group.quant == "Q4_1"
    assert group.files == (RemoteFile(starter.FILENAME, starter.SIZE, starter.SHA256),)
    assert group.size == starter_model.stat().st_size == starter.SIZE
    assert details.n_params == STARTER_GGUF["total"]
    assert details.architecture == "llama"
    assert details.context_length == 8192
    assert details.other_files == ["README.md"]
    # The card without its front matter, first paragraphs only.
    assert details.card.startswith("# SmolLM2 GGUF\n\nSmolLM2 is a family of compact language models.")
    assert "license:" not in details.card and "---" not in details.card


def test_details_groups_sizes_and_sha256_of_a_multi_file_repository(fake_hub: FakeHub) -> None:
    blobs = {
        "M-Q8_0.gguf": b"8" * 800,
        "M-Q4_K_M.gguf": b"4" * 400,
        "BF16/M-BF16-00001-of-00002.gguf": b"a" * 1000,
        "BF16/M-BF16-00002-of-00002.gguf": b"b" * 600,
        "mmproj-M-F16.gguf": b"p" * 300,
    }
    files = {name: HubFile(data=data) for name, data in blobs.items()}
    files["config.json"] = HubFile(data=b"{}", lfs=False)
    gguf = {"total": 1_235_814_400, "architecture": "llama", "context_length": 131072}
    fake_hub.add(HubRepo("team/M-GGUF", files=files, license="llama3.2", gated="manual", gguf=gguf))
    details = HubClient().details("team/M-GGUF")
    assert [g.quant for g in details.groups] == ["BF16", "Q8_0", "Q4_K_M"]
    bf16 = details.groups[0]
    assert bf16.size == 1600 and bf16.complete and len(bf16.files) == 2
    import hashlib

    for group in details.groups:
        for f in group.files:
            assert f.size == len(blobs[f.filename])
            assert f.sha256 == hashlib.sha256(blobs[f.filename]).hexdigest()
    assert details.license == "llama3.2"
    assert details.gated
    assert details.card == ""  # no README: nothing fetched for it
    assert not any(r.path.endswith("/README.md") for r in fake_hub.requests)
    assert "config.json" in details.other_files and "mmproj-M-F16.gguf" not in details.other_files
    assert (details.n_params, details.context_length) == (1_235_814_400, 131072)


def test_details_of_a_repository_without_gguf_metadata(fake_hub: FakeHub) -> None:
    fake_hub.add(HubRepo("a/b-GGUF", files={"b-Q4_0.gguf": HubFile(data=b"x" * 10)}, license=None))
    details = HubClient().details("a/b-GGUF")
    assert (details.n_params, details.architecture, details.context_length, details.license) == (
        None,
        None,
        None,
        None,
    )
    assert [g.name for g in details.groups] == ["b-Q4_0.gguf"]


# ----- errors -------------------------------------------------------------------------------------


def _details_error(repo_id: str, token: str | None = None) -> HubError:
    with pytest.raises(HubError) as caught:
        HubClient(token=token).details(repo_id)
    return caught.value


def test_unknown_repository_is_not_found(fake_hub: FakeHub) -> None:
    error = _details_error("nobody/nothing-GGUF")
    assert error.kind == "not_found"
    assert "nobody/nothing-GGUF was not found" in error.message


def test_private_repository_without_token_is_not_found_with_a_hint(fake_hub: FakeHub) -> None:
    fake_hub.add(HubRepo("me/private-GGUF", private=True, files={"p-Q4_0.gguf": HubFile(data=b"p")}))
    error = _details_error("me/private-GGUF")
    assert error.kind == "not_found"
    assert "private" in error.message and "access token" in error.message
    # With a token that may read it, the same repository opens.
    fake_hub.valid_tokens.add(TOKEN)
    fake_hub.accepted_tokens.add(TOKEN)
    assert HubClient(token=TOKEN).details("me/private-GGUF").groups[0].name == "p-Q4_0.gguf"
    sent = [r.headers.get("authorization") for r in fake_hub.requests if "private-GGUF" in r.path]
    assert sent == [None, f"Bearer {TOKEN}"]


def test_invalid_token_is_an_auth_error_that_never_shows_the_token(fake_hub: FakeHub) -> None:
    error = _details_error(STARTER_REPO, token=TOKEN)
    assert error.kind == "auth"
    assert "401" in error.message
    assert TOKEN not in str(error) and TOKEN not in error.message and TOKEN not in repr(error.args)


def test_explain_masks_a_token_that_an_exception_quotes() -> None:
    error = hub.explain(RuntimeError(f"request with Authorization: Bearer {TOKEN} failed"), "a/b", TOKEN)
    assert error.kind == "other"
    assert TOKEN not in str(error)
    assert "hf_***" in error.message


def test_unreachable_hub_is_offline(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    error = _details_error(STARTER_REPO, token=TOKEN)
    assert error.kind == "offline"
    assert f"127.0.0.1:{port}" in error.message
    assert TOKEN not in error.message


def test_search_of_an_unreachable_hub_is_offline_at_once(
    hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(hub, "_last_reachable", {})  # a server earlier on this port answered: forget it
    with pytest.raises(HubError) as caught:
        HubClient(token=TOKEN).search("llama").next(20)
    assert caught.value.kind == "offline"
    assert TOKEN not in str(caught.value)


def test_explain_classifies_status_codes() -> None:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    def http_error(status: int) -> HfHubHTTPError:
        request = httpx2.Request("GET", "http://127.0.0.1/api/models/a/b")
        return HfHubHTTPError(f"{status}", response=httpx2.Response(status, request=request))

    assert hub.explain(http_error(429)).kind == "rate_limited"
    assert hub.explain(http_error(503)).kind == "server"
    assert hub.explain(http_error(403), "a/b").kind == "gated"
    assert hub.explain(UnsafeFileName("bad"), "a/b").kind == "unsafe"
    known = HubError("disk", "full")
    assert hub.explain(known) is known


def test_endpoint_follows_hf_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert hub.endpoint() == "https://huggingface.co"
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:8080/")
    assert hub.endpoint() == "http://mirror.example:8080"


def test_file_group_of_one_file() -> None:
    group = FileGroup((RemoteFile("x-Q4_0.gguf", 10, None),), "Q4_0")
    assert (group.name, group.label, group.size, group.complete) == ("x-Q4_0.gguf", "x-Q4_0.gguf", 10, True)


def test_bare_k_quants_and_quants_named_by_folder() -> None:
    quant_from_name = hub_files.quant_from_name
    assert quant_from_name("model-Q4_K.gguf") == "Q4_K"
    assert quant_from_name("model.q5_k.gguf") == "Q5_K"
    assert quant_from_name("BF16/model-00001-of-00002.gguf") == "BF16"
    assert quant_from_name("Q8_0/model.gguf") == "Q8_0"


def test_the_projector_that_comes_with_a_model_is_f16_unless_memory_is_short() -> None:
    files = [
        _rf("mmproj-M-Q8_0.gguf", 300),
        _rf("M-Q4_K_M.gguf", 4000),
        _rf("mmproj-M-f16.gguf", 600),
        _rf("sub/mmproj-model-F32.gguf", 1200),
        _rf("mmproj-odd.gguf", 100),
    ]
    found = hub_files.projector_files(files)
    assert [f.filename for f in found] == [
        "mmproj-M-f16.gguf", "sub/mmproj-model-F32.gguf", "mmproj-M-Q8_0.gguf", "mmproj-odd.gguf",
    ]  # fmt: skip
    model = hub_files.group_files(files)[0]
    roomy = hub_files.companion_projector(found, model, 16 << 30)
    assert roomy is not None and roomy.name == "mmproj-M-f16.gguf" and roomy.quant == "F16"
    tight = hub_files.companion_projector(found, model, (1 << 30) + 4200)  # model + f16 leaves < 1 GB
    assert tight is not None and tight.name == "mmproj-odd.gguf"
    assert hub_files.companion_projector([], model, 16 << 30) is None
    assert hub_files.companion_projector(found, hub_files.FileGroup((found[0],), "F16"), 16 << 30) is None
    assert "mmproj-M-f16.gguf" in hub_files.projector_note(
        found
    ) and "3 other precisions" in hub_files.projector_note(found)
    assert hub_files.projector_note([]) == ""
    assert hub_files.is_projector("dir/MMPROJ-x.gguf") and not hub_files.is_projector("mmproj.bin")
