"""GGUF validation against the real starter model and broken files made from it."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.core.models import starter
from app.core.models.gguf_file import ModelFileError, inspect_model
from app.core.values.units import format_params, format_size

HEAD = 4 << 20  # enough of the real file to hold its whole header and metadata


def _copy_head(src: Path, dest: Path, n: int) -> Path:
    with open(src, "rb") as f_in, open(dest, "wb") as f_out:
        f_out.write(f_in.read(n))
    return dest


def test_real_model_metadata(starter_model: Path) -> None:
    info = inspect_model(starter_model)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.file_size == starter.SIZE
    assert info.context_length == 8192
    assert info.block_count == 30
    assert 130_000_000 < info.parameter_count < 140_000_000
    assert info.has_chat_template and "<|im_start|>" in (info.chat_template or "")
    assert info.gguf_version == 3
    assert format_size(info.file_size) == "98.4 MB"
    assert format_params(info.parameter_count) == "135M"


def _error(path: Path) -> str:
    with pytest.raises(ModelFileError) as info:
        inspect_model(path)
    assert path.name in str(info.value), "the message must name the file"
    return info.value.reason


def test_truncated_tensor_data(starter_model: Path, tmp_path: Path) -> None:
    broken = _copy_head(starter_model, tmp_path / "half.gguf", starter.SIZE // 2)
    reason = _error(broken)
    assert "truncated" in reason and f"{starter.SIZE // 2:,}" in reason and "download it again" in reason


def test_truncated_inside_metadata(starter_model: Path, tmp_path: Path) -> None:
    broken = _copy_head(starter_model, tmp_path / "stub.gguf", 5000)
    assert "truncated or damaged" in _error(broken)


def test_wrong_magic(starter_model: Path, tmp_path: Path) -> None:
    broken = _copy_head(starter_model, tmp_path / "magic.gguf", HEAD)
    with open(broken, "r+b") as handle:
        handle.write(b"GGML")
    assert "not a GGUF model file" in _error(broken)


def test_text_file_renamed_to_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "notes.gguf"
    fake.write_text("<!DOCTYPE html><html>404 Not Found</html>")
    assert "not a GGUF model file" in _error(fake)


def test_unsupported_version(starter_model: Path, tmp_path: Path) -> None:
    broken = _copy_head(starter_model, tmp_path / "v99.gguf", HEAD)
    with open(broken, "r+b") as handle:
        handle.seek(4)
        handle.write(struct.pack("<I", 99))
    assert "GGUF version 99 is not supported" in _error(broken)


def test_no_architecture(tmp_path: Path) -> None:
    # A well-formed GGUF v3 header with no tensors and no metadata at all.
    bare = tmp_path / "bare.gguf"
    bare.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    assert "names no model architecture" in _error(bare)


def test_zero_bytes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gguf"
    empty.touch()
    assert "empty (0 bytes)" in _error(empty)


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "model.gguf"
    folder.mkdir()
    assert "folder, not a model file" in _error(folder)


def test_missing_file(tmp_path: Path) -> None:
    assert "file not found" in _error(tmp_path / "gone.gguf")


def test_unreadable_permissions(starter_model: Path, tmp_path: Path) -> None:
    """Root reads anything, so under root the check runs in a child without the capability to."""
    locked = _copy_head(starter_model, tmp_path / "locked.gguf", HEAD)
    os.chmod(locked, 0o000)
    code = (
        "import sys\nfrom app.core.models.gguf_file import inspect_model, ModelFileError\n"
        "try:\n    inspect_model(sys.argv[1])\nexcept ModelFileError as e:\n    print(e)\n"
    )
    command = [sys.executable, "-c", code, str(locked)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "util-linux's setpriv is needed to drop root's read-anything capability"
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    finally:
        os.chmod(locked, 0o644)
    assert result.returncode == 0, result.stderr
    assert "locked.gguf: permission denied" in result.stdout


def test_sampling_defaults_from_the_file(starter_model: Path, starter_with_sampling_defaults: Path) -> None:
    assert inspect_model(starter_model).sampling_defaults == {}  # the starter file recommends nothing
    info = inspect_model(starter_with_sampling_defaults)
    assert info.sampling_defaults == {"temperature": 0.6, "top_k": 20, "top_p": 0.8}
    assert info.parameter_count == inspect_model(starter_model).parameter_count


#: Metadata that is only shown: invalid UTF-8 there must not cost the user their model.
INFORMATIVE = {
    "general.description": "A tiny model for tests",
    "general.author": "Fireside tests",
    "general.license": "apache-2.0",
}


def test_a_damaged_name_is_shown_with_replacement_characters_and_the_model_still_chats(
    starter_model: Path, tmp_path: Path
) -> None:
    from app.core.inference.engine import Engine
    from app.core.inference.options import LoadOptions
    from app.core.values.sampling import SamplingParams
    from tests.gguf_writer import damage_string

    damaged = tmp_path / "damaged-name.gguf"
    shutil.copyfile(starter_model, damaged)
    damage_string(damaged, "general.name", at=2)
    info = inspect_model(damaged)
    assert "\ufffd" in info.name and info.name.startswith("Sm")
    assert info.architecture == "llama" and info.has_chat_template
    engine = Engine()
    try:
        engine.load(damaged, LoadOptions(context_length=512))
        pieces: list[str] = []
        stats = engine.stream_chat(
            [{"role": "user", "content": "Hi"}],
            SamplingParams(max_tokens=4, temperature=0),
            pieces.append,
            threading.Event(),
        )
    finally:
        engine.unload()
    assert stats.completion_tokens >= 1 and "".join(pieces)


@pytest.mark.parametrize("key", sorted(INFORMATIVE))
def test_damaged_informative_strings_leave_the_model_usable(tmp_path: Path, key: str) -> None:
    from tests.gguf_writer import damage_string, write_model

    path = tmp_path / "model.gguf"
    write_model(path, strings=INFORMATIVE)
    damage_string(path, key, at=1)
    info = inspect_model(path)
    assert info.architecture == "llama" and info.block_count == 4


@pytest.mark.parametrize("key", ["general.architecture", "tokenizer.ggml.model", "tokenizer.chat_template"])
def test_a_damaged_string_that_matters_is_a_clear_error_naming_it(tmp_path: Path, key: str) -> None:
    from tests.gguf_writer import damage_string, write_model

    path = tmp_path / "model.gguf"
    write_model(path, strings={"tokenizer.chat_template": "{{ messages[0]['content'] }}"})
    damage_string(path, key, at=0)
    reason = _error(path)
    assert key in reason and "not valid UTF-8" in reason


def test_a_damaged_key_name_is_a_clear_error(tmp_path: Path) -> None:
    from tests.gguf_writer import write_model

    path = tmp_path / "model.gguf"
    write_model(path, strings=INFORMATIVE)
    data = bytearray(path.read_bytes())
    where = data.find(b"general.license")
    data[where : where + 2] = b"\x80\xff"
    path.write_bytes(bytes(data))
    reason = _error(path)
    assert "name of a metadata key is not valid UTF-8" in reason
