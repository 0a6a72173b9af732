"""MCP servers as server tools: the operator's CHAT_MCP_SERVERS (stdio commands or streamable HTTP URLs), their
tools listed per chat for the user to enable, and calls made with the official `mcp` SDK.

Each server has one `Connection` per worker, on the worker's MCP session loop (a thread of its own): one
supervising task opens the SDK's client (starting the process, for stdio), serves the calls sent to it, and
closes it when it is idle for CHAT_MCP_IDLE_SECONDS, when the connection breaks (a crashed process: the call gets
an error result and the next call starts the server again), or at `close_all_sync()` (also at exit). The SDK's
client is entered and left in that one task, as anyio requires; callers only put requests on its queue.

Each connection also keeps what the worker knows of its server (`ServerStatus`): its tools as last listed, and
why it is unavailable when its start failed or its session broke (then it is tried again after a pause,
RETRY_SECONDS). The chat page reads that (`statuses()`) without waiting: it starts the servers not started yet
in the background and shows what is known; an answer waits for a server being started (`list_tools_sync()`).

HTTP servers go through the outbound guard as far as the SDK allows: the URL is checked with
`outbound.check_mcp_url` (scheme, literal addresses, and every address its host resolves to; the operator's
CHAT_OUTBOUND_ALLOWED_HOSTS lets a local server through) before each session, and the SDK follows redirects only
within the endpoint's origin. The SDK's own HTTP client then connects, so a name that resolves differently a
moment later (DNS rebinding) is not re-checked at connect time: configure MCP servers by address or by a name the
operator controls.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from chatsite import outbound

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
CONNECT_SECONDS = 15.0  # starting a server (a process, or an HTTP session) and listing its tools
LIST_SECONDS = 10.0  # an answer waiting for a server's tool list
RETRY_SECONDS = (2.0, 6.0, 20.0, 60.0, 300.0)  # pauses before starting a failed server again (then the last)
DEFAULT_MAX_RESULT_CHARS = 8_000
_NAME = re.compile(r"^[A-Za-z0-9-]{1,30}$")
SEPARATOR = "__"  # a tool's name for the model: "<server>__<tool>" (OpenAI names: [A-Za-z0-9_-]{1,64})


class McpUnavailable(Exception):
    """The server could not be started, listed or reached; the message is what the model (or the page) reads."""


@dataclass(frozen=True)
class ToolOptions:
    approval: bool = False
    timeout: float | None = None


@dataclass(frozen=True)
class ServerConfig:
    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    timeout: float = DEFAULT_TIMEOUT
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS
    tools: dict[str, ToolOptions] = field(default_factory=dict)

    def tool_options(self, tool: str) -> ToolOptions:
        return self.tools.get(tool, ToolOptions())


def _server_config(entry: object) -> ServerConfig:
    if not isinstance(entry, dict):
        raise ImproperlyConfigured("CHAT_MCP_SERVERS: each server is a JSON object.")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ImproperlyConfigured(f"CHAT_MCP_SERVERS: {name!r} is not a server name (letters, digits, '-').")
    command, url = entry.get("command") or "", entry.get("url") or ""
    if bool(command) == bool(url) or not isinstance(command, str) or not isinstance(url, str):
        raise ImproperlyConfigured(f"CHAT_MCP_SERVERS: the server {name} needs a command or a url (one of them).")
    args, env, tools = entry.get("args", []), entry.get("env", {}), entry.get("tools", {})
    if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
        raise ImproperlyConfigured(f"CHAT_MCP_SERVERS: the args of {name} are a list of strings.")
    if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
        raise ImproperlyConfigured(f"CHAT_MCP_SERVERS: the env of {name} is an object of strings.")
    if not (isinstance(tools, dict) and all(isinstance(v, dict) for v in tools.values())):
        raise ImproperlyConfigured(f"CHAT_MCP_SERVERS: the tools of {name} are an object of objects.")
    try:
        return ServerConfig(
            name=name, command=command, args=tuple(args), env=dict(env), url=url,
            timeout=float(entry.get("timeout", DEFAULT_TIMEOUT)),
            max_result_chars=int(entry.get("max_result_chars", DEFAULT_MAX_RESULT_CHARS)),
            tools={tool: ToolOptions(approval=bool(options.get("approval", False)),
                                     timeout=float(options["timeout"]) if "timeout" in options else None)
                   for tool, options in tools.items()},
        )
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"CHAT_MCP_SERVERS: a timeout or limit of {name} is not a number.") from None


def servers() -> dict[str, ServerConfig]:
    """The configured servers by name (read from settings each time: cheap, and tests change them)."""
    entries = settings.CHAT_MCP_SERVERS
    if not isinstance(entries, list):
        raise ImproperlyConfigured("CHAT_MCP_SERVERS is a JSON list of servers.")
    configs = [_server_config(entry) for entry in entries]
    by_name = {config.name: config for config in configs}
    if len(by_name) != len(configs):
        raise ImproperlyConfigured("CHAT_MCP_SERVERS: two servers have the same name.")
    return by_name


@dataclass(frozen=True)
class ListedTool:
    """A tool one server offers, as the page and the model see it."""

    server: str
    name: str  # the server's own name for it
    description: str
    input_schema: dict[str, Any]
    approval: bool
    timeout: float
    max_result_chars: int

    @property
    def qualified_name(self) -> str:
        return f"{self.server}{SEPARATOR}{self.name}"


class State(StrEnum):
    STARTING = "starting"  # its first session is being opened: no tools known yet
    READY = "ready"  # its tools are listed (an idle server's process is stopped: the next call starts it)
    UNAVAILABLE = "unavailable"  # its start failed or its session broke: tried again after a pause


class Reason(StrEnum):
    """Why a server is unavailable, as a short code the page words in the user's language."""

    CONNECTION_REFUSED = "connection_refused"
    UNREACHABLE = "unreachable"
    COMMAND_NOT_FOUND = "command_not_found"
    TIMEOUT = "timeout"
    ADDRESS_REFUSED = "address_refused"  # the outbound guard refused the server's address
    STOPPED = "stopped"  # the process exited or the session closed
    ERROR = "error"


