"""A small MCP server for the tests, written with the official `mcp` SDK: run over stdio (the
default) or streamable HTTP (`--http PORT`). Its tools add, echo an environment variable, sleep,
fail, and end the process mid-call."""

from __future__ import annotations

import argparse
import os
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("fireside-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def secret_word() -> str:
    """The value of the SECRET_WORD environment variable."""
    return os.environ.get("SECRET_WORD", "(not set)")


@server.tool()
def sleep(seconds: float) -> str:
    """Sleep, then say so."""
    time.sleep(seconds)
    return f"slept {seconds} s"


@server.tool()
def fail(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"failed on purpose: {reason}")


@server.tool()
def die() -> str:
    """Ends the server's process without answering."""
    os._exit(3)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=0, help="serve streamable HTTP on this port")
    args = parser.parse_args()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()
