"""The MCP servers the user set up, on an event loop of their own: list their tools, call them.

The `mcp` SDK is async; the window's event loop is Qt's and the inference thread has none. So the
toolbox runs one asyncio loop on a daemon thread, where every connection lives, and answers each
request by calling `done` on that thread: the window passes callbacks that hop to the GUI thread.
Nothing here blocks its caller.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from app.core.tools.mcp_client import McpConnection, McpError, McpTool, ToolResult
from app.core.tools.mcp_config import McpServerConfig

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Listing:
    """A server's tools, or why they could not be listed."""

    server: str
    tools: tuple[McpTool, ...] = ()
    error: str = ""


class Toolbox:
    """MCP servers by name, connected on first use, on the toolbox's own event-loop thread."""

    def __init__(self, configs: Sequence[McpServerConfig] = ()) -> None:
        self._configs: dict[str, McpServerConfig] = {c.name: c for c in configs}
        self._connections: dict[str, McpConnection] = {}
        #: Every tool listed so far, by the name the model calls it.
        self._tools: dict[str, McpTool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ----- settings ---------------------------------------------------------------------------

    @property
    def configs(self) -> list[McpServerConfig]:
        """The servers, in the order they were added."""
        return list(self._configs.values())

    def configure(self, configs: Sequence[McpServerConfig]) -> None:
        """Use these servers from now on; a removed or changed server is disconnected (a change of
        which tools are always allowed only is not a change of the server)."""
        new = {c.name: c for c in configs}
        for name, old in self._configs.items():
            if _same_server(new.get(name), old):
                if name in self._connections:
                    self._connections[name].config = new[name]
            elif name in self._connections:
                self._submit(self._connections.pop(name).close())
                self._tools = {k: t for k, t in self._tools.items() if t.server != name}
        self._configs = new

    def always_allowed(self, model_name: str) -> bool:
        """The user chose "Always allow this tool" for it."""
        tool = self._tools.get(model_name)
        config = self._configs.get(tool.server) if tool is not None else None
        return config is not None and tool is not None and tool.name in config.always_allowed

    def allow_always(self, model_name: str) -> McpServerConfig | None:
        """Remember "Always allow this tool"; the server's changed settings (to save), or None."""
        tool = self._tools.get(model_name)
        config = self._configs.get(tool.server) if tool is not None else None
        if config is None or tool is None:
            return None
        changed = replace(config, always_allowed=config.always_allowed | {tool.name})
        self._configs[config.name] = changed
        if config.name in self._connections:
            self._connections[config.name].config = changed
        return changed

    def known(self, model_name: str) -> McpTool | None:
        """A tool listed before, by its model name."""
        return self._tools.get(model_name)

    # ----- work on the loop -------------------------------------------------------------------

    def list_tools(self, done: Callable[[list[Listing]], None]) -> Future[list[Listing]]:
        """List the tools of every enabled server; `done` gets one Listing per server."""
        return self._submit(self._list_all(), done)

    def test(self, config: McpServerConfig, done: Callable[[Listing], None]) -> Future[Listing]:
        """Start (or reach) a server not saved yet, list its tools, disconnect."""
        return self._submit(self._test(config), done)

    def call(
        self, model_name: str, arguments: dict[str, Any], done: Callable[[ToolResult], None]
    ) -> Future[ToolResult]:
        """Call a tool by its model name, within its server's time limit."""
        return self._submit(self._call(model_name, arguments), done)

    def close(self, timeout_s: float = 10.0) -> None:
        """Disconnect every server and end the loop's thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._close_all(), loop)
        try:
            future.result(timeout_s)
        except Exception:  # a server that will not stop must not hold the app open
            log.warning("MCP servers did not all close within %g s", timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        self._loop = self._thread = None

    async def _list_all(self) -> list[Listing]:
        configs = [c for c in self._configs.values() if c.enabled]
        return list(await asyncio.gather(*(self._list(c) for c in configs)))

    async def _list(self, config: McpServerConfig) -> Listing:
        connection = self._connections.get(config.name)
        if connection is None:
            connection = self._connections[config.name] = McpConnection(config)
        try:
            tools = await connection.tools()
        except McpError as exc:
            return Listing(config.name, error=str(exc))
        self._tools = {k: t for k, t in self._tools.items() if t.server != config.name}
        self._tools.update({t.spec.name: t for t in tools})
        return Listing(config.name, tuple(tools))

    async def _test(self, config: McpServerConfig) -> Listing:
        connection = McpConnection(config)
        try:
            return Listing(config.name, tuple(await connection.tools()))
        except McpError as exc:
            return Listing(config.name, error=str(exc))
        finally:
            await connection.close()

    async def _call(self, model_name: str, arguments: dict[str, Any]) -> ToolResult:
        try:
            return await self._call_tool(model_name, arguments)
        except Exception as exc:  # a bug here must not leave the card "Running…" for ever
            log.exception("calling %s failed", model_name)
            return ToolResult(f"The call to {model_name} failed: {exc}", is_error=True)

    async def _call_tool(self, model_name: str, arguments: dict[str, Any]) -> ToolResult:
        if model_name not in self._tools:  # asked before the servers were listed (just after a launch)
            await self._list_all()
        tool = self._tools.get(model_name)
        config = self._configs.get(tool.server) if tool is not None else None
        if tool is None or config is None:
            return ToolResult(
                f"There is no tool called {model_name} (is its MCP server still set up?).", True
            )
        if not config.enabled:
            return ToolResult(f"The MCP server {config.name} is turned off in Preferences.", True)
        connection = self._connections.get(config.name)
        if connection is None:
            connection = self._connections[config.name] = McpConnection(config)
        return await connection.call(tool.name, arguments)

    async def _close_all(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)

    def _submit(self, work: Coroutine[Any, Any, T], done: Callable[[T], None] | None = None) -> Future[T]:
        future = asyncio.run_coroutine_threadsafe(work, self._running_loop())
        if done is not None:

            def answer(finished: Future[T]) -> None:
                try:
                    result = finished.result()
                except BaseException:  # a bug, not a server's fault: logged, the caller not left hanging
                    log.exception("MCP work failed")
                    return
                done(result)

            future.add_done_callback(answer)
        return future

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="fireside-mcp", daemon=True)
                self._loop = loop
                self._thread.start()
            return self._loop


def _same_server(new: McpServerConfig | None, old: McpServerConfig) -> bool:
    """The same server, started the same way (its "always allowed" tools aside)."""
    return new is not None and replace(new, always_allowed=frozenset()) == replace(
        old, always_allowed=frozenset()
    )


class ToolboxRunner:
    """Runs a chat session's tool calls on a toolbox; each result reaches the session through
    `deliver` (which runs a callable on the session's thread: the window's GUI thread)."""

    def __init__(
        self,
        toolbox: Toolbox,
        deliver: Callable[[Callable[[], None]], None],
        remembered: Callable[[McpServerConfig], None] | None = None,
    ) -> None:
        self.toolbox = toolbox
        self.deliver = deliver
        #: Told a server's settings after "Always allow this tool" changed them (to save them).
        self.remembered = remembered

    def run(self, name: str, arguments: dict[str, Any], done: Callable[[ToolResult], None]) -> None:
        """Call tool `name`; `done` gets the result through `deliver`."""
        self.toolbox.call(name, arguments, lambda result: self.deliver(lambda: done(result)))

    def always_allowed(self, name: str) -> bool:
        """The user chose "Always allow this tool" for `name`."""
        return self.toolbox.always_allowed(name)

    def allow_always(self, name: str) -> None:
        """Remember "Always allow this tool" for `name` (and have the settings saved)."""
        changed = self.toolbox.allow_always(name)
        if changed is not None and self.remembered is not None:
            self.remembered(changed)
