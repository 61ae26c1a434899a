"""Read Fireside's message list the way a Linux screen reader does: over AT-SPI, on a real X server.

Run inside a private D-Bus session (`dbus-run-session -- python atspi_check.py PYATSPI_PYTHON`): it
starts Xvfb (which says on a pipe when it is ready), shows a MessageView holding two messages with
Qt's AT-SPI bridge on, then walks the accessibility tree from another interpreter, one that has
pyatspi (Debian's python3-pyatspi), and prints what it found as JSON: one [depth, role, name,
description] per node of the application, or {"error": ...}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_NAME = "fireside-atspi-check"
MESSAGES = [("user", "What is the capital of France?"), ("assistant", "Paris is the capital of France.")]

QT_SIDE = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from PySide6.QtWidgets import QApplication
from app.core.chat.messages import Message, Role
from app.core.chat.transcript import Transcript
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.message_view import MessageView
app = QApplication(sys.argv)
app.setApplicationName({APP_NAME!r})
transcript = Transcript([Message(Role(role), text) for role, text in {MESSAGES!r}])
view = MessageView()
view.setModel(MessageListModel(transcript))
view.resize(600, 400)
view.show()
print("ready", flush=True)
app.exec()
"""

CLIENT = f"""
import json, time, pyatspi
def walk(node, depth, out):
    out.append([depth, node.getRoleName(), node.name, node.description])
    for i in range(node.childCount):
        walk(node.getChildAtIndex(i), depth + 1, out)
    return out
deadline = time.monotonic() + 30
while True:
    desktop = pyatspi.Registry.getDesktop(0)
    apps = [desktop.getChildAtIndex(i) for i in range(desktop.childCount)]
    mine = [a for a in apps if a is not None and a.name == {APP_NAME!r}]
    if mine:
        print(json.dumps(walk(mine[0], 0, [])))
        break
    if time.monotonic() > deadline:
        print(json.dumps({{"error": "the app never appeared on the AT-SPI bus"}}))
        break
    time.sleep(0.2)  # polling the bus: AT-SPI has no 'application registered' wait here
"""


def main() -> int:
    """Start the X server and the app, read the tree, print it (exit 0 unless something broke)."""
    pyatspi_python = sys.argv[1]
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    app = None
    try:
        with os.fdopen(read_end) as ready:
            display = ready.readline().strip()  # written once the server accepts clients
        if not display:
            print(json.dumps({"error": "Xvfb did not start"}))
            return 1
        env = {
            **os.environ,
            "DISPLAY": f":{display}",
            "QT_QPA_PLATFORM": "xcb",
            "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1",
        }
        app = subprocess.Popen(
            [sys.executable, "-c", QT_SIDE],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert app.stdout is not None
        if app.stdout.readline().strip() != "ready":
            print(json.dumps({"error": f"the app did not start: {app.stderr.read() if app.stderr else ''}"}))
            return 1
        client = subprocess.run(
            [pyatspi_python, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=60
        )
        print(client.stdout.strip() or json.dumps({"error": client.stderr.strip()}))
        return 0
    finally:
        if app is not None:
            app.kill()
            app.wait(10)
        xvfb.kill()
        xvfb.wait(10)


if __name__ == "__main__":
    raise SystemExit(main())
