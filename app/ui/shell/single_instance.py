"""One Fireside per data folder: a second launch brings the running window to the front and exits.

Two copies on one data folder would fight over the same conversation database and download queue.
The first copy listens on a local socket named after the user and the data folder; a later launch
connects, sends what it was asked to open (if anything), and quits. A copy with another data folder
(`--data-dir`) is independent and runs alongside.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from app.core.platform import paths

log = logging.getLogger(__name__)
TIMEOUT_MS = 1500


def server_name() -> str:
    """The socket name for this user and data folder."""
    key = f"{getpass.getuser()}:{paths.data_dir()}".encode()
    return "fireside-" + hashlib.sha256(key).hexdigest()[:16]


def notify_running(model: str | None = None) -> bool:
    """If a Fireside already runs on this data folder, ask it to come to the front (and open `model`);
    True when it answered, so this launch should exit."""
    socket = QLocalSocket()
    socket.connectToServer(server_name())
    if not socket.waitForConnected(TIMEOUT_MS):
        return False
    if model:  # the running copy has another working directory
        model = str(Path(model).expanduser().resolve())
    socket.write(json.dumps({"activate": True, "model": model}).encode() + b"\n")
    socket.flush()
    socket.waitForBytesWritten(TIMEOUT_MS)
    # The running copy answers "ok" once it has the request. No answer (it is closing, or hung): this
    # launch goes on and starts normally rather than exit with nothing on screen.
    answered = socket.waitForReadyRead(3 * TIMEOUT_MS) and bytes(socket.readLine().data()).strip() == b"ok"
    socket.disconnectFromServer()
    return answered


class InstanceServer(QObject):
    """Listens for later launches; `activated(model or "")` fires for each."""

    activated = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._on_connection)

    def listen(self) -> bool:
        """Start listening; a socket left by a copy that crashed is removed first."""
        name = server_name()
        if not self.server.listen(name):
            # Another copy may have started listening a moment ago (two launches at once): only a
            # socket nobody answers on is stale and may be removed.
            if notify_running():
                return False
            QLocalServer.removeServer(name)
            if not self.server.listen(name):
                log.warning("single-instance socket unavailable: %s", self.server.errorString())
                return False
        return True

    def _on_connection(self) -> None:
        while (socket := self.server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)
            if socket.bytesAvailable():
                self._read(socket)

    def _read(self, socket: QLocalSocket) -> None:
        if not socket.canReadLine():
            return
        line = bytes(socket.readLine().data()).decode("utf-8", "replace")
        try:
            request = json.loads(line)
        except ValueError:
            return
        socket.write(b"ok\n")
        socket.flush()
        model = request.get("model") if isinstance(request, dict) else None
        log.info("a second launch asked this window to come to the front")
        self.activated.emit(model if isinstance(model, str) else "")

    def close(self) -> None:
        """Stop listening."""
        self.server.close()
