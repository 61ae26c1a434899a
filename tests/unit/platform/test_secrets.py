"""The access token lives in the keyring, or for the session only where there is none; never in a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.errors import PasswordSetError

from app.core.platform import secrets
from app.core.settings import Settings
from tests.memory_keyring import InMemoryKeyring

TOKEN = "hf_SecretTokenValue1234567890abcdefgh"


def test_round_trip_through_the_keyring(memory_keyring: InMemoryKeyring) -> None:
    assert secrets.has_secure_store()
    assert "keyring" in secrets.store_kind() and memory_keyring.name in secrets.store_kind()
    assert secrets.hf_token() is None
    assert secrets.set_secret(secrets.HF_TOKEN, TOKEN) is True
    assert memory_keyring.passwords == {(secrets.SERVICE, secrets.HF_TOKEN): TOKEN}
    assert secrets.get_secret(secrets.HF_TOKEN) == TOKEN == secrets.hf_token()
    assert keyring.get_password("Fireside", "huggingface-token") == TOKEN  # where other tools would look
    assert secrets._session == {}  # kept by the keyring, not in memory
    assert secrets.set_secret(secrets.HF_TOKEN, None) is True
    assert secrets.hf_token() is None
    assert memory_keyring.passwords == {}
    assert secrets.set_secret(secrets.HF_TOKEN, "") is True  # deleting what is not there is fine


def test_a_replaced_token_wins(memory_keyring: InMemoryKeyring) -> None:
    secrets.set_secret(secrets.HF_TOKEN, TOKEN)
    secrets.set_secret(secrets.HF_TOKEN, TOKEN + "2")
    assert secrets.hf_token() == TOKEN + "2"


def test_without_a_keyring_the_token_lasts_the_session(no_keyring: Any) -> None:
    assert not secrets.has_secure_store()
    assert "session only" in secrets.store_kind()
    assert secrets.set_secret(secrets.HF_TOKEN, TOKEN) is False
    assert secrets.hf_token() == TOKEN
    secrets.set_secret(secrets.HF_TOKEN, None)
    assert secrets.hf_token() is None


class RefusingKeyring(InMemoryKeyring):
    """A keyring that exists but will not store (a locked collection, a denied prompt)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("the collection is locked")


def test_a_keyring_that_refuses_keeps_the_token_for_the_session(isolated_keyring: Any) -> None:
    keyring.set_keyring(RefusingKeyring())
    assert secrets.has_secure_store()
    assert secrets.set_secret(secrets.HF_TOKEN, TOKEN) is False
    assert secrets.hf_token() == TOKEN


def test_the_token_is_never_logged(memory_keyring: Any, caplog: pytest.LogCaptureFixture) -> None:
    keyring.set_keyring(RefusingKeyring())
    caplog.set_level("DEBUG")
    secrets.set_secret(secrets.HF_TOKEN, TOKEN)
    assert "could not store" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("hf_" + "a1B2c3D4e5" * 3 + "xyzw", True),
        ("  hf_abcdefghijklmnopqrstuvwxyzABCD \n", True),  # pasted with spaces around
        ("hf_abc_def_ghi_jkl_mno_pqr", True),
        ("hf_short", False),
        ("", False),
        ("abcdefghijklmnopqrstuvwxyz0123456789", False),  # no hf_ prefix
        ("HF_abcdefghijklmnopqrstuvwxyz", False),
        ("hf_abcdefghijklmnop qrstuvwxyz", False),  # a space inside
        ("hf_abcdefghijklmnopqrstuvwxyzé", False),  # not ASCII
        ("hf_abcdefghijklmnopqrstuvwxyz!", False),
        ("Bearer hf_abcdefghijklmnopqrstuvwxyz", False),
    ],
)
def test_looks_like_hf_token(value: str, ok: bool) -> None:
    assert secrets.looks_like_hf_token(value) is ok


@pytest.mark.parametrize("store", ["memory_keyring", "no_keyring"])
def test_nothing_is_written_to_the_data_folder(
    store: str, request: pytest.FixtureRequest, data_dir: Path
) -> None:
    request.getfixturevalue(store)
    secrets.set_secret(secrets.HF_TOKEN, TOKEN)
    settings = Settings(last_model="/models/x.gguf")
    settings.save()  # what the app writes to the data folder when preferences are saved
    assert secrets.hf_token() == TOKEN
    written = [p for p in data_dir.rglob("*") if p.is_file()]
    assert written  # the scan saw the settings file
    for path in written:
        assert TOKEN.encode() not in path.read_bytes(), path
