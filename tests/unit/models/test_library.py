"""The library's file rules on real files in tmp_path: what delete_model may delete (and what it must
refuse), which files model_files lists, and how import_copy copies a model into the models folder."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from app.core.models import library
from app.core.models.library import delete_model, import_copy, is_inside, is_later_part, model_files


def _file(path: Path, content: bytes = b"GGUF weights") -> Path:
    """A file with some bytes (delete_model and model_files never read a model's contents)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _split(folder: Path, stem: str, total: int, present: tuple[int, ...] | None = None) -> list[Path]:
    """The parts of a gguf-split model, `<stem>-0000i-of-0000n.gguf`; only those in `present` written."""
    numbers = present if present is not None else tuple(range(1, total + 1))
    return [_file(folder / f"{stem}-{i:05d}-of-{total:05d}.gguf", bytes([i]) * 10) for i in numbers]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


# ----- delete_model: what it deletes ----------------------------------------------------------------


def test_a_model_in_the_models_folder_is_deleted_with_the_folders_it_leaves_empty(models: Path) -> None:
    model = _file(models / "owner" / "repo" / "q4" / "m-Q4_0.gguf")
    assert delete_model(model, models) == [model]
    assert not model.exists()
    assert not (models / "owner").exists()  # q4, repo and owner were left empty: all three removed
    assert models.is_dir()  # the models folder itself always stays, even when nothing is left in it


def test_a_model_right_in_the_models_folder_leaves_the_folder_in_place(models: Path) -> None:
    model = _file(models / "m.gguf")
    assert delete_model(model, models) == [model]
    assert not model.exists() and models.is_dir()


def test_folders_that_still_hold_something_stay_and_so_does_everything_in_them(models: Path) -> None:
    model = _file(models / "owner" / "repo" / "m-Q4_0.gguf")
    sibling = _file(models / "owner" / "repo" / "m-Q8_0.gguf")
    note = _file(models / "owner" / "README.txt", b"notes")
    delete_model(model, models)
    assert not model.exists()
    assert sibling.read_bytes() == b"GGUF weights" and note.read_bytes() == b"notes"


def test_an_emptied_folder_above_a_folder_that_stays_is_not_removed(models: Path) -> None:
    model = _file(models / "owner" / "repo" / "m.gguf")
    other = _file(models / "owner" / "other-repo" / "x.gguf")
    delete_model(model, models)
    assert not (models / "owner" / "repo").exists()
    assert other.exists() and (models / "owner").is_dir()


@pytest.mark.parametrize("chosen", [0, 1, 2], ids=["first part", "middle part", "last part"])
def test_every_part_of_a_split_model_goes_whichever_part_is_chosen(models: Path, chosen: int) -> None:
    folder = models / "owner" / "big"
    parts = _split(folder, "big-Q4_K_M", 3)
    # Beside it: another model, and one of the same name cut into a different number of parts.
    other = _file(folder / "big-Q8_0.gguf")
    other_split = _split(folder, "big-Q4_K_M", 2)
    assert delete_model(parts[chosen], models) == parts  # every part, in order
    assert not any(p.exists() for p in parts)
    assert other.exists() and all(p.exists() for p in other_split)


def test_a_split_model_with_a_part_missing_deletes_the_parts_that_are_there(models: Path) -> None:
    parts = _split(models / "o" / "r", "m", 3, present=(1, 3))
    assert delete_model(parts[0], models) == parts
    assert not (models / "o").exists()


# ----- delete_model: what it refuses ----------------------------------------------------------------


def test_a_model_kept_outside_the_models_folder_is_never_deleted_only_forgotten(
    models: Path, outside: Path
) -> None:
    model = _file(outside / "mine.gguf")
    with pytest.raises(ValueError, match="forgets it but does not delete it"):
        delete_model(model, models)
    assert model.read_bytes() == b"GGUF weights"


def test_a_split_model_outside_keeps_every_part(models: Path, outside: Path) -> None:
    parts = _split(outside, "mine", 2)
    with pytest.raises(ValueError):
        delete_model(parts[0], models)
    assert all(p.exists() for p in parts)


@pytest.mark.parametrize(
    "climb",
    ["../elsewhere/mine.gguf", "owner/../../elsewhere/mine.gguf"],
    ids=["up one", "down, then up two"],
)
def test_a_path_that_climbs_out_of_the_models_folder_is_refused(
    models: Path, outside: Path, climb: str
) -> None:
    model = _file(outside / "mine.gguf")
    (models / "owner").mkdir()
    with pytest.raises(ValueError):
        delete_model(models / climb, models)
    assert model.exists()


def test_the_folder_above_the_models_folder_is_outside_it(models: Path) -> None:
    model = _file(models.parent / "beside.gguf")
    with pytest.raises(ValueError):
        delete_model(model, models)
    assert model.exists()


def test_a_folder_whose_name_only_starts_like_the_models_folder_is_outside_it(models: Path) -> None:
    model = _file(models.parent / (models.name + "-old") / "m.gguf")  # ".../models-old/m.gguf"
    with pytest.raises(ValueError):
        delete_model(model, models)
    assert model.exists()


def test_a_link_in_the_models_folder_to_a_file_outside_is_refused(models: Path, outside: Path) -> None:
    target = _file(outside / "real.gguf")
    link = models / "link.gguf"
    link.symlink_to(target)
    with pytest.raises(ValueError):
        delete_model(link, models)
    assert target.read_bytes() == b"GGUF weights" and link.is_symlink()


def test_a_model_under_a_linked_folder_that_points_outside_is_refused(models: Path, outside: Path) -> None:
    target = _file(outside / "repo" / "m.gguf")
    (models / "owner").mkdir()
    (models / "owner" / "repo").symlink_to(outside / "repo", target_is_directory=True)
    with pytest.raises(ValueError):
        delete_model(models / "owner" / "repo" / "m.gguf", models)
    assert target.exists() and (models / "owner" / "repo").is_symlink()


def test_a_models_folder_reached_through_a_link_still_owns_its_models(tmp_path: Path, models: Path) -> None:
    linked = tmp_path / "models-link"
    linked.symlink_to(models, target_is_directory=True)
    model = _file(models / "owner" / "m.gguf")
    assert delete_model(model, linked) == [model]  # the folder as the settings name it, the file as found
    assert not model.exists() and not (models / "owner").exists() and models.is_dir()


def test_is_inside_compares_real_locations(tmp_path: Path, models: Path, outside: Path) -> None:
    (models / "a").mkdir()
    (models / "out").symlink_to(outside, target_is_directory=True)
    assert is_inside(models / "a" / "m.gguf", models)
    assert is_inside(models / "a" / ".." / "m.gguf", models)
    assert not is_inside(models / ".." / "m.gguf", models)
    assert not is_inside(models / "out" / "m.gguf", models)
    assert not is_inside(tmp_path / "models-old" / "m.gguf", models)


# ----- model_files: what the library lists ----------------------------------------------------------


def test_model_files_lists_gguf_files_but_not_partial_downloads_hidden_folders_or_later_parts(
    models: Path, outside: Path
) -> None:
    plain = _file(models / "owner" / "repo" / "B-model.gguf")
    upper = _file(models / "a-model.GGUF")  # the extension in any case
    first, _second = _split(models / "owner" / "split", "big", 2)
    _file(models / ".downloads" / "owner--repo" / "c.gguf")  # the staging folder of downloads
    _file(models / ".hidden" / "d.gguf")
    _file(models / "owner" / "notes.txt")
    kept_elsewhere = _file(outside / "Z-mine.gguf")
    found = model_files(models, [str(kept_elsewhere)])
    assert found == [upper.resolve(), plain.resolve(), first.resolve(), kept_elsewhere.resolve()]  # by name


def test_model_files_looks_only_max_depth_folders_down(models: Path) -> None:
    deep_enough = models.joinpath(*["d"] * library.MAX_DEPTH)
    too_deep = deep_enough / "d"
    found = _file(deep_enough / "found.gguf")
    _file(too_deep / "missed.gguf")
    assert model_files(models) == [found.resolve()]


def test_model_files_does_not_follow_linked_folders(models: Path, outside: Path) -> None:
    _file(outside / "repo" / "m.gguf")
    (models / "repo").symlink_to(outside / "repo", target_is_directory=True)
    assert model_files(models) == []


def test_only_parts_two_and_up_are_later_parts() -> None:
    assert not is_later_part(Path("m-00001-of-00003.gguf"))
    assert is_later_part(Path("m-00002-of-00003.gguf")) and is_later_part(Path("M-00003-OF-00003.GGUF"))
    assert not is_later_part(Path("m-Q4_0.gguf"))


# ----- import_copy ---------------------------------------------------------------------------------


@pytest.fixture
def tiny_model(outside: Path) -> Path:
    """A real, small GGUF (import_copy checks its source before copying)."""
    from tests.gguf_writer import write_model

    path = outside / "tiny.gguf"
    write_model(path, layers=1, dim=32, ffn=64, heads=2, kv_heads=1)
    return path


def test_import_copies_into_the_imported_folder_and_leaves_the_source(models: Path, tiny_model: Path) -> None:
    copy = import_copy(tiny_model, models)
    assert copy == models / "imported" / "tiny.gguf"
    assert copy.read_bytes() == tiny_model.read_bytes()
    assert tiny_model.exists()
    assert [p.name for p in (models / "imported").iterdir()] == ["tiny.gguf"]  # no temporary file left


def test_import_copies_every_part_of_a_split_model(models: Path, outside: Path, tiny_model: Path) -> None:
    first = outside / "cut-00001-of-00002.gguf"
    shutil.copyfile(tiny_model, first)
    second = _file(outside / "cut-00002-of-00002.gguf", b"the other tensors")
    assert import_copy(first, models) == models / "imported" / first.name
    assert (models / "imported" / second.name).read_bytes() == b"the other tensors"


def test_a_file_that_is_not_a_model_is_not_imported(models: Path, outside: Path) -> None:
    with pytest.raises(library.ModelFileError):
        import_copy(_file(outside / "fake.gguf", b"not a model at all"), models)
    assert not (models / "imported").exists()


def test_import_refuses_when_the_disk_lacks_room(
    models: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(library.shutil, "disk_usage", lambda _p: usage(10**12, 10**12, 100))
    with pytest.raises(OSError, match="not enough disk space"):
        import_copy(tiny_model, models)
    assert not (models / "imported").exists()


def test_a_cancelled_import_leaves_no_half_file(models: Path, tiny_model: Path) -> None:
    with pytest.raises(InterruptedError):
        import_copy(tiny_model, models, cancelled=lambda: True)
    assert list((models / "imported").iterdir()) == []


def test_a_model_used_in_place_in_another_apps_folder_finds_its_projector_there(
    tmp_path: Path, data_dir: Path
) -> None:
    from tests.gguf_writer import write_model
    from tests.projector_writer import write_projector

    # LM Studio keeps a vision model and its projector side by side in the model's folder.
    lm_studio = tmp_path / "lmstudio" / "models" / "someone" / "SmolVLM-GGUF"
    lm_studio.mkdir(parents=True)
    model = lm_studio / "SmolVLM-Q4_K_M.gguf"
    write_model(model, layers=2, dim=32, ffn=64, heads=2, kv_heads=1)
    write_projector(lm_studio / "mmproj-SmolVLM-f16.gguf", width=32)
    write_projector(lm_studio / "mmproj-SmolVLM-Q8_0.gguf", width=32)
    entries = library.scan(data_dir / "models", extra=[str(model)])
    assert [e.path.name for e in entries] == ["SmolVLM-Q4_K_M.gguf"]  # the projectors are not models
    (entry,) = entries
    assert entry.projector is not None and entry.projector.name == "mmproj-SmolVLM-f16.gguf"  # f16 first
    assert entry.projector_size == (lm_studio / "mmproj-SmolVLM-f16.gguf").stat().st_size


def test_lora_adapters_are_shown_with_the_model_they_fit_and_never_as_models(
    tmp_path: Path, data_dir: Path, starter_model: Path
) -> None:
    from app.core.inference.engine import Engine
    from app.core.inference.errors import EngineError
    from tests.lora_writer import write_lora

    folder = tmp_path / "models" / "someone" / "SmolLM2"
    folder.mkdir(parents=True)
    model = folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model.hardlink_to(starter_model)
    write_lora(folder / "support-assistant-lora.gguf", starter_model)
    write_lora(folder / "qwen-lora.gguf", starter_model, architecture="qwen2")  # another architecture
    write_lora(folder / "narrow-lora.gguf", starter_model, width=512)  # another width
    # Downloaded from an adapter repository, in its own folder: matched by its header all the same.
    elsewhere = tmp_path / "models" / "org" / "SmolLM2-sea-LoRA"
    elsewhere.mkdir(parents=True)
    write_lora(elsewhere / "sea-lora.gguf", starter_model)
    entries = library.scan(tmp_path / "models")
    assert [e.path.name for e in entries] == [model.name]
    assert sorted(a.name for a in entries[0].adapters) == ["sea-lora.gguf", "support-assistant-lora.gguf"]
    with pytest.raises(EngineError, match="is a LoRA adapter, not a model"):
        Engine().load(folder / "support-assistant-lora.gguf")
