"""What happened to a user's chats, told to every window they have open: one event stream per user.

Writes (services, organizing) call `conversation_changed()` and friends; the event leaves when their transaction
commits, described from the objects as they were then, so a window never hears of a change that was rolled back.
With Redis (REDIS_URL) the events go to a short Redis stream per user, read by whichever worker holds the user's
open windows; without it they go to the windows connected to this process, as the rest of the site does without
Redis. A user's stream carries only that user's events: its key is their id.

Event ids are opaque to the page: it sends the last one back (Last-Event-ID) when it reconnects and gets what it
missed, or a `resync` event when that cannot be told (the events are gone, or the server restarted).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from django.conf import settings
from django.db import transaction

from conversations.models import Conversation, Project

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0  # a comment this often keeps proxies from closing an idle stream and finds dead clients
KEEP_EVENTS = 200  # events kept per user for windows that reconnect (Redis: approximately)
REDIS_KEEP_SECONDS = 24 * 3600  # a user's Redis stream goes this long after their last event

EventType = Literal[
    "conversation.created", "conversation.updated", "conversation.deleted", "answer.started",
    "project.created", "project.updated", "project.deleted", "account.closed", "resync",
]


class ConversationSummary(TypedDict):
    """What the page shows of a chat outside it: its sidebar row and its header."""

    id: str
    title: str
    pinned: bool
    project_id: int | None
    archived: bool
    temporary: bool


class ProjectSummary(TypedDict):
    """What the sidebar shows of a project (the page calls them folders)."""

    id: int
    name: str


class Event(TypedDict, total=False):
    type: EventType
    conversation: ConversationSummary  # conversation.created, conversation.updated, answer.started
    conversation_id: str  # conversation.deleted
    reason: Literal["expired"]  # conversation.deleted by housekeeping: a temporary chat past its time
    turn_id: int  # answer.started: the pending answer, followed through the conversation's stream endpoint
    project: ProjectSummary  # project.created, project.updated
    project_id: int  # project.deleted
    chats_deleted: bool  # project.deleted: its chats went too (each told as conversation.deleted), or stayed


def summary(conversation: Conversation) -> ConversationSummary:
    return {
        "id": str(conversation.pk),
        "title": conversation.title,
        "pinned": conversation.pinned_at is not None,
        "project_id": conversation.project_id,
        "archived": conversation.archived,
        "temporary": conversation.delete_after is not None,
    }


# --- Publishing (sync: called by the writes) -------------------------------------------------------------------


def conversation_created(conversation: Conversation) -> None:
    _about(conversation, "conversation.created")


def conversation_changed(conversation: Conversation) -> None:
    """A chat was edited: its title, pin, folder, archive flag or settings."""
    _about(conversation, "conversation.updated")


def conversation_deleted(*, owner_id: int, conversation_id: uuid.UUID, expired: bool = False) -> None:
    """A chat was deleted: by its owner, or (`expired`) by housekeeping, a temporary chat past its time."""
    event: Event = {"type": "conversation.deleted", "conversation_id": str(conversation_id)}
    if expired:
        event["reason"] = "expired"
    _after_commit(owner_id, event)


def answer_started(conversation: Conversation, turn_id: int) -> None:
    """An answer is being written: open windows of the chat follow it (the chat's stream endpoint)."""
    _about(conversation, "answer.started", turn_id=turn_id)


def project_created(project: Project) -> None:
    _about_project(project, "project.created")


def project_changed(project: Project) -> None:
    """A project was edited: its name (what the sidebar shows), instructions or default model."""
    _about_project(project, "project.updated")


def project_deleted(*, owner_id: int, project_id: int, chats_deleted: bool) -> None:
    _after_commit(owner_id, {"type": "project.deleted", "project_id": project_id, "chats_deleted": chats_deleted})


def account_closed(user_id: int) -> None:
    """The account was closed (its data is being deleted): its other windows can do nothing more."""
    _after_commit(user_id, {"type": "account.closed"})


def _about_project(project: Project, event_type: EventType) -> None:
    def send() -> None:
        _send(project.owner_id, {"type": event_type, "project": {"id": project.pk, "name": project.name}})

    transaction.on_commit(send, robust=True)


def _after_commit(user_id: int, event: Event) -> None:
    transaction.on_commit(lambda: _send(user_id, event), robust=True)


def _about(conversation: Conversation, event_type: EventType, turn_id: int | None = None) -> None:
    # Described at commit: a rename and a pin in one transaction are told as they were stored.
    def send() -> None:
        event: Event = {"type": event_type, "conversation": summary(conversation)}
        if turn_id is not None:
            event["turn_id"] = turn_id
        _send(conversation.owner_id, event)

    transaction.on_commit(send, robust=True)  # a window not told never fails the write that was stored


def _send(user_id: int, event: Event) -> None:
    if settings.REDIS_URL:
        _redis_send(user_id, event)
    else:
        _local.send(user_id, event)


# --- Without Redis: the windows connected to this process ------------------------------------------------------


@dataclass(eq=False)
class _Window:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[int, Event]] = field(default_factory=asyncio.Queue)


