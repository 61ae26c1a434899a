"""A file name from outside never writes outside its folder: Hub downloads, imported conversations'
attachments, imported models with their projector, and the attachments folder.

Hypothesis builds hostile names from the pieces that have broken path handling elsewhere (`..`,
absolute paths, backslashes, drive letters, NUL, control characters, Unicode look-alikes of the dot
and the slash, names far longer than a file system allows) and each property says: the name is
refused with the module's own clear error, or the file it names lands inside the folder (checked on
the resolved path of real files in a temporary folder).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.chat.store import Store
from app.core.hub.downloads import layout
from app.core.hub.files import UnsafeFileName, safe_relative_path
from app.core.media.attachments import AttachmentFolder, attachments_from_json, attachments_to_json
from app.core.models.library import import_copy
from tests.gguf_writer import write_model
from tests.projector_writer import write_projector

#: Pieces of hostile names.
PIECES = (
    "..", ".", "/", "\\", "C:", "C:\\", "c:/", "//server/share/", "\x00", "\x1f", "\n", " ", "~",
    "\u2024", "\u2025", "\uff0e", "\u2215", "\u2044", "\uff0f", "\u29f5", "%2e%2e", "%2f", "CON", "nul",
    "etc", "passwd", "model", ".gguf", ".txt", "é", "\u202e", "a" * 200,
)  # fmt: skip
hostile_names = st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("".join),
    st.text(max_size=40),
)
#: Settings for a property that writes real files: fewer inputs, no per-input deadline (disk).
WRITES = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def inside(path: Path, folder: Path) -> bool:
    """`path`, resolved (links and `..` followed), is in `folder` (resolved too)."""
    return path.resolve().is_relative_to(folder.resolve())


def lexically_inside(path: Path, folder: Path) -> bool:
    """`path` is in `folder` by its text alone (`..` applied): a file not yet written."""
    return Path(os.path.normpath(path)).is_relative_to(os.path.normpath(folder))


# ----- the Hub ------------------------------------------------------------------------------------


@settings(max_examples=100, derandomize=True)
@given(hostile_names)
@example("../../etc/passwd")
@example("a/../../x.gguf")
@example("/etc/passwd")
@example("C:\\Windows\\x.gguf")
@example("\u2024\u2024/x.gguf")  # one-dot leaders: not a dot to any file system, a plain name
@example("a\x00b.gguf")
@example("a" * 300 + ".gguf")
def test_a_hub_file_name_is_refused_or_lands_in_its_repository_folder(name: str) -> None:
    models = Path("/models")
    try:
        relative = safe_relative_path(name)
    except UnsafeFileName as exc:
        assert "refused file name" in str(exc)
        return
    assert not relative.is_absolute() and ".." not in relative.parts
    assert "\x00" not in name and "\\" not in name
    final = layout.final_path(models, "owner/repo", name)
    part = layout.part_path(models, "owner/repo", name)
    assert lexically_inside(final, models / "owner" / "repo"), final
    assert lexically_inside(part, models / layout.STAGING / "owner--repo"), part
    assert all(len(piece.encode()) <= 255 for piece in part.parts[:-1]), "a folder name too long"


@settings(max_examples=100, derandomize=True)
@given(hostile_names, hostile_names)
@example("..", "..")
@example("owner", "../../..")
@example("owner", "a/../../../x")  # before the fix only the callers checked this for the staging folder
def test_a_repository_id_is_refused_or_stays_in_the_models_folder(owner: str, name: str) -> None:
    models = Path("/models")
    repo_id = f"{owner}/{name}"
    try:
        folder = layout.repo_folder(repo_id)
    except UnsafeFileName:
        with pytest.raises(UnsafeFileName):  # the staging folder is refused alike, on its own
            layout.staging_dir(models, repo_id)
        return
    assert lexically_inside(models / folder, models) and models / folder != models
    assert lexically_inside(layout.staging_dir(models, repo_id), models / layout.STAGING)
    assert lexically_inside(layout.final_path(models, repo_id, "x.gguf"), models / folder)


def test_a_real_download_path_resolves_inside_the_models_folder(tmp_path: Path) -> None:
    models = tmp_path / "models"
    final = layout.final_path(models, "owner/repo", "sub/dir/x.gguf")
    final.parent.mkdir(parents=True)
    final.write_bytes(b"x")
    assert inside(final, models / "owner" / "repo")


# ----- an imported conversation's attachments -----------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A real export of a conversation with a text document attached."""
    folder = tmp_path_factory.mktemp("source")
    store = Store(folder / "conversations.db")
    try:
        note = folder / "notes.txt"
        note.write_text("the meeting is at noon\n", encoding="utf-8")
        attachment = store.attachment_folder.add_document(note)
        cid = store.create_conversation(title="with a document")
        store.add_message(cid, "user", "When?", None, attachments=attachments_to_json([attachment]))
        return store.export_json(cid)
    finally:
        store.close()


