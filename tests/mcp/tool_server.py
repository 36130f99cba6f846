"""A real MCP server for the tests, on the official Python SDK over Streamable HTTP: tools with
arguments, one that fails, one that is slow, one whose answer is huge. `/private/mcp` is the same
server behind a bearer token (MCP_TOOL_SERVER_TOKEN), as a hosted server would be.

    python tool_server.py    (prints "listening on <port>" once it serves a port of its own)
"""

import asyncio
import os
import socket

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("test-tools", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two whole numbers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Says the text back."""
    return f"echo: {text}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason given (a ToolError's message reaches the caller)."""
    raise ToolError(f"failed on purpose: {reason}")


@server.tool()
async def slow(seconds: float) -> str:
    """Answers after the given number of seconds."""
    await asyncio.sleep(seconds)
    return f"slept {seconds} s"


@server.tool()
def lookup(query: str) -> str:
    """Looks a word up in the test dictionary."""
    return f"found in the dictionary: {query}"


@server.tool()
def huge(characters: int) -> str:
    """Returns a text of the given length."""
    return "x" * characters


app = server.streamable_http_app()
TOKEN = os.environ.get("MCP_TOOL_SERVER_TOKEN", "")


async def with_token(scope, receive, send):
    """`/private/mcp` takes only the bearer token; `/mcp` takes anyone."""
    if scope["type"] == "http" and scope["path"].startswith("/private"):
        headers = dict(scope["headers"])
        if headers.get(b"authorization", b"").decode() != f"Bearer {TOKEN}":
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error": "a bearer token is needed"}'})
            return
        scope = {**scope, "path": scope["path"].removeprefix("/private"),
                 "raw_path": scope["raw_path"].removeprefix(b"/private")}
    await app(scope, receive, send)


if __name__ == "__main__":
    listener = socket.socket()
    # Its answers go out at once (accepted connections take this from the listener): otherwise a
    # client's delayed acknowledgement holds each answer on a kept-alive connection for 40 ms.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(f"listening on {listener.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(with_token, log_level="warning")).run(sockets=[listener])
