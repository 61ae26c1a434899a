"""The API server's small settings: loopback detection, keys, and what the settings file may hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.api.config import DEFAULT_PORT, ServerSettings, is_loopback, new_api_key
from app.core.settings import Settings


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_only_loopback_addresses_count_as_this_computer(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_generated_keys_are_long_random_and_distinct() -> None:
    keys = {new_api_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(key.startswith("fs-") and len(key) >= 30 for key in keys)


def test_settings_survive_a_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings()
    settings.api_server = ServerSettings(enabled=True, port=9123, allow_network=True)
    settings.save(path)
    assert Settings.load(path).api_server == ServerSettings(enabled=True, port=9123, allow_network=True)
    assert "key" not in json.loads(path.read_text("utf-8"))["api_server"], "the key lives in the keyring"


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "on",
        {"enabled": "yes", "port": 80, "allow_network": 1},  # truthy but not true; a privileged port
        {"enabled": True, "port": 70000},
        {"port": "8080"},
        {"port": True},
    ],
)
def test_a_damaged_entry_falls_back_to_safe_defaults(stored: object) -> None:
    settings = ServerSettings.from_dict(stored)
    assert settings.port == DEFAULT_PORT
    assert not settings.allow_network, "network access is never switched on by a malformed file"
    assert settings.enabled is (isinstance(stored, dict) and stored.get("enabled") is True)
