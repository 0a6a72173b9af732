"""Which answers are alive, and the one way to stop one: the answering package's keys in the shared cache.

Two keys per running answer, owned here and touched nowhere else:
- `chat:running:<turn>`, the heartbeat: renewed by the worker producing the answer (one `set_many` a few
  seconds apart for all of its answers), so a worker that dies stops vouching for its answers;
- `chat:stop:<turn>`, a stop request: set by whichever worker got the Stop, read once a second by the worker
  producing the answer (one `get_many` for all of its answers), which cancels it.

`alive()` is the one liveness check: the conversation lock (services.turns) and quota admission
(services.quota) are handed it, and every reader that fails an abandoned answer goes through
`fail_if_abandoned()`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from conversations import errors, services
from conversations.models import Conversation, Turn

logger = logging.getLogger(__name__)

WATCH_SECONDS = 1.0  # how often a worker looks for stop requests made in other workers
HEARTBEAT_SECONDS = 3.0  # how often a worker vouches for its running answers
# A running answer whose worker no longer vouches for it (no heartbeat) is abandoned after this long.
UNVOUCHED_GRACE_SECONDS = 2.0


def running_key(turn_id: int) -> str:
    return f"chat:running:{turn_id}"


def stop_key(turn_id: int) -> str:
    return f"chat:stop:{turn_id}"


def vouch(turn_ids: Iterable[int]) -> None:
    """Renew the heartbeat of answers this worker is producing."""
    cache.set_many(
        {running_key(turn_id): True for turn_id in turn_ids}, timeout=settings.CHAT_ANSWER_HEARTBEAT_SECONDS
    )


def forget(turn_id: int) -> None:
    """The answer is stored: its keys go."""
    forget_many([turn_id])


def forget_many(turn_ids: list[int]) -> None:
    try:
        cache.delete_many([key for turn_id in turn_ids for key in (running_key(turn_id), stop_key(turn_id))])
    except Exception:  # the cache is away: the keys expire on their own
        logger.warning("answers %s: could not clear their keys", turn_ids)


def alive(running: Iterable[tuple[int, datetime]]) -> set[int]:
    """The one liveness check: of these pending answers ((id, created_at)), the ones still being produced.

    An answer is alive while its worker vouches for it, or in its first moments (before the first heartbeat
    could be seen). One cache read for all of them.
    """
    running = list(running)
    if not running:
        return set()
    grace = timezone.now() - timedelta(seconds=UNVOUCHED_GRACE_SECONDS)
    young = {pk for pk, created_at in running if created_at > grace}
    old = [pk for pk, _ in running if pk not in young]
    if not old:
        return young
    vouched = cache.get_many([running_key(pk) for pk in old])
    return young | {pk for pk in old if vouched.get(running_key(pk))}


def fail_if_abandoned(turn: Turn) -> bool:
    """Fail a pending answer that nobody produces any more (its worker died); True if it was failed.

    Every reader of a running answer (the stream endpoint, the chat page, the REST detail) calls this, so
    that a crash does not leave "writing…" forever for someone who only reads the chat.
    """
    if not turn.is_running or alive([(turn.pk, turn.created_at)]):
        return False
    if services.answer_fail_interrupted(turn_ids=[turn.pk]):
        turn.status, turn.error = Turn.Status.FAILED, services.INTERRUPTED
        turn.error_code = errors.AnswerInterrupted.code
        return True
    return False


def request_stop(conversation: Conversation) -> Turn | None:
    """Ask the conversation's running answer to stop, wherever it runs; returns it, or None if nothing runs."""
    turn = conversation.turns.filter(role=Turn.Role.ASSISTANT, status=Turn.Status.PENDING).first()
    if turn is None:
        return None
    cache.set(stop_key(turn.pk), True, timeout=settings.CHAT_STALE_TURN_SECONDS)
    return turn


class Watcher:
    """One task per event loop for all the answers running there: vouches for them every HEARTBEAT_SECONDS
    and looks for their stop requests every WATCH_SECONDS; `on_stop(turn_id)` is called for each one asked."""

    def __init__(self, running: Callable[[], list[int]], on_stop: Callable[[int], None]):
        self._running = running
        self._on_stop = on_stop
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            # Its own context: it outlives the request that started it.
            self._task = loop.create_task(self._watch(), context=contextvars.Context())

    async def _watch(self) -> None:
        vouch_for = sync_to_async(vouch, thread_sensitive=False)
        forget_all = sync_to_async(forget_many, thread_sensitive=False)
        get_many = sync_to_async(cache.get_many, thread_sensitive=False)
        since_heartbeat = 0.0
        while running := self._running():
            await asyncio.sleep(WATCH_SECONDS)
            running = self._running()
            if not running:
                break
            since_heartbeat += WATCH_SECONDS
            try:
                if since_heartbeat >= HEARTBEAT_SECONDS:
                    since_heartbeat = 0.0
                    await vouch_for(running)
                    # An answer that ended while its heartbeat was being written had its keys cleared before that
                    # write: clear them again, or a stored answer would look alive until the heartbeat expired.
                    if ended := [turn_id for turn_id in running if turn_id not in self._running()]:
                        await forget_all(ended)
                requested = await get_many([stop_key(turn_id) for turn_id in running])
            except Exception:  # the cache is away: local stops still work, readers trust the rows; try again
                logger.warning("could not renew heartbeats or read stop requests", exc_info=True)
                continue
            for turn_id in running:
                if requested.get(stop_key(turn_id)):
                    self._on_stop(turn_id)
