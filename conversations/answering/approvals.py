"""Tool calls that wait for the user: the answer pauses until its owner allows or refuses the call, on any worker.

One key per waiting call in the shared cache (Redis with REDIS_URL, else this process's memory), like
liveness.py's stop requests: `chat:approval:<turn>:<call>` holds "waiting" while the answer waits, then the
decision ("allow" or "refuse") set by whichever worker got it. The worker producing the answer reads the keys
twice a second, and at once when the decision arrives in its own process. Unanswered for
CHAT_TOOL_APPROVAL_SECONDS, the call is refused. Stop still works while an answer waits: it cancels the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

WAITING, ALLOW, REFUSE = "waiting", "allow", "refuse"
POLL_SECONDS = 0.5

# This process's waiting answers, woken at once by a decision taken here: turn id -> (its loop, its event).
_waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
_waiters_lock = threading.Lock()


def approval_key(turn_id: int, call_id: str) -> str:
    return f"chat:approval:{turn_id}:{call_id}"


def decide(turn_id: int, call_id: str, allow: bool) -> bool:
    """Record the user's decision on a waiting call; False when that call is not waiting (any more)."""
    key = approval_key(turn_id, call_id)
    if cache.get(key) != WAITING:
        return False
    cache.set(key, ALLOW if allow else REFUSE, timeout=settings.CHAT_TOOL_APPROVAL_SECONDS + 60)
    with _waiters_lock:
        waiter = _waiters.get(turn_id)
    if waiter is not None:
        loop, wake = waiter
        with contextlib.suppress(RuntimeError):  # that loop is closed
            loop.call_soon_threadsafe(wake.set)
    return True


async def ask(turn_id: int, call_ids: list[str]) -> None:
    """Mark the calls as waiting (before the page is told, so that its answer finds them)."""
    timeout = settings.CHAT_TOOL_APPROVAL_SECONDS + 60
    await sync_to_async(cache.set_many, thread_sensitive=False)(
        {approval_key(turn_id, call_id): WAITING for call_id in call_ids}, timeout=timeout
    )


async def wait(turn_id: int, call_ids: list[str], seconds: float) -> dict[str, bool | None]:
    """Each call's decision: True (allowed), False (refused) or None (no answer within `seconds`)."""
    keys = {approval_key(turn_id, call_id): call_id for call_id in call_ids}
    wake = asyncio.Event()
    with _waiters_lock:
        _waiters[turn_id] = (asyncio.get_running_loop(), wake)
    get_many = sync_to_async(cache.get_many, thread_sensitive=False)
    decisions: dict[str, bool | None] = dict.fromkeys(call_ids)
    deadline = asyncio.get_running_loop().time() + seconds
    try:
        while True:
            wake.clear()
            values = await get_many(list(keys))
            for key, call_id in keys.items():
                if values.get(key) in (ALLOW, REFUSE):
                    decisions[call_id] = values[key] == ALLOW
            remaining = deadline - asyncio.get_running_loop().time()
            if all(decision is not None for decision in decisions.values()) or remaining <= 0:
                return decisions
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(POLL_SECONDS, remaining)):
                    await wake.wait()
    finally:
        with _waiters_lock:
            _waiters.pop(turn_id, None)
        with contextlib.suppress(Exception):  # the cache is away: the keys expire on their own
            await sync_to_async(cache.delete_many, thread_sensitive=False)(list(keys))