def _renamed(export: dict[str, object], name: str) -> dict[str, object]:
    """`export` with its attachment's name replaced by `name`."""
    messages = [dict(m) for m in export["messages"]]  # type: ignore[attr-defined]
    files = [dict(f) for f in messages[0]["attachments"]]
    files[0]["name"] = name
    messages[0]["attachments"] = files
    return {**export, "messages": messages}


@WRITES
@given(hostile_names.map(lambda name: name + ".txt"))
@example("../../../escaped.txt")
@example("/tmp/escaped.txt")
@example("..\\..\\escaped.txt")
@example("C:\\escaped.txt")
@example("a" * 300 + ".txt")  # found: longer than a file name may be, it made the whole import fail
@example("bad\x00name.txt")
def test_an_imported_attachment_name_never_places_a_file(
    tmp_path: Path, exported: dict[str, object], name: str
) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per input (Hypothesis may run one twice)
    store = Store(folder / "data" / "conversations.db")
    try:
        [cid] = store.import_any(_renamed(exported, name))
        files = [f for f in folder.rglob("*") if f.is_file()]
        for written in files:
            assert inside(written, folder / "data"), written
        for written in files:
            if written.parent.parent.name == "attachments":  # the kept copies are named by their hash
                assert written.name.split(".")[0] == hashlib.sha256(written.read_bytes()).hexdigest()
        kept = [a for m in store.export_json(cid)["messages"] for a in m.get("attachments", [])]
        assert len(kept) == 1, "the document still comes in, whatever it was called"
        assert base64.b64decode(kept[0]["data"]) == b"the meeting is at noon\n"
    finally:
        store.close()


# ----- an imported model and its projector --------------------------------------------------------