@dataclass(frozen=True)
class ServerStatus:
    """One server as this worker knows it, without waiting for it."""

    name: str
    state: State
    tools: tuple[ListedTool, ...] = ()
    reason: Reason | None = None
    detail: str = ""  # why it is unavailable, in English (the API's words; the log's)
    retry_in: float | None = None  # seconds until it is tried again (None: not waiting to retry)


def failure_of(exc: BaseException) -> tuple[Reason, str]:
    """What a failed start or session comes down to: the SDK wraps the cause in task groups and chained errors."""
    from mcp import MCPError

    seen: list[BaseException] = []
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    for reason, matches in (
        (Reason.ADDRESS_REFUSED, lambda e: isinstance(e, outbound.OutboundError)),
        (Reason.CONNECTION_REFUSED, lambda e: isinstance(e, ConnectionRefusedError)),
        (Reason.COMMAND_NOT_FOUND, lambda e: isinstance(e, FileNotFoundError | PermissionError)),
        (Reason.TIMEOUT, lambda e: isinstance(e, TimeoutError)),
        (Reason.STOPPED, lambda e: isinstance(e, MCPError)),
        (Reason.UNREACHABLE, lambda e: isinstance(e, OSError) or type(e).__name__.startswith("Connect")),
    ):
        found = next((e for e in seen if matches(e)), None)
        if found is not None:
            return reason, _DETAILS[reason](found)
    return Reason.ERROR, f"{type(exc).__name__}"


_DETAILS: dict[Reason, Callable[[BaseException], str]] = {
    Reason.ADDRESS_REFUSED: str,
    Reason.CONNECTION_REFUSED: lambda e: "connection refused",
    Reason.COMMAND_NOT_FOUND: lambda e: f"the command cannot be run ({getattr(e, 'strerror', '') or e})",
    Reason.TIMEOUT: lambda e: f"it did not start within {CONNECT_SECONDS:g} s",
    Reason.STOPPED: lambda e: "the server stopped",
    Reason.UNREACHABLE: lambda e: f"not reached ({e})",
}


