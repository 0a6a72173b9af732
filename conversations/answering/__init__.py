"""The answering package: the one owner of an answer's life, from the stored question to the stored answer.

Pages and APIs → answering → services → models. Its public interface:
- `begin(...)` (sync) and `start(...)` (async): store the user turn and a pending answer (services.turn_begin,
  one thread trip from async code), then run the answer on the engine; returns the live `Answer`;
- `Answer.follow(after)`, `follow(turn_id, after)`: its events, from this worker or (with Redis) another one;
- `stop(turn_id)`, `stop_conversation(conversation)`: the one stop path (a shared stop request that the
  worker producing the answer acts on; at once when that is this worker);
- `alive(...)`, `fail_if_abandoned(turn)`: the one liveness check;
- `decide_tool_call(turn_id, call_id, allow)`: the user's answer to a call waiting for approval (any worker);
- `Answer.stored()`, `Answer.begun()` (on the event loop), `Answer.wait()`, `answer(...)` (sync code): wait for
  the stored outcome, or the first output.

Inside: `run` (the model call and the tool loop), `tools` (server tools), `engine` (tasks and event logs),
`liveness` (heartbeats and stop requests), `relay` (Redis streams across workers), `events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from asgiref.sync import sync_to_async

from conversations import services
from conversations.answering import approvals, liveness, relay
from conversations.answering.engine import AnswerLog, engine
from conversations.answering.events import (
    AnswerDelta,
    AnswerDone,
    AnswerFailed,
    AnswerToolCall,
    ChatEvent,
    Entry,
    ErrorData,
    TitleSet,
    ToolApproval,
    ToolStep,
    TurnStored,
    sse_frame,
)
from conversations.answering.liveness import alive, fail_if_abandoned
from conversations.answering.relay import AnswerLapsed
from conversations.answering.run import Run
from conversations.messages import ModelMessage, ToolResult
from conversations.models import Conversation, Turn

__all__ = [
    "Answer", "AnswerDelta", "AnswerDone", "AnswerFailed", "AnswerLapsed", "AnswerToolCall", "ChatEvent", "Entry",
    "ErrorData", "TitleSet", "ToolApproval", "ToolStep", "TurnStored", "adopt_loop", "alive", "answer", "begin",
    "decide_tool_call", "fail_if_abandoned", "follow", "sse_frame", "start", "stop", "stop_conversation",
]


class Answer:
    """A running (or just finished) answer of this worker: its stored turns and its event log."""

    def __init__(self, run: Run, log: AnswerLog):
        self._run = run
        self.log = log
        self.turn_id = run.turn_id
        self.conversation = run.conversation
        self.user_turn = run.user_turn

    @property
    def assistant_turn(self) -> Turn:
        """The answer's turn: pending while it runs, then as stored."""
        return self._run.assistant_turn

    @property
    def messages(self) -> list[ModelMessage]:
        """What the model was sent for it (the prompt after context trimming)."""
        return self._run.messages

    def follow(self, after: int = 0) -> AsyncGenerator[Entry, None]:
        return self.log.follow(after)

    def outcome(self) -> AnswerDone | AnswerFailed | None:
        return self.log.outcome()

    def wait(self) -> Answer:
        """Wait (sync) for the answer to be stored; raises its error if it failed."""
        self.log.finished.wait()
        return self.result()

    async def stored(self) -> None:
        """Wait, on the event loop, until the answer is stored (whatever its outcome)."""
        await self.log.wait_async()

    async def begun(self, timeout: float) -> None:
        """Wait, on the event loop, until the answer's first piece or its end (at most `timeout` seconds)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), contextlib.aclosing(self.follow()) as entries:
                async for entry in entries:
                    if not isinstance(entry.event, TurnStored):
                        return

    def failed_before_output(self) -> AnswerFailed | None:
        """Its failure, if it failed before writing anything (an upstream 429 or 5xx before the first byte: the
        OpenAI-compatible endpoints answer that with an HTTP error a client can retry on, as OpenAI does)."""
        outcome = self.outcome()
        return outcome if isinstance(outcome, AnswerFailed) and not outcome.assistant_turn.content else None

    def result(self) -> Answer:
        """The stored answer; raises its error if it failed."""
        outcome = self.outcome()
        if isinstance(outcome, AnswerFailed):
            raise outcome.error
        return self


def begin(
    *, conversation: Conversation, user: Any, content: str | None = None, regenerate: bool = False,
    turn_id: int | None = None, options: dict[str, Any] | None = None, after_turn_id: int | None = None,
    tool_results: list[ToolResult] | None = None, attachment_ids: list[uuid.UUID] | None = None,
    model: str | None = None, continue_turn_id: int | None = None,
) -> Answer:
    """Store the turn (services.turn_begin: its arguments and errors) and start its answer (sync code)."""
    start = services.turn_begin(
        conversation=conversation, user=user, alive=alive, content=content, regenerate=regenerate,
        turn_id=turn_id, options=options, after_turn_id=after_turn_id, tool_results=tool_results,
        attachment_ids=attachment_ids, model=model, continue_turn_id=continue_turn_id,
    )
    liveness.vouch([start.assistant_turn.pk])
    run = Run(start)
    return Answer(run, engine.start(run))


async def start(**turn: Any) -> Answer:
    """`begin` from async code: the checks and the begin transaction in one thread trip."""
    return await sync_to_async(begin, thread_sensitive=True)(**turn)


def answer(**turn: Any) -> Answer:
    """`begin(...)` and wait for the stored answer (sync callers: management commands, tests)."""
    return begin(**turn).wait()


def adopt_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Run answers on this (the ASGI server's) event loop, beside the requests that follow them."""
    engine.adopt_loop(loop)


def follow(turn_id: int, after: int = 0) -> AsyncGenerator[Entry, None] | None:
    """A running answer's events after `after`, from this worker or (with Redis) the one producing it; None
    if no worker has it. A remote answer whose worker dies raises AnswerLapsed."""
    log = engine.log_for(turn_id)
    if log is not None:
        return log.follow(after)
    if relay.exists(turn_id):
        return relay.follow(turn_id, after)
    return None


def stop(turn_id: int) -> None:
    """Stop an answer running in this worker now (no DB access: callable from a stream that is closing)."""
    engine.cancel(turn_id)


def stop_conversation(conversation: Conversation) -> Turn | None:
    """Stop the conversation's running answer, on whichever worker it runs; returns it, or None if none runs."""
    turn = liveness.request_stop(conversation)
    if turn is not None:
        engine.cancel(turn.pk)
    return turn


def decide_tool_call(turn_id: int, call_id: str, allow: bool) -> bool:
    """Allow or refuse a server tool call the answer waits on (approvals.py); False if that call is not waiting."""
    return approvals.decide(turn_id, call_id, allow)
