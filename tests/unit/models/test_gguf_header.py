"""The GGUF header reader: the model shape from a local file and from the Hub with Range requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.hub.client import HubClient, HubError
from app.core.models.estimate import estimate
from app.core.models.gguf_file import inspect_model
from app.core.models.gguf_header import ByteSource, HeaderError, file_source, read_shape
from tests.conftest import STARTER_REPO
from tests.fakehub import FakeHub, HubFile, HubRepo


def test_starter_shape_matches_the_full_reader(starter_model: Path) -> None:
    arch, shape = read_shape(file_source(str(starter_model)))
    full = inspect_model(starter_model).shape
    assert arch == "llama"
    assert (shape.n_layers, shape.n_embd, shape.n_head, shape.n_head_kv) == (30, 576, 9, 3)
    assert shape.n_vocab == full.n_vocab == 49152
    assert shape.context_length == full.context_length == 8192


def test_not_a_gguf_and_truncated_headers_are_refused(starter_model: Path, tmp_path: Path) -> None:
    html = tmp_path / "page.gguf"
    html.write_bytes(b"<!DOCTYPE html><html>" + bytes(100))
    with pytest.raises(HeaderError, match="not a GGUF"):
        read_shape(file_source(str(html)))
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(starter_model.read_bytes()[:200_000])  # inside the vocabulary
    with pytest.raises(HeaderError, match="ended inside its header"):
        read_shape(file_source(str(cut)))


def test_header_size_is_bounded(starter_model: Path) -> None:
    with pytest.raises(HeaderError, match="larger than"):
        read_shape(ByteSource(file_source(str(starter_model)).__dict__["_fetch"], limit=64 * 1024))


def test_remote_shape_reads_megabytes_not_the_model(fake_hub: FakeHub, starter_model: Path) -> None:
    client = HubClient()
    shape = client.remote_shape(STARTER_REPO, "main", starter_model.name)
    assert (shape.n_layers, shape.n_head_kv, shape.n_vocab) == (30, 3, 49152)
    fetched = fake_hub.body_bytes(starter_model.name)
    assert 0 < fetched < 4 * 1024 * 1024, fetched  # the header only, of a 98 MB file
    # With the shape, the estimate before download is the one after download.
    local = inspect_model(starter_model)
    before = estimate(local.file_size, shape, 4096)
    after = estimate(local.file_size, local.shape, 4096)
    assert (before.kv_cache, before.compute, before.basis) == (after.kv_cache, after.compute, "model shape")


def test_remote_shape_of_a_gated_file_is_explained(fake_hub: FakeHub, starter_model: Path) -> None:
    fake_hub.add(HubRepo("org/Gated-GGUF", files={"m.gguf": HubFile(path=starter_model)}, gated="auto"))
    with pytest.raises(HubError) as caught:
        HubClient().remote_shape("org/Gated-GGUF", "main", "m.gguf")
    assert caught.value.kind == "gated"