def result_text(result: Any) -> str:
    """A CallToolResult as text for the model: its text blocks, and what else it holds named, not inlined."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource_link":
            parts.append(f"[resource: {block.uri}]")
        else:
            parts.append(f"[{kind or 'unknown'} content not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


Operation = Callable[[Any], Awaitable[Any]]
T = TypeVar("T")


class Connection:
    """One server's session, owned by its supervising task on the session loop (see the module's docstring)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.tools: list[ListedTool] | None = None  # as listed when the session started
        self.failure: tuple[Reason, str] | None = None  # why the last start or session failed; None once listed
        self._failures = 0  # in a row: the pause before the next start grows with them
        self._retry_at: float | None = None  # time.monotonic() of the next start, after a failure
        self._requests: asyncio.Queue[tuple[Operation, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Open the session in the background, if none is open or opening (and no retry is waiting)."""
        if self._task is None or self._task.done():
            self._closing = False
            # Its own context: the session outlives the page or the answer that started it.
            self._task = asyncio.get_running_loop().create_task(self._supervise(), context=contextvars.Context())

    def start_unless_listed(self) -> None:
        """Start the session in the background when no tool list is known (a page wants one); a listed server
        stays stopped while idle."""
        if self.tools is None:
            self.start()

    def status(self) -> ServerStatus:
        """What is known now. Read from any thread: it reads each attribute once, and their values are replaced,
        never changed in place."""
        name = self.config.name
        if self.failure is not None:
            reason, detail = self.failure
            retry_in = None if self._retry_at is None else max(0.0, self._retry_at - time.monotonic())
            # Its tools as last listed, if it was listed once: a call starts it again (or tells the model it failed).
            return ServerStatus(name, State.UNAVAILABLE, tools=tuple(self.tools or ()), reason=reason, detail=detail,
                                retry_in=retry_in)
        if self.tools is None:
            return ServerStatus(name, State.STARTING)
        return ServerStatus(name, State.READY, tools=tuple(self.tools))

    async def request(self, operation: Operation) -> Any:
        """Run `operation(client)` in the session (started if it is not); raises McpUnavailable."""
        self.start()
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests.put_nowait((operation, done))
        return await done  # a caller that gives up cancels `done`, and so the call in the session

    async def close(self) -> None:
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _client(self) -> Any:
        # The SDK is imported when a server is first used: a site without MCP servers never loads it.
        from mcp import Client, StdioServerParameters

        config = self.config
        # A stdio server gets the SDK's short list of safe variables (PATH, HOME...) and its own `env`: never the
        # worker's environment, which holds the site's secrets.
        if config.url:
            return Client(config.url)
        return Client(StdioServerParameters(command=config.command, args=list(config.args), env=config.env or None))

    async def _supervise(self) -> None:
        """Open sessions, one at a time: at once, then whenever a request comes (ending when none came for
        CHAT_MCP_IDLE_SECONDS); after a failure, again after a pause, or at once if a request comes."""
        wait: float | None = 0  # before the next session: None waits for a request (and ends when idle)
        while not self._closing:
            try:
                operation, done = await asyncio.wait_for(
                    self._requests.get(), settings.CHAT_MCP_IDLE_SECONDS if wait is None else wait
                )
                self._requests.put_nowait((operation, done))  # served by the session below
            except TimeoutError:
                if wait is None:
                    return
            self._retry_at = None
            try:
                await self._session()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._closing or (task is not None and task.cancelling()):
                    self._fail_waiting("the server's session was closed.")
                    raise
                # Not a cancel of this task: the SDK's task group cancelled its scope (the transport broke).
                self._failed(Reason.STOPPED, "the server stopped")
                self._fail_waiting(f"the MCP server {self.config.name} stopped or could not be reached.")
            except outbound.OutboundError as exc:
                self._failed(Reason.ADDRESS_REFUSED, str(exc))
                self._fail_waiting(f"the MCP server {self.config.name} is not reached: {exc}")
            except BaseException as exc:  # noqa: BLE001 (an ExceptionGroup from the SDK's task groups, too)
                self._failed(*failure_of(exc))
                self._fail_waiting(f"the MCP server {self.config.name} stopped or could not be reached.")
            if self.failure is None:
                wait = None
            else:
                wait = RETRY_SECONDS[min(self._failures, len(RETRY_SECONDS)) - 1]
                self._retry_at = time.monotonic() + wait

    def _failed(self, reason: Reason, detail: str) -> None:
        logger.warning("MCP server %s: unavailable (%s)", self.config.name, detail)
        self.failure = (reason, detail)
        self._failures += 1

    async def _session(self) -> None:
        config = self.config
        if config.url:
            await outbound.check_mcp_url(config.url)
        client = self._client()
        broken = asyncio.Event()
        async with asyncio.timeout(CONNECT_SECONDS):
            await client.__aenter__()
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                listed = await client.list_tools()
            self.tools = [
                ListedTool(
                    server=config.name, name=tool.name, description=(tool.description or "")[:1024],
                    input_schema=tool.input_schema or {"type": "object", "properties": {}},
                    approval=config.tool_options(tool.name).approval,
                    timeout=config.tool_options(tool.name).timeout or config.timeout,
                    max_result_chars=config.max_result_chars,
                )
                for tool in listed.tools
            ]
            self.failure, self._failures = None, 0
            running: set[asyncio.Task[None]] = set()
            while not broken.is_set():
                getter = asyncio.ensure_future(self._requests.get())
                waiter = asyncio.ensure_future(broken.wait())
                try:
                    finished, _ = await asyncio.wait(
                        {getter, waiter}, timeout=settings.CHAT_MCP_IDLE_SECONDS, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    waiter.cancel()
                    if not getter.done():
                        getter.cancel()
                if getter not in finished:
                    if not finished and not running:
                        return  # idle: the process goes until the next call
                    continue
                operation, done = getter.result()
                if done.cancelled():
                    continue
                task = asyncio.ensure_future(self._serve(client, operation, done, broken))
                running.add(task)
                task.add_done_callback(running.discard)
                done.add_done_callback(functools.partial(_cancel_if_abandoned, task))
            for task in running:
                task.cancel()
        finally:
            self.tools = self.tools if not broken.is_set() else None
            with contextlib.suppress(BaseException):
                await client.__aexit__(None, None, None)

    async def _serve(self, client: Any, operation: Operation, done: asyncio.Future[Any], broken: asyncio.Event) -> None:
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        try:
            result = await operation(client)
        except asyncio.CancelledError:
            raise
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:  # the process died, or the HTTP session went away
                message = f"the MCP server {self.config.name} stopped during the call."
                self._failed(Reason.STOPPED, "the server stopped during a call")
                broken.set()
            else:  # an error the server answered: the session is fine
                message = f"the MCP server {self.config.name} answered an error: {exc.message}"
            if not done.done():
                done.set_exception(McpUnavailable(message))
        except Exception as exc:  # the transport broke (a crashed process, a dropped connection)
            if not done.done():
                done.set_exception(McpUnavailable(f"the MCP server {self.config.name} stopped during the call."))
            self._failed(Reason.STOPPED, f"the server stopped during a call ({type(exc).__name__})")
            broken.set()
        else:
            if not done.done():
                done.set_result(result)

    def _fail_waiting(self, message: str) -> None:
        while not self._requests.empty():
            _, done = self._requests.get_nowait()
            if not done.done():
                done.set_exception(McpUnavailable(message))


def _cancel_if_abandoned(task: asyncio.Task[None], done: asyncio.Future[Any]) -> None:
    if done.cancelled():  # the caller gave up (a timeout, a stopped answer): so does the call
        task.cancel()


_connections: dict[str, Connection] = {}  # by server name; changed on the session loop only (statuses() reads it)
_session_loop: asyncio.AbstractEventLoop | None = None
_session_loop_lock = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    """The worker's one loop for MCP sessions (a thread of its own): sessions outlive the answers, and the answers
    run on whichever loop started them."""
    global _session_loop
    with _session_loop_lock:
        if _session_loop is None or _session_loop.is_closed():
            _session_loop = asyncio.new_event_loop()
            threading.Thread(target=_session_loop.run_forever, name="mcp-sessions", daemon=True).start()
            atexit.register(close_all_sync)  # the worker stops: its server processes end with it
        return _session_loop


async def _on_session_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Await a coroutine run on the session loop; cancelling the caller cancels it there too."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, _loop()))


def _connection(config: ServerConfig) -> Connection:
    """The server's connection (a new one if its configuration changed). On the session loop."""
    existing = _connections.get(config.name)
    if existing is None or existing.config != config:
        if existing is not None:
            asyncio.get_running_loop().create_task(existing.close())
        existing = _connections[config.name] = Connection(config)
    return existing


async def _list_server_tools(config: ServerConfig) -> list[ListedTool]:
    conn = _connection(config)
    if conn.tools is None and conn.failure is None:  # being started: wait for it (an unavailable one is retried)
        try:
            async with asyncio.timeout(CONNECT_SECONDS + LIST_SECONDS):
                await conn.request(lambda client: asyncio.sleep(0))
        except TimeoutError:
            raise McpUnavailable(f"the MCP server {config.name} did not start in time.") from None
    if conn.tools is None:
        raise McpUnavailable(f"the MCP server {config.name} could not be listed.")
    return conn.tools


async def _list_tools(configs: list[ServerConfig]) -> dict[str, ListedTool]:
    listings = await asyncio.gather(*(_list_server_tools(config) for config in configs), return_exceptions=True)
    found: dict[str, ListedTool] = {}
    for config, listing in zip(configs, listings, strict=True):
        if isinstance(listing, BaseException):
            logger.warning("MCP server %s: no tool list (%s)", config.name, listing)
            continue
        found.update((tool.qualified_name, tool) for tool in listing)
    return found


def list_tools_sync() -> dict[str, ListedTool]:
    """Every configured server's tools by qualified name, waiting for the servers being started (and starting the
    ones not started); an unavailable server offers none. Sync: the tools offered to an answer (tools.offered)."""
    configs = list(servers().values())
    if not configs:
        return {}
    future = asyncio.run_coroutine_threadsafe(_list_tools(configs), _loop())
    return future.result(CONNECT_SECONDS + LIST_SECONDS + 5)


def _start_unless_listed(config: ServerConfig) -> None:
    _connection(config).start_unless_listed()


def statuses() -> list[ServerStatus]:
    """Each configured server as this worker knows it, at once: the ones with no tool list yet are started in the
    background (the page asks again to see them listed). No MCP request is made or waited for, and neither is the
    session loop: it may be busy a moment (importing the SDK, starting a process)."""
    configs = list(servers().values())
    if not configs:
        return []
    loop = _loop()
    found = []
    for config in configs:
        conn = _connections.get(config.name)  # read here: only the session loop changes the dict
        if conn is not None and conn.config == config:
            status = conn.status()
        else:  # not started yet (or its configuration changed): the loop makes its connection
            status = ServerStatus(config.name, State.STARTING)
        if status.state != State.READY:
            loop.call_soon_threadsafe(_start_unless_listed, config)
        found.append(status)
    return found


async def call(tool: ListedTool, arguments: dict[str, Any]) -> tuple[str, bool]:
    """Call the tool (the caller holds the timeout); returns (text, is_error). Raises McpUnavailable."""
    config = servers().get(tool.server)
    if config is None:
        raise McpUnavailable(f"the MCP server {tool.server} is no longer configured.")

    async def on_session_loop() -> Any:
        return await _connection(config).request(lambda client: client.call_tool(tool.name, arguments))

    result = await _on_session_loop(on_session_loop())
    return result_text(result), bool(result.is_error)


async def _close_all() -> None:
    while _connections:
        await _connections.popitem()[1].close()


def close_all_sync() -> None:
    """Close every session (their processes end): at exit, and in tests."""
    with _session_loop_lock:
        loop = _session_loop
    if loop is not None and loop.is_running():
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_close_all(), loop).result(30)

