"""Nothing leaves the machine: launch, model load and a whole chat attempt no outside connection."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.ui.shell.main_window import MainWindow

LOOPBACK = ("127.", "::1", "localhost")


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        return str(address[0]).startswith(LOOPBACK)
    return isinstance(address, str | bytes)  # AF_UNIX paths are local


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse and record every non-loopback connection or name lookup made from Python."""
    seen: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            seen.append(f"connect {address}")
            raise ConnectionRefusedError(f"test refuses outside connections: {address}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            seen.append(f"connect_ex {address}")
            return 111
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not str(host).startswith(LOOPBACK):
            seen.append(f"getaddrinfo {host}")
            raise socket.gaierror(f"test refuses name lookups: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


def test_launch_load_and_chat_attempt_no_connection(
    qtbot: QtBot, attempts: list[str], make_window: Callable[..., MainWindow], models_dir: Path
) -> None:
    # The guard works: an outside connection is refused and recorded.
    probe = socket.socket()
    with pytest.raises(ConnectionRefusedError):
        probe.connect(("93.184.216.34", 80))
    probe.close()
    assert attempts == ["connect ('93.184.216.34', 80)"]
    attempts.clear()

    window = make_window()  # launch + model scan + model load
    window.sampling.input("max_tokens").setValue(20)
    qtbot.keyClicks(window.composer, "Hello there")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
    assert window.messages.message(1).stats is not None
    window.close()
    assert attempts == []
    # Qt's networking is used for one thing only: the single-instance socket, a local (Unix domain)
    # socket named after the data folder. No TCP/UDP socket or network access manager exists.
    from PySide6.QtCore import QObject

    if "PySide6.QtNetwork" in sys.modules:
        from PySide6.QtNetwork import QAbstractSocket, QNetworkAccessManager

        app = QApplication.instance()
        assert app is not None
        for kind in (QAbstractSocket, QNetworkAccessManager):
            assert not app.findChildren(kind), kind
        assert not any(
            isinstance(w, QObject) and w.findChildren(QAbstractSocket) for w in app.topLevelWidgets()
        )
