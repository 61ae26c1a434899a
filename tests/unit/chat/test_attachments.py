"""Attached images: copied into the data folder at once under their sha256, kept with the message in
the store, exported and imported with the conversation, and removed when nothing refers to them."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from app.core.chat.store import Store
from app.core.chat.stored import to_message
from app.core.media.attachments import (
    MAX_IMAGE_BYTES,
    THUMBNAIL_SIDE,
    Attachment,
    AttachmentError,
    AttachmentFolder,
    attachments_from_json,
    attachments_to_json,
    with_images,
)
from app.core.media.images import ImageError, message_images
from tests.unit.inference.test_vision import png


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "conversations.db")
    yield s
    s.close()


def test_an_attached_file_is_copied_under_its_hash_so_the_original_may_vanish(tmp_path: Path) -> None:
    folder = AttachmentFolder(tmp_path / "attachments")
    original = tmp_path / "holiday photo.png"
    original.write_bytes(png((200, 100, 50)))
    attachment = folder.add_file(original)
    assert (attachment.kind, attachment.name, attachment.media_type) == (
        "image",
        "holiday photo.png",
        "image/png",
    )
    assert (attachment.width, attachment.height) == (96, 64)
    kept = folder.path(attachment)
    assert kept.read_bytes() == original.read_bytes() and kept.name == attachment.sha256 + ".png"
    original.unlink()  # moved or deleted before Send: the copy is what is sent
    source = folder.source(attachment)
    assert source.read() == kept.read_bytes() and source.digest == attachment.sha256
    again = folder.add_bytes(kept.read_bytes(), "same picture.png")
    assert again.sha256 == attachment.sha256
    names = {p.name for p in kept.parent.iterdir()}
    assert names == {kept.name, folder.thumbnail_path(attachment).name}  # kept once, with its thumbnail
    thumbnail = Image.open(folder.thumbnail_path(attachment))
    assert max(thumbnail.size) <= THUMBNAIL_SIDE and thumbnail.size[0] > thumbnail.size[1]


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: None, "no longer there"),
        (lambda p: p.write_bytes(b"hello, not a picture"), "not an image"),
        (lambda p: p.write_bytes(png((1, 1, 1))[:70]), "damaged"),
        (lambda p: p.mkdir(), "is a folder"),
    ],
    ids=["vanished", "not-an-image", "truncated", "a-folder"],
)
def test_a_file_that_cannot_be_attached_says_why(tmp_path: Path, make: object, said: str) -> None:
    path = tmp_path / "picture.png"
    make(path)  # type: ignore[operator]
    with pytest.raises(AttachmentError, match=said):
        AttachmentFolder(tmp_path / "attachments").add_file(path)


def test_a_file_too_large_to_attach_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    with huge.open("wb") as handle:
        handle.truncate(MAX_IMAGE_BYTES + 1)
    with pytest.raises(AttachmentError, match="images of up to 64 MB"):
        AttachmentFolder(tmp_path / "attachments").add_file(huge)


def test_a_full_disk_while_keeping_an_image_is_a_clear_message(tmp_path: Path) -> None:
    folder = AttachmentFolder(tmp_path / "attachments")
    (tmp_path / "attachments").write_text("a file where the folder should be")
    with pytest.raises(AttachmentError, match="could not be kept in the data folder"):
        folder.add_bytes(png((3, 3, 3)), "x.png")


def test_a_message_with_images_is_text_and_image_parts_read_when_needed(tmp_path: Path) -> None:
    folder = AttachmentFolder(tmp_path / "attachments")
    first, second = folder.add_bytes(png((1, 2, 3)), "a.png"), folder.add_bytes(png((4, 5, 6)), "b.png")
    content = with_images("Compare them", [first, second], folder)
    images = message_images(content)
    assert [i.name for i in images] == ["a.png", "b.png"] and content[-1] == {
        "type": "text",
        "text": "Compare them",
    }
    assert with_images("Just text", [], folder) == "Just text"
    folder.path(first).unlink()  # someone deleted it from the data folder
    with pytest.raises(ImageError, match="no longer in the data folder"):
        images[0].read()


def test_attachments_are_kept_with_their_message_and_read_back(store: Store, tmp_path: Path) -> None:
    folder = store.attachment_folder
    attachment = folder.add_bytes(png((9, 80, 9)), "leaf.png")
    cid = store.create_conversation(title="plants")
    mid = store.add_message(
        cid, "user", "What plant is this?", None, attachments=attachments_to_json([attachment])
    )
    stored = store.branch(cid)[0]
    assert attachments_from_json(stored.attachments) == [attachment]
    message = to_message(stored)
    assert message.attachments == [attachment] and message.content == "What plant is this?"
    assert folder.root == tmp_path / "attachments"
    assert mid == stored.id


def test_damaged_attachment_json_is_read_as_none_never_an_error() -> None:
    assert attachments_from_json("{not json") == []
    assert (
        attachments_from_json(
            json.dumps([{"kind": "image", "sha256": "../../etc/passwd", "media_type": "image/png"}])
        )
        == []
    )
    good = Attachment("image", "x.png", "image/png", "a" * 64, 10, 1, 1)
    assert attachments_from_json(json.dumps([good.to_dict(), 5, None])) == [good]


def test_the_json_export_carries_the_images_and_an_import_brings_them_back(
    store: Store, tmp_path: Path
) -> None:
    picture = png((120, 10, 200), stripes=True)
    attachment = store.attachment_folder.add_bytes(picture, "purple.png")
    cid = store.create_conversation(title="colours")
    store.add_message(cid, "user", "Which colour?", None, attachments=attachments_to_json([attachment]))
    exported = store.export_json(cid)
    item = exported["messages"][0]["attachments"][0]
    assert item["name"] == "purple.png" and base64.b64decode(item["data"]) == picture
    # Into another data folder: the image file comes with it.
    other = Store(tmp_path / "elsewhere" / "conversations.db")
    new_id = other.import_json(json.loads(json.dumps(exported)))
    imported = attachments_from_json(other.branch(new_id)[0].attachments)
    assert imported == [attachment]
    assert other.attachment_folder.path(imported[0]).read_bytes() == picture
    # An image that is not one is left out; the message's text still comes in.
    exported["messages"][0]["attachments"][0]["data"] = base64.b64encode(b"not a picture").decode()
    third = Store(tmp_path / "third" / "conversations.db")
    kept = third.branch(third.import_json(exported))[0]
    assert kept.content == "Which colour?" and attachments_from_json(kept.attachments) == []
    other.close()
    third.close()


def test_the_json_export_carries_documents_too_and_an_import_brings_them_back(
    store: Store, tmp_path: Path
) -> None:
    source = tmp_path / "notes.md"
    source.write_text("# Hours\n\nThe bakery opens at seven.\n")
    document = store.attachment_folder.add_file(source)
    cid = store.create_conversation(title="hours")
    store.add_message(cid, "user", "When?", None, attachments=attachments_to_json([document]))
    exported = json.loads(json.dumps(store.export_json(cid)))
    item = exported["messages"][0]["attachments"][0]
    assert item["kind"] == "document" and base64.b64decode(item["data"]) == source.read_bytes()
    other = Store(tmp_path / "elsewhere" / "conversations.db")
    imported = attachments_from_json(other.branch(other.import_json(exported))[0].attachments)
    assert imported == [document]
    assert other.attachment_folder.path(imported[0]).read_bytes() == source.read_bytes()
    # A name from the file cannot reach outside the folder it is checked in.
    item["name"] = "../../../evil.md"
    third = Store(tmp_path / "third" / "conversations.db")
    kept = attachments_from_json(third.branch(third.import_json(exported))[0].attachments)
    assert [a.name for a in kept] == ["evil.md"] and not (tmp_path / "evil.md").exists()
    other.close()
    third.close()


def test_purging_a_conversation_removes_the_images_only_it_used(store: Store) -> None:
    folder = store.attachment_folder
    shared = folder.add_bytes(png((1, 1, 200)), "shared.png")
    own = folder.add_bytes(png((200, 1, 1)), "own.png")
    unsent = folder.add_bytes(png((1, 200, 1)), "unsent.png")
    keep, gone = store.create_conversation(title="keep"), store.create_conversation(title="gone")
    store.add_message(keep, "user", "a", None, attachments=attachments_to_json([shared]))
    store.add_message(gone, "user", "b", None, attachments=attachments_to_json([shared, own]))
    for attachment in (shared, own):  # attached long ago; `unsent` a moment ago
        os.utime(folder.path(attachment), (1, 1))
        os.utime(folder.thumbnail_path(attachment), (1, 1))
    store.delete_conversation(gone)
    store.purge_deleted()
    assert folder.path(shared).exists()
    assert not folder.path(own).exists() and not folder.thumbnail_path(own).exists()
    assert folder.path(unsent).exists()  # may belong to a message not sent yet
    assert store.collect_attachments(keep_unsent_s=0) == 1 and not folder.path(unsent).exists()
