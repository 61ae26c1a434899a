"""A connection to one MCP server, with the official `mcp` SDK: start or reach it, list its tools,
call them with a time limit. Qt-free and async (it runs on the app's event loop).

The SDK's client is a context manager; it is entered and left in a task of its own that holds the
connection open while the server is used, so a stdio server keeps running between calls. A server
that exits, or never answers, ends a call in progress with a clear ToolResult instead of hanging
it; the next call connects again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from app.core.tools.calls import ToolSpec
from app.core.tools.mcp_config import McpConfigError, McpServerConfig

log = logging.getLogger(__name__)

#: Seconds allowed to start (or reach) a server and list its tools.
CONNECT_TIMEOUT_S = 30.0
#: The most text of a tool's result kept (what goes back to the model, and into the chat).
MAX_RESULT_CHARS = 100_000


class McpError(Exception):
    """A server cannot be used (it did not start, refused, or answered nonsense); the message is for
    the user."""


@dataclass(frozen=True, slots=True)
class McpTool:
    """A tool of a server: the server's own name for it, and the tool as the model is offered it
    (named "<server>__<tool>", so tools of two servers never clash)."""

    server: str
    name: str
    spec: ToolSpec


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call gave: its text (or the error's), and how it went."""

    text: str
    is_error: bool = False
    timed_out: bool = False


def model_name(server: str, tool: str) -> str:
    """The name a model calls `tool` of `server` by (OpenAI's names: letters, digits, _ and -)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{server}__{tool}")[:64]


class McpConnection:
    """One MCP server, connected on first use and kept open until `close`."""

    def __init__(self, config: McpServerConfig) -> None:
        self.config = config
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Event | None = None
        self._lock = asyncio.Lock()  # one connection attempt at a time

    @property
    def connected(self) -> bool:
        """The server is running (or reachable) now."""
        return self._client is not None and self._task is not None and not self._task.done()

    async def tools(self) -> list[McpTool]:
        """The server's tools (connecting first). Raises McpError."""
        client = await self._connected()
        try:
            listed = await asyncio.wait_for(client.list_tools(), CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise McpError(
                f"{self.config.name} did not list its tools within {CONNECT_TIMEOUT_S:g} s."
            ) from None
        except Exception as exc:
            raise McpError(f"{self.config.name} could not list its tools: {_said(exc)}") from exc
        out = []
        for tool in listed.tools:
            schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
            spec = ToolSpec(model_name(self.config.name, tool.name), tool.description or "", schema)
            out.append(McpTool(self.config.name, tool.name, spec))
        return out

    async def call(self, tool: str, arguments: dict[str, Any], timeout_s: float | None = None) -> ToolResult:
        """Call `tool` with `arguments`: its result, or a ToolResult saying why there is none (the
        time limit, the server gone, an error it reported). Never raises for the server's faults."""
        limit = timeout_s if timeout_s is not None else self.config.timeout_s
        try:
            client = await self._connected()
        except McpError as exc:
            return ToolResult(str(exc), is_error=True)
        call = asyncio.ensure_future(client.call_tool(tool, arguments))
        assert self._task is not None
        held = self._task
        done, _ = await asyncio.wait({call, held}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if call not in done:
            call.cancel()
            if held in done:  # the connection ended under the call: the server exited
                self._client = None
                return ToolResult(f"{self.config.name} stopped during the call to {tool}.", is_error=True)
            return ToolResult(f"{tool} gave no result within {limit:g} s.", is_error=True, timed_out=True)
        try:
            result = call.result()
        except Exception as exc:
            # A protocol error (a tool's own failure is a result, not an exception): the connection
            # is started afresh for the next call.
            await self.close()
            if "connection closed" in _said(exc).lower():
                return ToolResult(f"{self.config.name} stopped during the call to {tool}.", is_error=True)
            return ToolResult(f"{tool} failed: {_said(exc)}", is_error=True)
        return ToolResult(_text(result), is_error=bool(getattr(result, "is_error", False)))

    async def close(self) -> None:
        """Disconnect (a stdio server's process ends)."""
        if self._closing is not None:
            self._closing.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except (TimeoutError, Exception):
                self._task.cancel()
        self._client, self._task, self._closing = None, None, None

    async def _connected(self) -> Any:
        async with self._lock:
            if self.connected:
                return self._client
            await self.close()
            ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._closing = asyncio.Event()
            self._task = asyncio.ensure_future(self._hold(ready, self._closing))
            try:
                self._client = await asyncio.wait_for(asyncio.shield(ready), CONNECT_TIMEOUT_S)
            except TimeoutError:
                await self.close()
                raise McpError(
                    f"{self.config.name} did not answer within {CONNECT_TIMEOUT_S:g} s of starting."
                ) from None
            except McpError:
                await self.close()
                raise
            return self._client

    def _target(self) -> Any:
        from mcp.client.stdio import StdioServerParameters

        config = self.config
        if config.url:
            return config.url
        try:
            env = config.environment()
        except McpConfigError as exc:
            raise McpError(str(exc)) from exc
        return StdioServerParameters(command=config.command, args=list(config.args), env=env or None)

    async def _hold(self, ready: asyncio.Future[Any], closing: asyncio.Event) -> None:
        """Enter the SDK's client, hand it over, and keep it open until `closing` is set."""
        from mcp import Client

        try:
            async with Client(self._target()) as client:
                if not ready.done():
                    ready.set_result(client)
                await closing.wait()
        except BaseException as exc:  # the SDK raises exception groups; cancellation goes on below
            cancelled = isinstance(exc, asyncio.CancelledError)
            if not ready.done() and not cancelled:  # (cancelled: the caller gave up waiting already)
                ready.set_exception(McpError(f"{self.config.name} could not be started: {_said(exc)}"))
            elif not closing.is_set():
                log.info("MCP server %s disconnected: %s", self.config.name, _said(exc))
            if cancelled or isinstance(exc, KeyboardInterrupt | SystemExit):
                raise


def _said(exc: BaseException) -> str:
    """An exception (or the first of a group) in a few words."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "…"


def _text(result: Any) -> str:
    """A tool's result as text: its text parts, else its structured content as JSON."""
    parts = []
    for item in getattr(result, "content", None) or ():
        if getattr(item, "type", None) == "text":
            parts.append(str(item.text))
        else:
            parts.append(f"[{getattr(item, 'type', 'content')} not shown]")
    text = "\n".join(parts)
    structured = getattr(result, "structured_content", None)
    if not text and structured is not None:
        text = json.dumps(structured, ensure_ascii=False)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + "\n[… cut]"
