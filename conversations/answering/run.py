"""One answer being produced, from the stored question to the stored answer: the model call, the tool loop,
and what is stored at each step (through the services' short transactions, never holding a DB connection
while the model writes).

The tool loop: when the model calls server tools (tools.py), the run stores that step (an assistant turn
with its tool calls, then one tool turn per result, placed before the pending answer), streams a
`ToolStep` per call, and asks the model again with the results, up to CHAT_TOOL_ROUNDS rounds; the last
round offers no tools, so the answer ends in text. Tools sent by an API client are never run here: their
calls go back to the client, as OpenAI does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from chatsite import metrics, observability
from conversations import errors, llm, services
from conversations.answering import approvals, tools
from conversations.answering.events import (
    AnswerDelta,
    AnswerDone,
    AnswerFailed,
    AnswerToolCall,
    ChatEvent,
    TitleSet,
    ToolApproval,
    ToolStep,
    TurnStored,
    merge_tool_call_deltas,
)
from conversations.digests import next_digest
from conversations.messages import ModelMessage, ToolCall, message_text
from conversations.models import Turn

logger = logging.getLogger(__name__)

STORE_RETRY_DELAYS = (0.1, 0.5, 2.0)


def db(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run short DB work from the answer's loop in a worker thread, then release that thread's connection.

    Not thread-sensitive: answers run outside any request, where asgiref's one shared "sync thread" may be
    held by a caller waiting for the answer. Each call opens and releases its connection (from the pool on
    PostgreSQL), so the thread does not matter.
    """

    def run_and_release(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            services.release_connection()

    return sync_to_async(run_and_release, thread_sensitive=False)


async def store_retrying(
    turn: Turn, owner_id: int, fields: dict[str, Any], counted: tuple[int, int] = (0, 0)
) -> Turn:
    """Store the outcome, trying again over a few seconds if the database is briefly away (a restart, a
    locked SQLite file): the answer is all that is left of the model's work. Raises DatabaseUnavailable.

    Its liveness keys stay until the engine lets go of the run (Engine._drive): a follower on another worker still
    waits for the stream's end marker (and the model's title) and must not see the answer lapse before it."""
    for delay in STORE_RETRY_DELAYS:
        try:
            return await db(services.answer_store)(turn=turn, owner_id=owner_id, fields=fields, counted=counted)
        except errors.DatabaseUnavailable:
            await asyncio.sleep(delay)
    return await db(services.answer_store)(turn=turn, owner_id=owner_id, fields=fields, counted=counted)


class Run:
    """One answer being produced. The engine iterates `events()` once, to the end, whoever is connected."""

    def __init__(self, start: services.TurnStart) -> None:
        self.conversation = start.conversation
        self.user_turn = start.user_turn
        self.assistant_turn = start.assistant_turn
        self.turn_id = start.assistant_turn.pk
        self._messages = start.messages
        self._model = start.model
        self._dropped = start.dropped_turns
        self._prompt_tokens = start.prompt_tokens
        self._options = start.options
        self._parent_digest = start.answer_parent_digest
        self._wants_model_title = start.auto_titled
        self._fallback_title = start.conversation.title
        self._surface = observability.current("surface") or "other"  # for the metrics: page, rest, v1...
        # A continued answer: its text so far comes first, and its usage so far adds to this run's.
        self._prefix = start.continued_text or ""
        self._counted = start.counted_usage
        self._refusal = start.refusal
        # Server tools only when the client sent none of its own (its agent loop owns the tools then); none to
        # a continued answer, which only writes on.
        self._tools = {} if "tools" in self._options or start.continued_text is not None else tools.offered(
            self._model, self.conversation, policy=start.policy, knowledge=start.knowledge_tool
        )

    @property
    def messages(self) -> list[ModelMessage]:
        return list(self._messages)

    def _round_options(self, rounds_done: int) -> dict[str, Any]:
        if not self._tools or rounds_done >= settings.CHAT_TOOL_ROUNDS:
            return self._options  # the last round offers no tools: the answer ends in text
        return {**self._options, "tools": [tool.spec() for tool in self._tools.values()]}

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        backend = llm.get_backend()
        parts: list[str] = []
        started = time.monotonic()
        first_token_ms: int | None = None
        failure: errors.ChatError | None = None
        fields: dict[str, Any]
        metrics.chat_started(surface=self._surface, model=self._model)
        try:
            # Inside the try: a client that leaves even while this first event is being sent cancels the answer.
            yield TurnStored(self.user_turn, self.assistant_turn)
            if self._refusal is not None:  # refused before any model call: the message stays, the answer fails
                raise self._refusal
            rounds = 0
            while True:
                parts = []
                tool_calls: list[ToolCall] = []
                finished: llm.Finished | None = None
                stream = backend.stream(
                    self._messages, model=self._model, max_tokens=settings.CHAT_MAX_ANSWER_TOKENS,
                    options=self._round_options(rounds),
                )
                try:
                    async for item in stream:
                        if isinstance(item, llm.Finished):
                            finished = item
                            continue
                        if first_token_ms is None:
                            first_token_ms = int((time.monotonic() - started) * 1000)
                        if isinstance(item, llm.ToolCallDelta):
                            merge_tool_call_deltas(tool_calls, item.tool_calls)
                            if not self._tools:  # the client's own tools: their calls go back as streamed
                                yield AnswerToolCall(item.tool_calls)
                        else:
                            parts.append(item.text)
                            yield AnswerDelta(item.text)
                finally:
                    await stream.aclose()  # closes the upstream request now, not at garbage collection
                if not (self._tools and tool_calls and finished is not None
                        and finished.finish_reason == "tool_calls"):
                    break
                rounds += 1
                async for step in self._run_tools(parts, tool_calls, finished):
                    yield step
        except (errors.UpstreamError, errors.SystemPromptTooLong) as exc:
            failure = exc
            fields = {
                **self._outcome_fields(parts, started, first_token_ms),
                "status": Turn.Status.FAILED, "error": exc.message[:300], "error_code": exc.code,
                # Cut mid-answer, the upstream did the work: count it (a refusal before any text costs nothing).
                **(await self._counted_usage(parts) if parts else {}),
            }
        except (asyncio.CancelledError, GeneratorExit):
            # Stopped, or the client of a /v1 stream went away: keep what was written, marked cancelled.
            await asyncio.shield(self._store_cancelled(parts, started, first_token_ms))
            self._record(self.assistant_turn, started, first_token_ms)
            raise
        else:
            if finished is None or finished.finish_reason == "cancelled":
                fields = await self._cancelled_fields(parts, started, first_token_ms)
            else:
                fields = {
                    **self._outcome_fields(parts, started, first_token_ms),
                    "status": Turn.Status.COMPLETE, "finish_reason": finished.finish_reason[:30],
                    "tool_calls": tool_calls or None,
                    "digest": self._parent_digest and next_digest(self._parent_digest, {
                        "role": Turn.Role.ASSISTANT, "content": self._prefix + "".join(parts),
                        "tool_calls": tool_calls,
                    }),
                    "prompt_tokens": self._counted[0] + finished.prompt_tokens,
                    "completion_tokens": self._counted[1] + finished.completion_tokens,
                    "usage_approximate": finished.usage_approximate, "model": finished.model[:100] or self._model,
                }
        turn = self.assistant_turn
        try:
            await store_retrying(turn, self.conversation.owner_id, fields, self._counted)
        except errors.DatabaseUnavailable as exc:
            # Nothing could be stored: report the answer as failed (the next request fails the stored row).
            failure = exc
            for name, value in {**fields, "status": Turn.Status.FAILED, "error": exc.message,
                                       "error_code": exc.code}.items():
                setattr(turn, name, value)
        outcome = AnswerFailed(turn, failure) if failure is not None else AnswerDone(turn)
        self._record(turn, started, first_token_ms, failure)
        yield outcome
        completed = isinstance(outcome, AnswerDone) and turn.status == Turn.Status.COMPLETE
        if completed and self._wants_model_title:
            title = await self._model_title()
            if title:
                yield TitleSet(title)

    async def _run_tools(
        self, parts: list[str], calls: list[ToolCall], finished: llm.Finished
    ) -> AsyncGenerator[ToolApproval | ToolStep, None]:
        """One round of the tool loop: ask the user about the calls that need approval, run the others and the
        allowed ones (at once), store the step before the pending answer, and give the model the results."""
        context = tools.ToolContext(
            owner_id=self.conversation.owner_id, conversation_id=self.conversation.pk, answer_id=self.turn_id
        )
        waiting = [call for call in calls
                   if (tool := self._tools.get(call["function"]["name"])) is not None and tool.needs_approval]
        decisions: dict[str, bool | None] = {}
        if waiting:
            seconds = settings.CHAT_TOOL_APPROVAL_SECONDS
            await approvals.ask(self.turn_id, [call["id"] for call in waiting])
            for call in waiting:
                yield ToolApproval(call, self.turn_id, str(self.conversation.pk), seconds)
            decisions = await approvals.wait(self.turn_id, [call["id"] for call in waiting], seconds)

        async def run_if_allowed(call: ToolCall) -> tools.ToolOutcome:
            decision = decisions.get(call["id"], True)
            if decision is None:
                return tools.ToolOutcome(f"Error: the user did not answer within {settings.CHAT_TOOL_APPROVAL_SECONDS} "
                                         "s, so the call was not made.", True, 0.0)
            if not decision:
                return tools.ToolOutcome("Error: the user refused this call; it was not made.", True, 0.0)
            return await tools.run(self._tools.get(call["function"]["name"]), call, context)

        outcomes = await asyncio.gather(*(run_if_allowed(call) for call in calls))
        content = "".join(parts)
        step, results = await db(services.answer_step_store)(
            answer=self.assistant_turn, owner_id=self.conversation.owner_id, content=content, tool_calls=calls,
            results=[(call["id"], outcome.result, int(outcome.seconds * 1000))
                     for call, outcome in zip(calls, outcomes, strict=True)],
            usage={"prompt_tokens": finished.prompt_tokens, "completion_tokens": finished.completion_tokens,
                   "usage_approximate": finished.usage_approximate},
            model=finished.model[:100] or self._model, parent_digest=self._parent_digest,
        )
        self._parent_digest = results[-1].digest
        self._messages.append({"role": "assistant", "content": content or None, "tool_calls": calls})
        for call, outcome, result in zip(calls, outcomes, results, strict=True):
            self._messages.append({"role": "tool", "content": outcome.result, "tool_call_id": call["id"]})
            yield ToolStep(call, outcome.result, outcome.is_error, outcome.seconds, step.pk, result.pk)

    def _record(
        self, turn: Turn, started: float, first_token_ms: int | None, failure: errors.ChatError | None = None
    ) -> None:
        metrics.chat_finished(
            surface=self._surface, model=self._model, outcome=turn.status,
            error=failure.code if failure is not None else "", prompt_tokens=turn.prompt_tokens,
            completion_tokens=turn.completion_tokens, seconds=time.monotonic() - started,
            first_token_seconds=first_token_ms / 1000 if first_token_ms is not None else None,
        )

    def _outcome_fields(self, parts: list[str], started: float, first_token_ms: int | None) -> dict[str, Any]:
        """What every stored outcome records: the text so far, timings, and the context trimming."""
        return {
            "content": self._prefix + "".join(parts), "latency_ms": int((time.monotonic() - started) * 1000),
            "first_token_ms": first_token_ms, "dropped_turns": self._dropped,
        }

    async def _counted_usage(self, parts: list[str]) -> dict[str, Any]:
        """Usage counted here, for an answer whose upstream reported none (cut short); never blocks the loop
        (the embedded model's tokenizer is an HTTP call)."""
        text = "".join(parts)
        return {
            "prompt_tokens": self._counted[0] + self._prompt_tokens, "usage_approximate": True,
            "completion_tokens": self._counted[1] + (await llm.get_backend().count_tokens_async(text) if text else 0),
        }

    async def _cancelled_fields(self, parts: list[str], started: float, first_token_ms: int | None) -> dict[str, Any]:
        return {
            **self._outcome_fields(parts, started, first_token_ms), **await self._counted_usage(parts),
            "status": Turn.Status.CANCELLED, "finish_reason": "cancelled",
        }

    async def _store_cancelled(self, parts: list[str], started: float, first_token_ms: int | None) -> None:
        with contextlib.suppress(errors.DatabaseUnavailable):
            await store_retrying(
                self.assistant_turn, self.conversation.owner_id,
                await self._cancelled_fields(parts, started, first_token_ms), self._counted,
            )

    async def _model_title(self) -> str:
        """Ask the model for a short title; on any failure keep the first-words title. Never raises."""
        if not settings.CHAT_MODEL_TITLES:
            return ""
        # The message as typed: not its files' text (a title needs the message), nor its images.
        first_message = (self.user_turn.content if self.user_turn is not None
                         else message_text(next(m for m in self._messages if m["role"] == "user")))
        prompt: list[ModelMessage] = [
            {"role": "system", "content": "You write very short titles for chats."},
            {"role": "user", "content": (
                "Write a title of at most six words for a chat that starts with this message. "
                f"Reply with the title only.\n\nMessage: {first_message[:1000]}"
            )},
        ]
        parts: list[str] = []
        try:
            async with asyncio.timeout(20):
                async for item in llm.get_backend().stream(prompt, model=self._model, max_tokens=20):
                    if isinstance(item, llm.TextDelta):
                        parts.append(item.text)
        except (errors.ChatError, TimeoutError):
            return ""
        title = " ".join("".join(parts).split()).strip(" \"'`*#.")
        if not title:
            return ""
        title = services.title_from_text(title)
        stored = await db(services.title_store)(
            conversation_id=self.conversation.pk, fallback=self._fallback_title, title=title
        )
        return title if stored else ""
