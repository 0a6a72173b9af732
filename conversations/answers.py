"""The answer engine: an answer runs to its end on the server, whoever is connected.

A request that starts a turn hands its `ChatRun` to the engine, which runs it in this process's engine thread
(an event loop of its own), then follows the answer's event log like any other client. Closing a connection
drops only that follower: Stop ends the answer (and, for `/v1`, so does its client going away, as OpenAI does).

Every event gets a sequence number from 1 (the SSE `id:`): a follower starts from the beginning or resumes
after the last number it saw (`Last-Event-ID`). With REDIS_URL, each event is also appended to a Redis stream
per answer (ids `0-<seq>`), so a client on another worker or host follows an answer generated here.

While an answer runs, the engine renews its heartbeat in the shared cache every HEARTBEAT_SECONDS; an answer
whose heartbeat has lapsed (its worker died) is failed by the next reader or writer of the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from asgiref.sync import sync_to_async
from django.conf import settings

from chatsite import metrics
from conversations import services
from conversations.messages import ToolCallChunk
from conversations.turn_json import turn_data

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 3.0
STOP_GRACE_SECONDS = 1.0  # after Stop, an answer that sends nothing more (a silent upstream) is cut this soon
RETAIN_SECONDS = 120.0  # a finished answer's events stay this long, for followers that resume late
REDIS_MAXLEN = 20_000
REDIS_BLOCK_MS = 5_000


def redis_key(turn_id: int) -> str:
    # Under the cache's key prefix: several sites (or test runs) may share one Redis.
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:chat:answer:{turn_id}"


# What each event's data is, as the REST API and the page receive it (conversations.api.streaming describes
# them for clients). A turn is turn_json's form.


class TurnStoredData(TypedDict):
    user_turn: dict[str, Any] | None
    assistant_turn: dict[str, Any]


class DeltaData(TypedDict):
    text: str


class ToolCallData(TypedDict):
    tool_calls: list[ToolCallChunk]


class DoneData(TypedDict):
    assistant_turn: dict[str, Any]


class ErrorDetail(TypedDict):
    code: str
    message: str


class ErrorData(TypedDict):
    error: ErrorDetail
    assistant_turn: dict[str, Any]


class TitleData(TypedDict):
    title: str


EventData = TurnStoredData | DeltaData | ToolCallData | DoneData | ErrorData | TitleData


def event_frame(event: services.ChatEvent) -> tuple[str, EventData]:
    """An event as the REST API and the page receive it: (SSE event name, JSON data)."""
    if isinstance(event, services.TurnStored):
        user_turn = turn_data(event.user_turn) if event.user_turn is not None else None
        return "turn", {"user_turn": user_turn, "assistant_turn": turn_data(event.assistant_turn)}
    if isinstance(event, services.AnswerDelta):
        return "delta", {"text": event.text}
    if isinstance(event, services.AnswerToolCall):
        return "tool_call", {"tool_calls": event.tool_calls}
    if isinstance(event, services.AnswerDone):
        return "done", {"assistant_turn": turn_data(event.assistant_turn)}
    if isinstance(event, services.AnswerFailed):
        error: ErrorDetail = {"code": event.error.code, "message": event.error.message}
        return "error", {"error": error, "assistant_turn": turn_data(event.assistant_turn)}
    if isinstance(event, services.TitleSet):
        return "title", {"title": event.title}
    raise TypeError(f"not a chat event: {event!r}")


@dataclass(frozen=True)
class Entry:
    seq: int
    event: services.ChatEvent | None  # None when read from Redis (another process made it)
    name: str
    data: EventData


class AnswerLog:
    """The events of one answer, in order, for any number of followers in any thread's event loop."""

    def __init__(self, turn_id: int):
        self.turn_id = turn_id
        self.entries: list[Entry] = []
        self.finished = threading.Event()
        self.answering = threading.Event()  # the first piece of the answer, or its end, is here
        self.followers = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def append(self, event: services.ChatEvent) -> Entry:
        name, data = event_frame(event)
        with self._lock:
            entry = Entry(len(self.entries) + 1, event, name, data)
            self.entries.append(entry)
        if not isinstance(event, services.TurnStored):
            self.answering.set()
        self._wake()
        return entry

    def finish(self) -> None:
        self.answering.set()
        self.finished.set()
        self._wake()

    def failure_before_output(self, timeout: float) -> services.AnswerFailed | None:
        """Wait (sync) until the answer's first piece or its end; its failure if it failed before any output.

        The OpenAI-compatible endpoints call this before they send the response's status, so that an upstream
        429 or 5xx that comes before the first byte is an HTTP error a client can retry on, as with OpenAI.
        """
        self.answering.wait(timeout)
        outcome = self.outcome()
        return outcome if isinstance(outcome, services.AnswerFailed) and not outcome.assistant_turn.content else None

    def _wake(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop, wake in waiters:
            if loop is here:
                wake.set()  # a follower on the engine's own loop (the server's, under uvicorn): no thread hop
                continue
            with contextlib.suppress(RuntimeError):  # that follower's loop is closed
                loop.call_soon_threadsafe(wake.set)

    async def follow(self, after: int = 0) -> AsyncGenerator[Entry, None]:
        """The entries after `after`, then each new one as it comes, until the answer is finished."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
            self.followers += 1
        metrics.FOLLOWERS.inc()
        try:
            seq = max(0, after)
            while True:
                waiter[1].clear()
                finished = self.finished.is_set()
                with self._lock:
                    batch = self.entries[seq:]
                for entry in batch:
                    seq = entry.seq
                    yield entry
                if finished and not batch:
                    return
                if not batch:
                    await waiter[1].wait()
        finally:
            metrics.FOLLOWERS.dec()
            with self._lock:
                self._waiters.discard(waiter)
                self.followers -= 1

    def outcome(self) -> services.ChatEvent | None:
        """The answer's last event: AnswerDone or AnswerFailed (a title may follow it)."""
        for entry in reversed(self.entries):
            if isinstance(entry.event, services.AnswerDone | services.AnswerFailed):
                return entry.event
        return None


class AnswerEngine:
    """Runs answers detached from requests, on the server's event loop (under uvicorn: `adopt_loop`) or else
    in a thread with an event loop of its own (WSGI, tests, management commands); keeps their logs a while."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.logs: dict[int, AnswerLog] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping: set[int] = set()

    def adopt_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run answers on this (the ASGI server's) loop, where their followers are: no cross-thread wakeups."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = loop

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed() or not self._loop.is_running():
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="answer-engine", daemon=True).start()
            return self._loop

    def start(self, run: services.ChatRun) -> AnswerLog:
        log = AnswerLog(run.assistant_turn.pk)
        self.logs[log.turn_id] = log
        asyncio.run_coroutine_threadsafe(self._drive(run, log), self.loop())
        return log

    def log_for(self, turn_id: int) -> AnswerLog | None:
        return self.logs.get(turn_id)

    def stop_soon(self, turn_id: int) -> None:
        """Stop was asked (from any thread): the answer ends at its next piece of text, or within
        STOP_GRACE_SECONDS if none comes (a silent upstream), stored as cancelled."""
        loop = self._loop
        if loop is not None and turn_id in self._tasks:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._cancel_later, turn_id)

    def _cancel_later(self, turn_id: int) -> None:
        task = self._tasks.get(turn_id)
        if task is not None and turn_id not in self._stopping:
            self._stopping.add(turn_id)
            asyncio.get_running_loop().call_later(STOP_GRACE_SECONDS, lambda: task.done() or task.cancel())

    async def _drive(self, run: services.ChatRun, log: AnswerLog) -> None:
        turn_id = log.turn_id
        task = cast(asyncio.Task[None], asyncio.current_task())  # run_coroutine_threadsafe runs this as a task
        self._tasks[turn_id] = task
        publisher = RedisPublisher(turn_id) if settings.REDIS_URL else None
        heartbeat = asyncio.get_running_loop().create_task(_heartbeat(turn_id))
        try:
            try:
                async for event in run.events():
                    entry = log.append(event)
                    if publisher is not None:
                        await publisher.add(entry)
            except asyncio.CancelledError:
                if turn_id not in self._stopping:
                    raise
                # Cut after Stop: events() stored the partial answer as cancelled before letting go.
                task.uncancel()
                entry = log.append(services.AnswerDone(run.assistant_turn))
                if publisher is not None:
                    await publisher.add(entry)
        except Exception:
            logger.exception("answer %s: the engine failed", turn_id)
        finally:
            self._tasks.pop(turn_id, None)
            self._stopping.discard(turn_id)
            heartbeat.cancel()
            log.finish()
            if publisher is not None:
                await publisher.finish()
            asyncio.get_running_loop().call_later(RETAIN_SECONDS, self.logs.pop, log.turn_id, None)


engine = AnswerEngine()


async def _heartbeat(turn_id: int) -> None:
    """Vouch for the answer in the shared cache while it runs (a dead worker stops vouching)."""
    set_running = sync_to_async(services.answer_vouch, thread_sensitive=False)
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            await set_running(turn_id)
        except Exception:  # the cache is away: the answer goes on; readers treat it as vouched by its DB row
            logger.warning("answer %s: could not renew its heartbeat", turn_id)


# --- Across workers: Redis streams ------------------------------------------------------------------------

_redis_clients: dict[asyncio.AbstractEventLoop, Any] = {}


def _redis() -> Any:
    """An asyncio Redis client for the running loop (a client belongs to the loop that made it)."""
    import redis.asyncio

    loop = asyncio.get_running_loop()
    client = _redis_clients.get(loop)
    if client is None:
        # Reads block for up to REDIS_BLOCK_MS: the socket must wait longer than that.
        client = _redis_clients[loop] = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=REDIS_BLOCK_MS / 1000 + 5, socket_connect_timeout=5
        )
    return client


class RedisPublisher:
    def __init__(self, turn_id: int):
        self.key = redis_key(turn_id)
        self.broken = False

    async def add(self, entry: Entry) -> None:
        if self.broken:
            return
        try:
            await _redis().xadd(
                self.key, {"e": entry.name, "d": json.dumps(entry.data)}, id=f"0-{entry.seq}",
                maxlen=REDIS_MAXLEN, approximate=True,
            )
        except Exception:  # followers on other workers lose this answer; this worker's followers do not
            logger.warning("could not publish answer events to Redis", exc_info=True)
            self.broken = True

    async def finish(self) -> None:
        if self.broken:
            return
        try:
            client = _redis()
            async with client.pipeline(transaction=False) as pipe:
                pipe.xadd(self.key, {"end": "1"}, id="0-999999999")
                pipe.expire(self.key, int(RETAIN_SECONDS))
                await pipe.execute()
        except Exception:
            logger.warning("could not close the answer's Redis stream", exc_info=True)


class AnswerLapsed(Exception):
    """The worker producing an answer stopped vouching for it (it died): nothing more will come."""


async def follow_remote(turn_id: int, after: int = 0) -> AsyncGenerator[Entry, None]:
    """An answer generated by another worker, from its Redis stream; ends at its end marker.

    Raises AnswerLapsed when the stream goes quiet and its worker's heartbeat has lapsed.
    """
    metrics.FOLLOWERS.inc()
    try:
        async for entry in _read_remote(turn_id, after):
            yield entry
    finally:
        metrics.FOLLOWERS.dec()


async def _read_remote(turn_id: int, after: int) -> AsyncGenerator[Entry, None]:
    client = _redis()
    last = f"0-{max(0, after)}"
    vouched = sync_to_async(services.answer_is_vouched, thread_sensitive=False)
    deadline = time.monotonic() + settings.CHAT_STALE_TURN_SECONDS
    while time.monotonic() < deadline:
        reply = await client.xread({redis_key(turn_id): last}, block=REDIS_BLOCK_MS, count=500)
        if not reply:
            if not await client.exists(redis_key(turn_id)):
                return
            if not await vouched(turn_id):
                raise AnswerLapsed(turn_id)
            continue
        for raw_id, fields in reply[0][1]:
            stream_id = raw_id.decode()
            if fields.get(b"end"):
                return
            last = stream_id
            seq = int(stream_id.split("-")[1])
            yield Entry(seq, None, fields[b"e"].decode(), json.loads(fields[b"d"]))


_sync_redis_client = None


def remote_answer_exists(turn_id: int) -> bool:
    """Whether another worker publishes this answer to Redis (sync: views ask before they start streaming)."""
    global _sync_redis_client
    if not settings.REDIS_URL:
        return False
    import redis

    if _sync_redis_client is None:
        _sync_redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    try:
        return bool(_sync_redis_client.exists(redis_key(turn_id)))
    except redis.RedisError:
        logger.warning("could not look for answer %s in Redis", turn_id)
        return False
