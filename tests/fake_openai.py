"""A small OpenAI-compatible server on 127.0.0.1 for the remote-engine tests: models, streamed chat
completions in the OpenAI SSE format, and the faults a real one shows (bad key, unknown model, rate
limit, a crash, a stream cut mid-reply, a slow stream)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeOpenAI:
    """Settings the handler reads on each request."""

    api_key: str | None = None
    models: list[str] = field(default_factory=lambda: ["tiny-model"])
    words: list[str] = field(default_factory=lambda: [f"word{i} " for i in range(20)])
    delay_s: float = 0.005
    status: int | None = None  # answer every chat request with this status
    retry_after: str | None = None
    cut_after: int | None = None  # close the connection after this many chunks, without [DONE]
    refuse_fields: tuple[str, ...] = ()  # answer 400 to a request naming one of these (as OpenAI's API)
    #: Answer a request that offers tools with these calls ((name, arguments) each), streamed in pieces
    #: as OpenAI streams them, instead of words.
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The base URL, ending in /v1."""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._json(
                        401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}}
                    )
                    return False
                return True

            def do_GET(self) -> None:
                if self.path != "/v1/models":
                    self._json(404, {"error": {"message": "not found"}})
                elif self._authorized():
                    self._json(
                        200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]}
                    )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(body)
                if not self._authorized():
                    return
                if fake.status is not None:
                    headers = {"Retry-After": fake.retry_after} if fake.retry_after else None
                    self._json(fake.status, {"error": {"message": f"status {fake.status}"}}, headers)
                    return
                unknown = [name for name in fake.refuse_fields if name in body]
                if unknown:
                    message = f"Unrecognized request argument supplied: {unknown[0]}"
                    self._json(400, {"error": {"message": message, "type": "invalid_request_error"}})
                    return
                if body.get("model") not in fake.models:
                    self._json(404, {"error": {"message": f"model {body.get('model')} not found"}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                limit = min(len(fake.words), int(body.get("max_tokens") or 10**9))
                if fake.tool_calls and body.get("tools") and body["messages"][-1].get("role") != "tool":
                    self._stream_calls()
                    return
                try:
                    for i, word in enumerate(fake.words[:limit]):
                        if fake.cut_after is not None and i >= fake.cut_after:
                            self.wfile.flush()
                            self.connection.shutdown(2)  # the server dies mid-reply
                            return
                        chunk = {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(fake.delay_s)
                    reason = "length" if limit < len(fake.words) else "stop"
                    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}
                    usage = {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": limit}}
                    self.wfile.write(
                        f"data: {json.dumps(end)}\n\ndata: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()
                    )
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (a stop)

            def _stream_calls(self) -> None:
                chunks = []
                for index, (name, arguments) in enumerate(fake.tool_calls):
                    head = {"index": index, "id": f"call_{index}", "type": "function",
                            "function": {"name": name, "arguments": ""}}  # fmt: skip
                    chunks.append([head])
                    half = len(arguments) // 2  # the arguments in two pieces, as OpenAI sends them
                    for piece in (arguments[:half], arguments[half:]):
                        chunks.append([{"index": index, "function": {"arguments": piece}}])
                for calls in chunks:
                    chunk = {"choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
