"""Which answers are alive: stop signals (local, and through the shared cache across workers), the heartbeat
that vouches for a running answer, and failing the answers of dead workers."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import weakref
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from conversations.models import Conversation, Turn

logger = logging.getLogger(__name__)

STOP_CHECK_SECONDS = 1.0
# A running answer whose worker no longer vouches for it (no heartbeat) is abandoned after this long.
UNVOUCHED_GRACE_SECONDS = 2.0
INTERRUPTED = "The answer was interrupted."

# Stop signals for answers running in this process; other workers see the cache flag.
_local_stops: dict[int, threading.Event] = {}


def _stop_key(turn_id: int) -> str:
    return f"chat:stop:{turn_id}"


def _running_key(turn_id: int) -> str:
    # The answer's heartbeat: set while a worker is producing this answer (shared through Redis across
    # workers), with a short lifetime that the answer engine renews. Without it, a turn still 'pending' in
    # the DB is one whose answer could not be stored (DB outage) or whose worker died.
    return f"chat:running:{turn_id}"


def answer_vouch(turn_id: int) -> None:
    """Renew a running answer's heartbeat (the answer engine calls this every few seconds)."""
    cache.set(_running_key(turn_id), True, timeout=settings.CHAT_ANSWER_HEARTBEAT_SECONDS)


def answer_is_vouched(turn_id: int) -> bool:
    return bool(cache.get(_running_key(turn_id)))


def answer_fail_if_abandoned(turn: Turn) -> bool:
    """Fail a running answer that nobody produces any more (its worker died); True if it was failed.

    Readers call this (the stream endpoint, the chat page) so that a crash does not leave "writing…"
    forever for someone who only reads the chat.
    """
    if not turn.is_running:
        return False
    grace = timezone.now() - timedelta(seconds=UNVOUCHED_GRACE_SECONDS)
    if turn.created_at > grace or cache.get(_running_key(turn.pk)):
        return False
    failed = Turn.objects.filter(pk=turn.pk, status=Turn.Status.PENDING).update(
        status=Turn.Status.FAILED, error=INTERRUPTED, completed_at=timezone.now()
    )
    if failed:
        turn.status, turn.error = Turn.Status.FAILED, INTERRUPTED
    return bool(failed)


# One task per event loop polls the shared cache for stop requests made in other workers, for every answer
# running in this process at once (one MGET a second), instead of each answer asking on its own.
_stop_pollers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _watch_shared_stops() -> None:
    loop = asyncio.get_running_loop()
    poller = _stop_pollers.get(loop)
    if poller is None or poller.done():
        # Its own context: it outlives the request that started it (and that request's thread).
        _stop_pollers[loop] = loop.create_task(_poll_shared_stops(), context=contextvars.Context())


async def _poll_shared_stops() -> None:
    get_many = sync_to_async(cache.get_many, thread_sensitive=False)
    while _local_stops:
        await asyncio.sleep(STOP_CHECK_SECONDS)
        running = dict(_local_stops)
        if not running:
            break
        try:
            requested = await get_many([_stop_key(turn_id) for turn_id in running])
        except Exception:  # the cache is away: local stops still work; try again in a second
            logger.warning("could not check for stop requests", exc_info=True)
            continue
        for turn_id, stop in running.items():
            if requested.get(_stop_key(turn_id)) and not stop.is_set():
                stop.set()
                _stop_engine_answer(turn_id)


def _stop_engine_answer(turn_id: int) -> None:
    from conversations.answers import engine

    engine.stop_soon(turn_id)


def answer_stop(turn_id: int) -> None:
    """Stop an answer running in this process (no DB access: callable from a stream that is closing)."""
    local = _local_stops.get(turn_id)
    if local is not None:
        local.set()
        _stop_engine_answer(turn_id)


def turn_stop(*, conversation: Conversation) -> Turn | None:
    """Ask the running answer of a conversation to stop; returns it, or None if nothing runs."""
    turn = conversation.turns.filter(role=Turn.Role.ASSISTANT, status=Turn.Status.PENDING).first()
    if turn is None:
        return None
    local = _local_stops.get(turn.pk)
    if local is not None:
        local.set()
        _stop_engine_answer(turn.pk)
    cache.set(_stop_key(turn.pk), True, timeout=settings.CHAT_STALE_TURN_SECONDS)
    return turn


def turns_fail_stale(*, older_than_seconds: int | None = None) -> int:
    """Mark answers abandoned by a dead worker as failed; returns how many."""
    seconds = settings.CHAT_STALE_TURN_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return Turn.objects.filter(status=Turn.Status.PENDING, created_at__lt=cutoff).update(
        status=Turn.Status.FAILED, error=INTERRUPTED, completed_at=timezone.now()
    )
