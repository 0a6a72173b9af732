"""The engine: runs answers detached from requests, keeps each one's event log, and cancels the ones asked
to stop. It is the only holder of an answer's in-process state (its task, its log, whether it is stopping).

Answers run on the server's event loop (under uvicorn: `adopt_loop`), beside the requests that follow them,
or else in a thread with an event loop of its own (WSGI, tests, management commands).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from django.conf import settings

from chatsite import metrics, observability
from conversations.answering import liveness, relay
from conversations.answering.events import AnswerDone, AnswerFailed, ChatEvent, Entry

if TYPE_CHECKING:
    from conversations.answering.run import Run

logger = logging.getLogger(__name__)


class AnswerLog:
    """The events of one answer, in order, for any number of followers in any thread's event loop."""

    def __init__(self, turn_id: int):
        self.turn_id = turn_id
        self.entries: list[Entry] = []
        self.finished = threading.Event()
        self.followers = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def append(self, event: ChatEvent) -> Entry:
        with self._lock:
            entry = Entry.of(len(self.entries) + 1, event)
            self.entries.append(entry)
        self._wake()
        return entry

    def finish(self) -> None:
        self.finished.set()
        self._wake()

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

    def outcome(self) -> AnswerDone | AnswerFailed | None:
        """The answer's last event: AnswerDone or AnswerFailed (a title may follow it)."""
        for entry in reversed(self.entries):
            if isinstance(entry.event, AnswerDone | AnswerFailed):
                return entry.event
        return None

    async def wait_async(self) -> None:
        async for _ in self.follow(len(self.entries)):
            pass


class Engine:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.logs: dict[int, AnswerLog] = {}  # running answers, and finished ones for RETAIN_SECONDS
        self._tasks: dict[int, asyncio.Task[None]] = {}  # running answers only
        self._stopping: set[int] = set()
        self._watcher = liveness.Watcher(running=lambda: list(self._tasks), on_stop=self.cancel)
        # Where the loop clears an answer's keys: a context of the engine's own, entered only on its loop. Django's
        # cache handles are kept per context (asgiref's Local), so in each answer's fresh context the one DEL would
        # first build a cache client of its own (three times the DEL's CPU).
        self._keys_context = contextvars.Context()

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

    def start(self, run: Run) -> AnswerLog:
        log = AnswerLog(run.turn_id)
        self.logs[log.turn_id] = log
        loop = self.loop()
        # The answer outlives the request: it keeps the request's log context and nothing else of it (a task
        # that inherited asgiref's request state could send its sync calls to a request thread long gone).
        context = observability.detached_context()
        try:
            running_here = asyncio.get_running_loop() is loop
        except RuntimeError:
            running_here = False
        if running_here:
            self._spawn(run, log, context)
        else:
            loop.call_soon_threadsafe(self._spawn, run, log, context)
        return log

    def _spawn(self, run: Run, log: AnswerLog, context: contextvars.Context) -> None:
        self._tasks[log.turn_id] = asyncio.get_running_loop().create_task(self._drive(run, log), context=context)

    def log_for(self, turn_id: int) -> AnswerLog | None:
        return self.logs.get(turn_id)

    def cancel(self, turn_id: int) -> None:
        """End a running answer now (from any thread): stored cancelled, with the text written so far."""
        loop = self._loop
        if loop is not None and turn_id in self._tasks:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._cancel, turn_id)

    def _cancel(self, turn_id: int) -> None:
        task = self._tasks.get(turn_id)
        if task is not None and turn_id not in self._stopping:
            self._stopping.add(turn_id)
            task.cancel()

    async def _drive(self, run: Run, log: AnswerLog) -> None:
        turn_id = log.turn_id
        task = self._tasks[turn_id]
        self._watcher.ensure_running()
        publisher = relay.Publisher(turn_id) if settings.REDIS_URL else None
        try:
            try:
                async for event in run.events():
                    entry = log.append(event)
                    if publisher is not None:
                        publisher.add(entry)
            except asyncio.CancelledError:
                if turn_id not in self._stopping:
                    raise
                # Stopped: events() stored the partial answer as cancelled before letting go.
                task.uncancel()
                entry = log.append(AnswerDone(run.assistant_turn))
                if publisher is not None:
                    publisher.add(entry)
        except Exception:
            logger.exception("answer %s: the engine failed", turn_id)
        finally:
            self._tasks.pop(turn_id, None)
            self._stopping.discard(turn_id)
            log.finish()
            asyncio.get_running_loop().call_later(relay.RETAIN_SECONDS, self._forget, log)
            if publisher is not None:
                await publisher.close()
            if turn_id not in self._tasks:  # (not continued meanwhile under the same id)
                # The one clearing of the answer's keys, once it has left _tasks, so no heartbeat writes them again
                # (the watcher vouches for every run in _tasks, the model's title included, and clears those that
                # ended during its write). On the loop: one DEL, no thread hop added to an answer's end.
                self._keys_context.run(liveness.forget, turn_id)

    def _forget(self, log: AnswerLog) -> None:
        # Only this log: a continued answer runs again under the same turn id, with a log of its own.
        if self.logs.get(log.turn_id) is log:
            del self.logs[log.turn_id]


engine = Engine()
