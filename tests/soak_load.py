"""A soak of the local API server: many concurrent clients, a share of which misbehave.

Used by the suite's short soak (tests/unit/api/test_soak.py) and by the long one
(tests/perf/soak_api.py). Every well-behaved reply is checked against a reference taken before the
load, one request at a time: its prompt token count must be its own prompt's (a reply sent to the
wrong client would carry another prompt's count: every prompt has a different length), and the text
is compared too (counted, since batching may change a greedy reply's last digits on some machines).

The misbehaving clients, one request in `misbehave_every`, take turns:

* ``disconnect``: a streaming request dropped after its first token;
* ``slow_body``: the request body trickles in small pieces (then its reply is read and checked);
* ``no_read``: a streaming request whose reply is never read; the client holds the connection
  until its worker has finished two more requests, then closes it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

#: Misbehaviours, in the order they take turns.
MISBEHAVIOURS = ("disconnect", "slow_body", "no_read")


def prompts(count: int) -> list[str]:
    """`count` prompts of different lengths (each one word longer than the last), each naming its number."""
    words = ["apple", "river", "stone", "cloud", "lamp", "forest", "bread", "candle", "window", "garden"]
    return [
        f"Request {i}: list these words back: " + " ".join(words[j % len(words)] for j in range(i + 1))
        for i in range(count)
    ]


@dataclass(frozen=True, slots=True)
class Expected:
    """What a prompt's reply is, asked alone: its prompt token count and its text."""

    prompt_tokens: int
    text: str


@dataclass
class SoakReport:
    """What a soak saw."""

    requests: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    #: Well-behaved replies that came back whole and for their own prompt.
    correct: int = 0
    #: Of those, replies whose text was the reference's too.
    same_text: int = 0
    #: Replies for another prompt (a prompt token count that is not the request's own).
    mixed: list[str] = field(default_factory=list)
    #: Requests that got an error or a broken reply (status and message).
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for a person."""
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_kind.items()))
        return (
            f"{self.requests} requests ({kinds}) in {self.seconds:.1f} s: {self.correct} well-behaved "
            f"replies correct ({self.same_text} with the reference text), {len(self.mixed)} mixed, "
            f"{len(self.errors)} errors"
        )


def _body(prompt: str, max_tokens: int, stream: bool, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 1,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _parse_stream(lines: list[str]) -> tuple[str, int | None]:
    """The text and prompt token count of a streamed reply's `data:` lines."""
    text, prompt_tokens, done = [], None, False
    for line in lines:
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            done = True
            continue
        chunk = json.loads(data)
        for choice in chunk.get("choices") or []:
            text.append((choice.get("delta") or {}).get("content") or "")
        if chunk.get("usage"):
            prompt_tokens = chunk["usage"]["prompt_tokens"]
    if not done:
        raise ValueError("the stream ended without [DONE]")
    return "".join(text), prompt_tokens


async def reference(address: str, key: str, texts: list[str], max_tokens: int, model: str) -> list[Expected]:
    """Each prompt's reply asked alone, one at a time (what the soak's replies are checked against)."""
    out = []
    async with httpx.AsyncClient(base_url=address, headers={"Authorization": f"Bearer {key}"}) as client:
        for prompt in texts:
            reply = await client.post(
                "/chat/completions", json=_body(prompt, max_tokens, False, model), timeout=60
            )
            reply.raise_for_status()
            data = reply.json()
            out.append(Expected(data["usage"]["prompt_tokens"], data["choices"][0]["message"]["content"]))
    counts = [e.prompt_tokens for e in out]
    assert len(set(counts)) == len(counts), f"prompts must differ in length to tell replies apart: {counts}"
    return out