class _LocalHub:
    """This process's open windows, per user, and each user's last KEEP_EVENTS events. Writes publish from
    request threads; windows read on the event loop: events cross with call_soon_threadsafe."""

    def __init__(self) -> None:
        self._boot = uuid.uuid4().hex[:8]  # ids of another run of the process are unknown here: resync
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._windows: dict[int, set[_Window]] = {}
        self._recent: dict[int, deque[tuple[int, Event]]] = {}

    def send(self, user_id: int, event: Event) -> None:
        with self._lock:
            number = next(self._numbers)
            self._recent.setdefault(user_id, deque(maxlen=KEEP_EVENTS)).append((number, event))
            windows = list(self._windows.get(user_id, ()))
        for window in windows:
            try:
                window.loop.call_soon_threadsafe(window.queue.put_nowait, (number, event))
            except RuntimeError:  # its loop has closed: the window is gone
                self._leave(user_id, window)

    def _missed(self, user_id: int, after: str) -> list[tuple[int, Event]] | None:
        """Events after `after`, or None when it cannot be told (another run's id, or events dropped since)."""
        boot, _sep, raw = after.partition("-")
        if boot != self._boot or not raw.isdigit():
            return None
        last = int(raw)
        with self._lock:
            recent = list(self._recent.get(user_id, ()))
        if recent and recent[0][0] > last + 1:
            return None
        return [(number, event) for number, event in recent if number > last]

    def _leave(self, user_id: int, window: _Window) -> None:
        with self._lock:
            windows = self._windows.get(user_id)
            if windows is not None:
                windows.discard(window)
                if not windows:
                    del self._windows[user_id]

    async def subscribe(self, user_id: int, after: str) -> AsyncGenerator[tuple[str, Event] | None, None]:
        window = _Window(asyncio.get_running_loop())
        with self._lock:
            self._windows.setdefault(user_id, set()).add(window)
        try:
            told = 0  # an event sent while the missed ones were read comes twice: once is enough
            if after:
                missed = self._missed(user_id, after)
                if missed is None:
                    yield f"{self._boot}-0", {"type": "resync"}
                for number, event in missed or ():
                    told = number
                    yield f"{self._boot}-{number}", event
            yield None  # listening
            while True:
                try:
                    number, event = await asyncio.wait_for(window.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield None
                    continue
                if number > told:
                    yield f"{self._boot}-{number}", event
        finally:
            self._leave(user_id, window)


_local = _LocalHub()


# --- With Redis: a short stream per user, read by any worker ------------------------------------------------


def _stream_key(user_id: int) -> str:
    # Under the cache's key prefix: several sites (or test runs) may share one Redis.
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:chat:user-events:{user_id}"


_sync_client: Any = None


def _redis_send(user_id: int, event: Event) -> None:
    global _sync_client
    import json

    import redis

    if _sync_client is None:
        _sync_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    key = _stream_key(user_id)
    try:
        with _sync_client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"e": json.dumps(event)}, maxlen=KEEP_EVENTS, approximate=True)
            pipe.expire(key, REDIS_KEEP_SECONDS)
            pipe.execute()
    except redis.RedisError:  # the write is stored: open windows show it on their next load
        logger.warning("could not publish a chat event to Redis", exc_info=True)


_async_clients: dict[asyncio.AbstractEventLoop, Any] = {}


def _async_redis() -> Any:
    """An asyncio Redis client for the running loop (a client belongs to the loop that made it)."""
    import redis.asyncio

    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # Reads block for up to a heartbeat: the socket must wait longer than that.
        client = _async_clients[loop] = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=HEARTBEAT_SECONDS + 5, socket_connect_timeout=5
        )
    return client


async def _redis_subscribe(user_id: int, after: str) -> AsyncGenerator[tuple[str, Event] | None, None]:
    import json

    client = _async_redis()
    key = _stream_key(user_id)
    if after and not _REDIS_ID.fullmatch(after):
        yield "0-0", {"type": "resync"}  # not an id of this stream (say, from before Redis was configured)
        after = ""
    if after:
        first = await client.xrange(key, count=1)
        if first and _redis_id(first[0][0]) > _redis_id(after.encode()):
            yield "0-0", {"type": "resync"}  # some of what it missed was trimmed
        last = after
        missed = await client.xread({key: last}, count=KEEP_EVENTS * 2)  # no block: what is there now
        for raw_id, fields in missed[0][1] if missed else ():
            last = raw_id.decode()
            yield last, json.loads(fields[b"e"])
    else:
        # From the stream's last event (not "$", which reads from the first XREAD: an event sent between the
        # two would be lost).
        latest = await client.xrevrange(key, count=1)
        last = latest[0][0].decode() if latest else "0-0"
    yield None  # listening
    while True:
        reply = await client.xread({key: last}, block=int(HEARTBEAT_SECONDS * 1000), count=100)
        if not reply:
            yield None
            continue
        for raw_id, fields in reply[0][1]:
            last = raw_id.decode()
            yield last, json.loads(fields[b"e"])


_REDIS_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def _redis_id(raw: bytes) -> tuple[int, int]:
    milliseconds, _sep, sequence = raw.partition(b"-")
    try:
        return int(milliseconds), int(sequence or 0)
    except ValueError:
        return 0, 0


# --- Reading (async: the stream endpoint) ---------------------------------------------------------------------


def subscribe(user_id: int, after: str = "") -> AsyncGenerator[tuple[str, Event] | None, None]:
    """The user's events from now on (after `after`, a previous event's id, when resuming): (id, event) pairs;
    None once listening (what was missed is told before it), then each HEARTBEAT_SECONDS without an event (for the
    caller's keep-alive)."""
    if settings.REDIS_URL:
        return _redis_subscribe(user_id, after)
    return _local.subscribe(user_id, after)
