"""llama-cpp-python's own OpenAI-compatible server (`python -m llama_cpp.server`) as a child process on
127.0.0.1: the stand-in for vLLM or a llama.cpp server in the remote-engine tests and benchmark."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

#: The model id the server reports (without an alias it would be the GGUF's full path).
MODEL_ID = "smollm2-remote"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """One `llama_cpp.server` process; `restart()` brings it back on the same port."""

    def __init__(self, model: Path, log: Path, port: int | None = None, n_ctx: int = 2048) -> None:
        self.model, self.log, self.n_ctx = model, log, n_ctx
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL, ending in /v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 60.0) -> LlamaServer:
        """Start it and wait until GET /v1/models answers."""
        cmd = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", MODEL_ID,
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--verbose", "False",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.proc.returncode}); see {self.log}")
            try:
                if httpx.get(f"{self.url}/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"llama_cpp.server did not answer within {timeout_s:g} s; see {self.log}")

    @property
    def running(self) -> bool:
        """True while the process lives."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Kill it at once (SIGKILL): a server that dies mid-reply, as after a crash or a power cut."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> LlamaServer:
        """Start it again on the same port."""
        self.kill()
        return self.start()

    def requests_logged(self, what: str = "POST /v1/chat/completions") -> int:
        """How many such requests the server's access log shows."""
        return self.log.read_text(errors="replace").count(what) if self.log.exists() else 0
