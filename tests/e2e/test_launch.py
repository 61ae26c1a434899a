"""`python -m app` opens the window on qasync's loop, loads the starter model, and exits cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_python_m_app_launches_loads_and_stops_cleanly(tmp_path: Path, starter_model: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FIRESIDE_MODEL_CACHE": str(starter_model.parent)}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--data-dir", str(data)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        settings = data / "settings.json"
        deadline = time.monotonic() + 60
        # The window saves the chosen model once it has loaded it.
        while time.monotonic() < deadline and process.poll() is None:
            # settings.json is replaced atomically, so a read never sees half a file.
            if settings.is_file() and json.loads(settings.read_text()).get("last_model"):
                break
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()
        assert json.loads(settings.read_text())["last_model"].endswith(starter_model.name)
        assert (data / "models" / starter_model.name).is_file()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert time.monotonic() - started < 3.0
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
