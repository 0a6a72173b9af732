"""Answers across workers: each answer's events go to a Redis stream (ids `0-<seq>`), so a client on another
worker or host follows an answer produced here. Writes are batched and never awaited by the answer itself."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from conversations.answering import liveness
from conversations.answering.events import Entry

logger = logging.getLogger(__name__)

RETAIN_SECONDS = 120.0  # a finished answer's events stay this long, for followers that resume late
REDIS_MAXLEN = 20_000
REDIS_BLOCK_MS = 5_000
END_ID = "0-999999999"
_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)  # asks alive() about the heartbeat alone


def stream_key(turn_id: int) -> str:
    # Under the cache's key prefix: several sites (or test runs) may share one Redis.
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:chat:answer:{turn_id}"


_clients: dict[asyncio.AbstractEventLoop, Any] = {}


def _redis() -> Any:
    """An asyncio Redis client for the running loop (a client belongs to the loop that made it)."""
    import redis.asyncio

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # Reads block for up to REDIS_BLOCK_MS: the socket must wait longer than that.
        client = _clients[loop] = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=REDIS_BLOCK_MS / 1000 + 5, socket_connect_timeout=5
        )
    return client


PUBLISH_EVERY_SECONDS = 0.05  # at most 20 writes a second per answer: followers on other workers lag that much

# One write of several entries, as one command: the old stream deleted first (ARGV[1] == "1"), the entries (ARGV[6..]:
# id, frame, id, frame...) trimmed to ARGV[3], and when closing (ARGV[2] == "1") the end marker (ARGV[5]) and the
# expiry (ARGV[4] seconds). The stream is the same as one XADD per entry would make; a pipeline of those costs the
# answer's loop about 20 µs of CPU per entry (redis-py packs and parses each command), this about 2.
_APPEND_SCRIPT = """
local key = KEYS[1]
if ARGV[1] == '1' then redis.call('DEL', key) end
for i = 6, #ARGV, 2 do
    redis.call('XADD', key, 'MAXLEN', '~', ARGV[3], ARGV[i], 'f', ARGV[i + 1])
end
if ARGV[2] == '1' then
    redis.call('XADD', key, ARGV[5], 'end', '1')
    redis.call('EXPIRE', key, ARGV[4])
end
return 0
"""
_scripts: dict[asyncio.AbstractEventLoop, Any] = {}


def _append(key: str, entries: list[Entry], *, fresh: bool, closing: bool) -> Any:
    """Write `entries` to the stream `key` in one command (_APPEND_SCRIPT); returns its awaitable."""
    loop = asyncio.get_running_loop()
    script = _scripts.get(loop)
    if script is None:  # sent by its digest, and loaded again if Redis lost it (a restart)
        script = _scripts[loop] = _redis().register_script(_APPEND_SCRIPT)
    args: list[Any] = [int(fresh), int(closing), REDIS_MAXLEN, int(RETAIN_SECONDS), END_ID]
    for entry in entries:
        args += (f"0-{entry.seq}", entry.frame)
    return script(keys=[key], args=args)


class Publisher:
    """Copies one answer's entries to its Redis stream. `add()` only queues (no await between reading a token
    and sending it on); one writer task sends what has queued since its last write as one command, at most
    every PUBLISH_EVERY_SECONDS (a fast answer's tokens go several to a write)."""

    def __init__(self, turn_id: int):
        self.key = stream_key(turn_id)
        self._queue: list[Entry] = []
        self._more = asyncio.Event()
        self._closing = False
        self._fresh = True  # a continued answer runs again under the same turn id: its old stream goes first
        self._writer = asyncio.get_running_loop().create_task(self._write(), context=contextvars.Context())

    def add(self, entry: Entry) -> None:
        self._queue.append(entry)
        self._more.set()

    async def close(self) -> None:
        """Write what is queued, then the end marker; the stream expires RETAIN_SECONDS later."""
        self._closing = True
        self._more.set()
        await self._writer

    async def _write(self) -> None:
        broken = False
        while True:
            await self._more.wait()
            if not self._closing:
                await asyncio.sleep(PUBLISH_EVERY_SECONDS)  # let the next tokens join this write
            self._more.clear()
            batch, self._queue = self._queue, []
            closing = self._closing
            if broken:
                if closing:
                    return
                continue
            try:
                if len(batch) == 1 and not closing and not self._fresh:  # a slow answer's usual write: one command
                    await _redis().xadd(self.key, {"f": batch[0].frame}, id=f"0-{batch[0].seq}",
                                        maxlen=REDIS_MAXLEN, approximate=True)
                    continue
                fresh, self._fresh = self._fresh, False
                await _append(self.key, batch, fresh=fresh, closing=closing)
            except Exception:  # followers on other workers lose this answer; this worker's followers do not
                logger.warning("could not publish answer events to Redis", exc_info=True)
                broken = True
            if closing:
                return


class AnswerLapsed(Exception):
    """The worker producing an answer stopped vouching for it (it died): nothing more will come."""


async def follow(turn_id: int, after: int = 0) -> AsyncGenerator[Entry, None]:
    """An answer produced by another worker, from its Redis stream; ends at its end marker.

    Raises AnswerLapsed when the stream goes quiet and its worker's heartbeat has lapsed.
    """
    client = _redis()
    key = stream_key(turn_id)
    last = f"0-{max(0, after)}"
    vouched = sync_to_async(liveness.alive, thread_sensitive=False)
    deadline = time.monotonic() + settings.CHAT_STALE_TURN_SECONDS
    while time.monotonic() < deadline:
        reply = await client.xread({key: last}, block=REDIS_BLOCK_MS, count=500)
        if not reply:
            if not await client.exists(key):
                return
            # Past the first moments: an answer is alive only while vouched for.
            if not await vouched([(turn_id, _LONG_AGO)]):
                raise AnswerLapsed(turn_id)
            continue
        for raw_id, fields in reply[0][1]:
            if fields.get(b"end"):
                return
            last = raw_id.decode()
            yield Entry(int(last.split("-")[1]), None, "", fields[b"f"])


_sync_client = None


def exists(turn_id: int) -> bool:
    """Whether some worker publishes this answer to Redis (sync: views ask before they start streaming)."""
    global _sync_client
    if not settings.REDIS_URL:
        return False
    import redis

    if _sync_client is None:
        _sync_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    try:
        return bool(_sync_client.exists(stream_key(turn_id)))
    except redis.RedisError:
        logger.warning("could not look for answer %s in Redis", turn_id)
        return False

