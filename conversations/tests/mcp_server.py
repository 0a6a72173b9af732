"""A small MCP server for tests, written with the official SDK: over stdio (the default) or over streamable HTTP
(`--http PORT`, on 127.0.0.1). A standalone script: tests start it as a process of its own, as an operator would.

Tools: `add` (two numbers), `whoami` (the server's process id: tells a restarted server from the old one),
`delete_note` (harmless; the tests mark it as needing approval), `crash` (the process dies mid-call), `slow`.
"""

from __future__ import annotations

import argparse
import os
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("test-notes")


@server.tool(description="Add two numbers.")
def add(a: float, b: float) -> str:
    return f"{a:g} + {b:g} = {a + b:g}"


@server.tool(description="The id of the server's process.")
def whoami() -> str:
    return f"pid {os.getpid()}"


@server.tool(description="Delete a note by its title.")
def delete_note(title: str) -> str:
    return f"Deleted the note {title!r}."


@server.tool(description="Crash the server in the middle of the call.")
def crash() -> str:
    os._exit(3)


@server.tool(description="Take a while.")
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, help="serve streamable HTTP on this port of 127.0.0.1")
    options = parser.parse_args()
    if options.http:
        server.run("streamable-http", host="127.0.0.1", port=options.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