@pytest.fixture(scope="module")
def gguf_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real small GGUF model and a vision projector (import_copy reads the model before copying)."""
    folder = tmp_path_factory.mktemp("gguf")
    write_model(folder / "m.gguf", layers=1, dim=32, ffn=64, heads=2, kv_heads=1)
    write_projector(folder / "mmproj-m-f16.gguf", width=32)
    return folder / "m.gguf", folder / "mmproj-m-f16.gguf"


#: Names a real file may have on this system (no "/" nor NUL), built from the hostile pieces.
file_names = (
    st.lists(
        st.sampled_from([p for p in PIECES if "/" not in p and "\x00" not in p and len(p) < 50]), max_size=6
    )
    .map(lambda parts: "".join(parts) + ".gguf")
    .filter(lambda name: len(name.encode()) <= 200 and not name.lower().startswith("mmproj"))
)


@WRITES
@given(file_names)
@example("...gguf")  # found: its stem is "..", and the copy's folder was the models folder itself
@example("..gguf")
@example(". .gguf")
def test_an_imported_model_and_its_projector_stay_in_the_imported_folder(
    tmp_path: Path, gguf_files: tuple[Path, Path], name: str
) -> None:
    model, projector = gguf_files
    source_folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per input (Hypothesis may run one twice)
    source = source_folder / name
    shutil.copyfile(model, source)
    shutil.copyfile(projector, source_folder / "mmproj-vision-f16.gguf")
    models = Path(tempfile.mkdtemp(dir=tmp_path))
    copy = import_copy(source, models)
    imported = models / "imported"
    assert (
        inside(copy, imported)
        and copy.resolve() != imported.resolve()
        and copy.read_bytes() == model.read_bytes()
    )
    written = [p for p in models.rglob("*") if p.is_file()]
    assert len(written) == 2 and all(inside(p, imported) for p in written), written
    assert all(p.parent == copy.parent for p in written), "the projector is beside its model"


# ----- the attachments folder ---------------------------------------------------------------------

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a2f1b8"
    "6e0000000049454e44ae426082"
)


@WRITES
@given(hostile_names)
@example("../../../../etc/passwd")
@example("/etc/passwd")
def test_an_attachment_is_kept_under_its_hash_whatever_it_is_called(tmp_path: Path, name: str) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path)) / "attachments"
    attachment = AttachmentFolder(root).add_bytes(PNG, name)
    assert attachment.name == name  # shown to the user as it was called …
    path = AttachmentFolder(root).path(attachment)  # … but kept under its hash
    assert inside(path, root) and path.name == hashlib.sha256(PNG).hexdigest() + ".png"
    assert {p.parent for p in root.rglob("*") if p.is_file()} == {path.parent}


def test_a_stored_attachment_record_cannot_name_a_path() -> None:
    """A damaged or hand-made record (an imported export, an edited database) with a hash that is a
    path is skipped, so no path is ever made of it."""
    records = (
        '[{"kind": "image", "media_type": "image/png", "sha256": "../../../../etc/passwd"}]',
        '[{"kind": "image", "media_type": "image/png", "sha256": "/etc/passwd"}]',
        '[{"kind": "image", "media_type": "../x", "sha256": "' + "a" * 64 + '"}]',
    )
    for record in records:
        assert attachments_from_json(record) == []


def test_a_link_in_place_of_an_attachment_is_replaced_not_followed(tmp_path: Path) -> None:
    """Found: a symbolic link left where an attachment's file goes (to any file of the user's) was
    taken for the attachment, so the model would have been sent that file. Now the real picture
    replaces the link, and the file it pointed to is untouched."""
    root = tmp_path / "attachments"
    outside = tmp_path / "private.png"
    outside.write_bytes(b"not yours")
    digest = hashlib.sha256(PNG).hexdigest()
    target = root / digest[:2] / f"{digest}.png"
    target.parent.mkdir(parents=True)
    target.symlink_to(outside)
    (target.parent / f"{digest}.thumb.jpg").symlink_to(outside)
    folder = AttachmentFolder(root)
    attachment = folder.add_bytes(PNG, "picture.png")
    path = folder.path(attachment)
    assert not path.is_symlink() and path.read_bytes() == PNG
    assert not folder.thumbnail_path(attachment).is_symlink()
    assert outside.read_bytes() == b"not yours"


def test_a_link_in_place_of_a_document_is_replaced_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "attachments"
    outside = tmp_path / "secret.txt"
    outside.write_text("secret", encoding="utf-8")
    note = tmp_path / "note.txt"
    note.write_text("a note", encoding="utf-8")
    digest = hashlib.sha256(b"a note").hexdigest()
    target = root / digest[:2] / f"{digest}.txt"
    target.parent.mkdir(parents=True)
    target.symlink_to(outside)
    folder = AttachmentFolder(root)
    attachment = folder.add_document(note)
    assert folder.path(attachment) == target
    assert not target.is_symlink() and target.read_text(encoding="utf-8") == "a note"
    assert outside.read_text(encoding="utf-8") == "secret"