class _Soak:
    """The shared state of one soak run."""

    def __init__(
        self, address: str, key: str, texts: list[str], expected: list[Expected], max_tokens: int, model: str
    ) -> None:
        self.address, self.key, self.texts, self.expected = address, key, texts, expected
        self.max_tokens, self.model = max_tokens, model
        parts = urlsplit(address)
        self.host, self.port, self.base = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.report = SoakReport()
        self.next_index = 0

    def check(self, index: int, status: int, text: str | None, prompt_tokens: int | None, what: str) -> None:
        """Record a well-behaved reply's outcome."""
        want = self.expected[index % len(self.expected)]
        if status != 200 or text is None:
            self.report.errors.append(f"#{index} {what}: HTTP {status}")
        elif prompt_tokens != want.prompt_tokens:
            self.report.mixed.append(
                f"#{index} {what}: {prompt_tokens} prompt tokens, not {want.prompt_tokens}"
            )
        else:
            self.report.correct += 1
            self.report.same_text += text == want.text

    async def plain(self, client: httpx.AsyncClient, index: int) -> None:
        """A well-behaved request, streamed or not (alternately)."""
        prompt = self.texts[index % len(self.texts)]
        stream = index % 2 == 0
        body = _body(prompt, self.max_tokens, stream, self.model)
        if not stream:
            reply = await client.post("/chat/completions", json=body)
            if reply.status_code != 200:
                self.check(index, reply.status_code, None, None, f"plain: {reply.text[:200]}")
                return
            data = reply.json()
            self.check(
                index, 200, data["choices"][0]["message"]["content"], data["usage"]["prompt_tokens"], "plain"
            )
            return
        async with client.stream("POST", "/chat/completions", json=body) as reply:
            lines = [line async for line in reply.aiter_lines()]
        if reply.status_code != 200:
            self.check(index, reply.status_code, None, None, "stream: " + " ".join(lines)[:200])
            return
        try:
            text, prompt_tokens = _parse_stream(lines)
        except (ValueError, KeyError) as exc:
            self.report.errors.append(f"#{index} stream: {exc}")
            return
        self.check(index, 200, text, prompt_tokens, "stream")

    async def disconnect(self, client: httpx.AsyncClient, index: int) -> None:
        """A streaming request dropped after its first token."""
        body = _body(self.texts[index % len(self.texts)], self.max_tokens, True, self.model)
        async with client.stream("POST", "/chat/completions", json=body) as reply:
            async for line in reply.aiter_lines():
                if line.startswith("data: ") and '"content"' in line:
                    break  # leaving the block closes the connection mid-stream

    def _raw_request(self, index: int, stream: bool) -> tuple[bytes, bytes]:
        body = json.dumps(
            _body(self.texts[index % len(self.texts)], self.max_tokens, stream, self.model)
        ).encode()
        head = (
            f"POST {self.base}/chat/completions HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        return head, body

    async def slow_body(self, index: int) -> None:
        """A request whose body arrives in small pieces; its reply is then read and checked."""
        head, body = self._raw_request(index, False)
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(head)
            step = max(1, len(body) // 8)
            for start in range(0, len(body), step):
                writer.write(body[start : start + step])
                await writer.drain()
                await asyncio.sleep(0.02)  # the misbehaviour itself: a slow sender
            raw = await asyncio.wait_for(reader.read(), timeout=120)
        finally:
            writer.close()
        status_line, _, rest = raw.partition(b"\r\n")
        status = int(status_line.split()[1]) if status_line.startswith(b"HTTP/") else 0
        payload = rest.partition(b"\r\n\r\n")[2]
        try:
            data = json.loads(payload)
            self.check(
                index,
                status,
                data["choices"][0]["message"]["content"],
                data["usage"]["prompt_tokens"],
                "slow",
            )
        except (ValueError, KeyError, IndexError):
            self.report.errors.append(f"#{index} slow body: HTTP {status} {payload[:200]!r}")

    async def no_read(self, index: int, finished: asyncio.Event) -> None:
        """A streaming request whose reply is never read; closed once `finished` is set."""
        head, body = self._raw_request(index, True)
        _reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(head + body)
        await writer.drain()
        await finished.wait()
        writer.close()

    async def worker(self, total: int, misbehave_every: int) -> None:
        """One client: takes the next request number until `total` have been sent."""
        headers = {"Authorization": f"Bearer {self.key}"}
        held: list[tuple[asyncio.Task[None], asyncio.Event, int]] = []
        async with httpx.AsyncClient(base_url=self.address, headers=headers, timeout=120) as client:
            while self.next_index < total:
                index = self.next_index
                self.next_index += 1
                self.report.requests += 1
                kind = (
                    MISBEHAVIOURS[(index // misbehave_every) % len(MISBEHAVIOURS)]
                    if misbehave_every and index % misbehave_every == misbehave_every - 1
                    else "plain"
                )
                self.report.by_kind[kind] += 1
                try:
                    if kind == "plain":
                        await self.plain(client, index)
                    elif kind == "disconnect":
                        await self.disconnect(client, index)
                    elif kind == "slow_body":
                        await self.slow_body(index)
                    else:
                        finished = asyncio.Event()
                        held.append((asyncio.create_task(self.no_read(index, finished)), finished, 2))
                except (TimeoutError, httpx.HTTPError, OSError) as exc:
                    self.report.errors.append(f"#{index} {kind}: {type(exc).__name__}: {exc}")
                if kind != "no_read":
                    # Each finished request of this client brings its held connections closer to closing.
                    for n, (task, finished, left) in enumerate(held):
                        held[n] = (task, finished, left - 1)
                        if left - 1 <= 0:
                            finished.set()
            for _task, finished, _left in held:
                finished.set()
            await asyncio.gather(*(task for task, _f, _l in held))


async def soak(
    address: str,
    key: str,
    model: str,
    *,
    total: int,
    concurrency: int = 16,
    misbehave_every: int = 5,
    max_tokens: int = 8,
    distinct: int = 24,
) -> SoakReport:
    """Run `total` requests from `concurrency` clients against the server at `address` (…/v1)."""
    texts = prompts(distinct)
    expected = await reference(address, key, texts, max_tokens, model)
    run = _Soak(address, key, texts, expected, max_tokens, model)
    started = time.perf_counter()
    await asyncio.gather(*(run.worker(total, misbehave_every) for _ in range(concurrency)))
    run.report.seconds = time.perf_counter() - started
    return run.report


def established(port: int) -> int:
    """TCP connections to `port` on this machine that are open now (Linux's /proc/net/tcp, tcp6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state = fields[1], fields[3]
            # State 01 is ESTABLISHED; count the server's end only (its local port is `port`).
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count
