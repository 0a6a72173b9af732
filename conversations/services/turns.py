"""The one path that appends a turn, calls the model and stores the answer.

Every surface (HTML page, REST API, SSE stream, /api/chat, /v1/chat/completions) calls
`chat_turn_begin()` (or `chat_turn_start()` from async code) and hands the run to the answer engine
(`conversations.answers`), which iterates `ChatRun.events()` to the end whoever is connected; `ChatRun.run()`
does that from sync code and waits.

A turn is three steps, and only the middle one is slow:
1. a short transaction stores the user turn and a `pending` assistant turn (row lock on PostgreSQL,
   IMMEDIATE transaction on SQLite, the unique (conversation, position) constraint as final guard);
2. the model is called with no transaction open and no DB connection held (it is released after
   step 1 and borrowed again for step 3);
3. a short transaction stores the answer, usage, finish reason, latency and status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from chatsite import metrics, observability
from conversations import attachments, errors, llm
from conversations.digests import next_digest, root_digest
from conversations.messages import ModelMessage, StoredMessage, ToolCall, ToolResult, message_text
from conversations.models import Attachment, Conversation, Turn
from conversations.selectors import history_for_model
from conversations.services.conversations import title_from_text
from conversations.services.events import (
    AnswerDelta,
    AnswerDone,
    AnswerFailed,
    AnswerToolCall,
    ChatEvent,
    TitleSet,
    TurnStored,
    merge_tool_call_deltas,
)
from conversations.services.liveness import (
    INTERRUPTED,
    UNVOUCHED_GRACE_SECONDS,
    _local_stops,
    _running_key,
    _stop_key,
    _watch_shared_stops,
    answer_vouch,
)
from conversations.services.quota import _quota_reserve, _tokens_so_far, _usage_add

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)


def release_connection() -> None:
    """Give the DB connection back (to the pool on PostgreSQL) before a long wait.

    Inside an atomic block (tests wrap each test in one) there is nothing to release.
    """
    if not connection.in_atomic_block:
        connection.close()


def _db(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run short DB work from async code in a worker thread, then release that thread's connection.

    Not thread-sensitive: answers run in the answer engine's own loop, outside any request, where asgiref's
    one shared "sync thread" may be held by a caller waiting for the answer (it would deadlock). Each call
    opens and releases its connection (from the pool on PostgreSQL), so the thread does not matter.
    """

    def run_and_release(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            release_connection()

    return sync_to_async(run_and_release, thread_sensitive=False)


def _claim_conversation(conversation_id: uuid.UUID) -> Conversation:
    """Lock the conversation row (PostgreSQL) and refuse if an answer is still being written.

    The current turn comes in the same query (not locked: turns are only ever added, never moved).
    """
    conversation = (
        Conversation.objects.select_for_update(of=("self",)).select_related("current_turn").get(pk=conversation_id)
    )
    running = (
        Turn.objects.filter(conversation_id=conversation_id, status=Turn.Status.PENDING)
        .only("id", "created_at")
        .first()
    )
    if running is not None:
        now = timezone.now()
        stale = running.created_at < now - timedelta(seconds=settings.CHAT_STALE_TURN_SECONDS)
        unvouched = running.created_at < now - timedelta(seconds=UNVOUCHED_GRACE_SECONDS) and not cache.get(
            _running_key(running.pk)
        )
        if not (stale or unvouched):
            raise errors.ConversationBusy()
        # Its worker died, or its answer could not be stored: fail it so the chat can go on.
        Turn.objects.filter(pk=running.pk).update(
            status=Turn.Status.FAILED, error=INTERRUPTED, completed_at=timezone.now()
        )
    return conversation


@dataclass
class _Start:
    conversation: Conversation
    user_turn: Turn | None
    assistant_turn: Turn
    model: str
    question_id: int  # the last turn of the history the answer is asked for: its input (the answer's parent)
    messages: list[ModelMessage] = field(default_factory=list)
    auto_titled: bool = False  # the title was just made from the first message: the model may improve it
    prompt_tokens: int = 0  # the prompt's size as counted here (the upstream's own count replaces it)
    answer_parent_digest: str | None = None  # the history digest the answer chains from (conversations.digests)
    # The caller's Chat Completions parameters (llm.Backend.stream).
    options: dict[str, Any] = field(default_factory=dict)


def _with_versions(turn: Turn, earlier_sibling_ids: list[int]) -> Turn:
    """Give a new turn the sibling columns that reads carry (selectors.turn_path): it is the newest version."""
    turn.sibling_count = turn.sibling_index = len(earlier_sibling_ids) + 1
    turn.previous_sibling_id = earlier_sibling_ids[-1] if earlier_sibling_ids else None
    turn.next_sibling_id = None
    return turn


def _sibling_ids(conversation_id: uuid.UUID, parent_id: int | None) -> list[int]:
    return list(
        Turn.objects.filter(conversation_id=conversation_id, parent_id=parent_id)
        .order_by("id").values_list("id", flat=True)
    )


def _create_turns(
    conversation: Conversation, parent: Turn | None, inputs: list[StoredMessage], now: datetime, model: str,
    reserved: int | None,
) -> tuple[Turn, Turn, int]:
    """The new input under `parent` (None: a first message): a user message, or the results of the tools the
    answer `parent` called, one turn each; then the pending answer. Returns the last input turn, the answer
    and how many turns were added."""
    position = parent.position if parent is not None else 0
    digest = root_digest(conversation.system_prompt) if parent is None else parent.digest
    last_input = None
    for message in inputs:
        position += 1
        digest = digest and next_digest(digest, message)
        parent = last_input = Turn.objects.create(
            conversation=conversation, parent=parent, position=position, role=message["role"],
            content=message["content"], tool_call_id=message.get("tool_call_id"), digest=digest or None,
            created_at=now,
        )
    if last_input is None:
        raise ValueError("a turn needs an input: a message or tool results")
    assistant_turn = Turn.objects.create(
        conversation=conversation, parent=last_input, position=position + 1, role=Turn.Role.ASSISTANT,
        status=Turn.Status.PENDING, model=model, quota_reserved=reserved, created_at=now,
    )
    return last_input, _with_versions(assistant_turn, []), len(inputs) + 1


def _make_current(
    conversation: Conversation, turn: Turn, now: datetime, *, added: int, fields: tuple[str, ...] = ()
) -> None:
    conversation.current_turn = turn
    conversation.turn_count += added
    conversation.updated_at = now
    conversation.save(update_fields=["current_turn", "turn_count", "updated_at", *fields])


def _begin_append(
    conversation_id: uuid.UUID, user: User, inputs: list[StoredMessage], after_turn_id: int | None = None,
    files: list[Attachment] | None = None,
) -> _Start:
    """A new message (or tool results) after the turn shown last (the current turn), or after `after_turn_id`
    (a new branch when that is not the current turn)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _claim_conversation(conversation_id)
            parent = conversation.current_turn
            if after_turn_id is not None and after_turn_id != conversation.current_turn_id:
                parent = Turn.objects.filter(conversation=conversation, pk=after_turn_id).first()
                if parent is None:
                    raise errors.NothingToEdit()
            content = "".join(message["content"] for message in inputs)
            if files:  # the digest of a message with files covers them (conversations.digests)
                inputs[0]["attachments"] = [file.sha256 for file in files]
            reserved = _quota_reserve(user, context_tokens=_tokens_so_far(parent), content=content)
            model = conversation.model or llm.get_backend().default_model
            user_turn, assistant_turn, added = _create_turns(conversation, parent, inputs, now, model, reserved)
            attachments.bind(files or [], user_turn)
            user_turn.attachment_list = files or []
            _with_versions(user_turn, [])
            auto_titled = not conversation.title and inputs[0]["role"] == Turn.Role.USER
            if auto_titled:
                conversation.title = title_from_text(content)
            _make_current(conversation, assistant_turn, now, added=added, fields=("title",) if auto_titled else ())
    except IntegrityError:
        # Another answer started first (turn_one_running_per_conversation is the final guard).
        raise errors.ConversationBusy() from None
    return _Start(
        conversation, user_turn, assistant_turn, model, user_turn.pk, auto_titled=auto_titled,
        answer_parent_digest=user_turn.digest,
    )


def _answer_to_redo(conversation: Conversation, answer_id: int | None) -> tuple[Turn, Turn]:
    """The answer to regenerate (`answer_id`, or the current turn) and the input it answers: a user message or
    tool results."""
    turn_id = answer_id if answer_id is not None else conversation.current_turn_id
    answer = (
        Turn.objects.filter(conversation=conversation, pk=turn_id, role=Turn.Role.ASSISTANT)
        .select_related("parent").first()
        if turn_id is not None else None
    )
    if answer is None or answer.parent is None or answer.parent.role not in (Turn.Role.USER, Turn.Role.TOOL):
        raise errors.NothingToRegenerate()
    return answer, answer.parent


def _begin_regenerate(conversation_id: uuid.UUID, user: User, answer_id: int | None) -> _Start:
    """A new version of an answer, beside the old one (which keeps its text, usage, feedback and status)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _claim_conversation(conversation_id)
            old, question = _answer_to_redo(conversation, answer_id)
            reserved = _quota_reserve(user, context_tokens=old.prompt_tokens)
            earlier = _sibling_ids(conversation_id, question.pk)
            model = conversation.model or llm.get_backend().default_model
            assistant_turn = Turn.objects.create(
                conversation=conversation, parent=question, position=old.position, role=Turn.Role.ASSISTANT,
                status=Turn.Status.PENDING, model=model, quota_reserved=reserved, created_at=now,
            )
            _with_versions(assistant_turn, earlier)
            _make_current(conversation, assistant_turn, now, added=1)
    except IntegrityError:
        raise errors.ConversationBusy() from None
    return _Start(conversation, None, assistant_turn, model, question.pk, answer_parent_digest=question.digest)


def _begin_edit(
    conversation_id: uuid.UUID, user: User, message_id: int | None, answer_id: int | None, content: str
) -> _Start:
    """A new version of a user message (`message_id`, or the one `answer_id` answers), then its answer.

    Everything below the old message stays on its own branch.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _claim_conversation(conversation_id)
            if message_id is None:
                message_id = _answer_to_redo(conversation, answer_id)[1].pk
            old = (
                Turn.objects.filter(conversation=conversation, pk=message_id, role=Turn.Role.USER)
                .select_related("parent").first()
            )
            if old is None:
                raise errors.NothingToEdit()
            reserved = _quota_reserve(user, context_tokens=_tokens_so_far(old.parent), content=content)
            earlier = _sibling_ids(conversation_id, old.parent_id)
            model = conversation.model or llm.get_backend().default_model
            user_turn, assistant_turn, _ = _create_turns(
                conversation, old.parent, [{"role": Turn.Role.USER, "content": content}], now, model, reserved
            )
            _with_versions(user_turn, earlier)
            _make_current(conversation, assistant_turn, now, added=2)
    except IntegrityError:
        raise errors.ConversationBusy() from None
    return _Start(
        conversation, user_turn, assistant_turn, model, user_turn.pk, answer_parent_digest=user_turn.digest
    )


def _fit_to_context(
    messages: list[ModelMessage], backend: llm.Backend, model: str
) -> tuple[list[ModelMessage], int, int]:
    """Drop the oldest turns until the prompt fits, keeping the system prompt and the newest message.

    Counts from the newest message backwards, so only what is sent gets tokenized. Returns the messages
    kept, how many were dropped, and their token count (the prompt's size when the upstream reports none).
    """
    budget = backend.context_tokens(model) - settings.CHAT_MAX_ANSWER_TOKENS
    system, turns = messages[0], messages[1:]
    used = backend.message_tokens(system) + backend.message_tokens(turns[-1])
    kept = [turns[-1]]
    for message in reversed(turns[:-1]):
        cost = backend.message_tokens(message)
        if used + cost > budget:
            break
        used += cost
        kept.append(message)
    kept.reverse()
    while len(kept) > 1 and kept[0]["role"] == Turn.Role.TOOL:  # a tool's result without the call it answers
        used -= backend.message_tokens(kept.pop(0))
    return [system, *kept], len(turns) - len(kept), used


def _begin(
    conversation_id: uuid.UUID, user: User, content: str | None, regenerate: bool, turn_id: int | None,
    after_turn_id: int | None, tool_results: list[ToolResult] | None, files: list[Attachment] | None = None,
) -> tuple[_Start, int]:
    """Both DB steps before the model call, in one trip to a worker thread."""
    if regenerate and content is None:
        start = _begin_regenerate(conversation_id, user, turn_id)
    elif regenerate or turn_id is not None:
        if content is None:  # tool results answer the current turn's tool calls: they never edit a message
            raise ValueError("content is required to edit a message")
        message_id, answer_id = (None, turn_id) if regenerate else (turn_id, None)
        start = _begin_edit(conversation_id, user, message_id, answer_id, content)
    else:
        inputs: list[StoredMessage] = (
            [{"role": Turn.Role.USER, "content": content}] if content is not None
            else [{"role": Turn.Role.TOOL, **result} for result in tool_results or ()]
        )
        start = _begin_append(conversation_id, user, inputs, after_turn_id, files)
    answer_vouch(start.assistant_turn.pk)
    return _prepare(start)


def _prepare(start: _Start) -> tuple[_Start, int]:
    conversation = start.conversation
    system_prompt = conversation.system_prompt or settings.CHAT_DEFAULT_SYSTEM_PROMPT
    history = history_for_model(
        conversation, last_turn_id=start.question_id, vision=attachments.model_reads_images(start.model)
    )
    backend = llm.get_backend()
    start.messages, dropped, start.prompt_tokens = _fit_to_context(
        [{"role": "system", "content": system_prompt}, *history], backend, start.model
    )
    return start, dropped


def _store_answer(turn: Turn, owner_id: int, **fields: Any) -> Turn:
    """Store the outcome on `turn`; if the database is away, raise DatabaseUnavailable (the run then ends failed).

    One transaction stores the answer and adds its tokens to the owner's usage ledger (on the day the answer
    started, the day its quota was checked); then the conversation's updated_at (whose failure is only
    logged: the answer itself is stored).
    """
    fields["completed_at"] = timezone.now()
    fields["quota_reserved"] = None
    try:
        with transaction.atomic():
            Turn.objects.filter(pk=turn.pk).update(**fields)
            _usage_add(
                owner_id, timezone.localdate(turn.created_at),
                prompt_tokens=fields.get("prompt_tokens", 0), completion_tokens=fields.get("completion_tokens", 0),
            )
    except DatabaseError as exc:
        logger.warning("could not store answer %s: database unavailable (%s)", turn.pk, type(exc).__name__)
        raise errors.DatabaseUnavailable() from None
    finally:
        cache.delete_many([_running_key(turn.pk), _stop_key(turn.pk)])
    try:  # the answer is stored: a failure here only leaves the chat's place in the history list
        Conversation.objects.filter(pk=turn.conversation_id).update(updated_at=fields["completed_at"])
    except DatabaseError:
        logger.warning("stored answer %s, but not its conversation's updated_at: database unavailable", turn.pk)
    for name, value in fields.items():
        setattr(turn, name, value)
    return turn


STORE_RETRY_DELAYS = (0.1, 0.5, 2.0)


async def _store_answer_retrying(turn: Turn, owner_id: int, fields: dict[str, Any]) -> Turn:
    """Store the outcome, trying again over a few seconds if the database is briefly away (a restart, a
    locked SQLite file): the answer is all that is left of the model's work. Raises DatabaseUnavailable."""
    for delay in STORE_RETRY_DELAYS:
        try:
            return await _db(_store_answer)(turn, owner_id, **fields)
        except errors.DatabaseUnavailable:
            await asyncio.sleep(delay)
    return await _db(_store_answer)(turn, owner_id, **fields)


def _store_title(conversation_id: uuid.UUID, fallback: str, title: str) -> bool:
    # Only replace the automatic title: never overwrite a name the user chose meanwhile.
    return bool(Conversation.objects.filter(pk=conversation_id, title=fallback).update(title=title))


class ChatRun:
    """One answer being produced. Iterate `events()` once (async), or call `run()` from sync code."""

    def __init__(self, start: _Start, dropped_turns: int) -> None:
        self.conversation = start.conversation
        self.user_turn = start.user_turn
        self.assistant_turn = start.assistant_turn
        self._messages = start.messages
        self._model = start.model
        self._dropped = dropped_turns
        self._prompt_tokens = start.prompt_tokens
        self._options = start.options
        self._answer_parent_digest = start.answer_parent_digest
        self._wants_model_title = start.auto_titled
        self._fallback_title = start.conversation.title
        self._surface = observability.current("surface") or "other"  # for the metrics: page, rest, v1...
        _local_stops.setdefault(start.assistant_turn.pk, threading.Event())  # Stop works from the start

    @property
    def messages(self) -> list[ModelMessage]:
        return list(self._messages)

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        turn_id = self.assistant_turn.pk
        stop = _local_stops.setdefault(turn_id, threading.Event())
        _watch_shared_stops()
        backend = llm.get_backend()
        parts: list[str] = []
        tool_calls: list[ToolCall] = []
        started = time.monotonic()
        first_token_ms = None
        finished: llm.Finished | None = None
        failure: errors.ChatError | None
        fields: dict[str, Any]
        outcome: AnswerDone | AnswerFailed
        metrics.chat_started(surface=self._surface, model=self._model)
        try:
            # Inside the try: a client that leaves even while this first event is being sent cancels the answer.
            yield TurnStored(self.user_turn, self.assistant_turn)
            stream = backend.stream(
                self._messages, model=self._model, max_tokens=settings.CHAT_MAX_ANSWER_TOKENS, options=self._options
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
                        yield AnswerToolCall(item.tool_calls)
                    else:
                        parts.append(item.text)
                        yield AnswerDelta(item.text)
                    if stop.is_set():  # the Stop button, here or (through the cache) in another worker
                        break
            finally:
                await stream.aclose()  # closes the upstream request now, not at garbage collection
        except errors.UpstreamError as exc:
            failure = exc
            fields = {
                **self._outcome_fields(parts, started, first_token_ms),
                "status": Turn.Status.FAILED, "error": exc.message[:300],
                # Cut mid-answer, the upstream did the work: count it (a refusal before any text costs nothing).
                **(self._counted_usage(parts) if parts else {}),
            }
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away: keep what was written, marked cancelled, then let the cancel go on.
            await asyncio.shield(self._store_cancelled(parts, started, first_token_ms))
            self._record(self.assistant_turn, started, first_token_ms)
            raise
        else:
            failure = None
            if finished is None or finished.finish_reason == "cancelled":
                fields = self._cancelled_fields(parts, started, first_token_ms)
            else:
                fields = {
                    **self._outcome_fields(parts, started, first_token_ms),
                    "status": Turn.Status.COMPLETE, "finish_reason": finished.finish_reason[:30],
                    "tool_calls": tool_calls or None,
                    "digest": self._answer_parent_digest and next_digest(self._answer_parent_digest, {
                        "role": Turn.Role.ASSISTANT, "content": "".join(parts), "tool_calls": tool_calls,
                    }),
                    "prompt_tokens": finished.prompt_tokens, "completion_tokens": finished.completion_tokens,
                    "usage_approximate": finished.usage_approximate, "model": finished.model[:100] or self._model,
                }
        finally:
            _local_stops.pop(turn_id, None)
        turn = self.assistant_turn
        try:
            await _store_answer_retrying(turn, self.conversation.owner_id, fields)
        except errors.DatabaseUnavailable as exc:
            # Nothing could be stored: report the answer as failed (the next request fails the stored row).
            failure = exc
            for name, value in {**fields, "status": Turn.Status.FAILED, "error": exc.message}.items():
                setattr(turn, name, value)
        outcome = AnswerFailed(turn, failure) if failure is not None else AnswerDone(turn)
        self.assistant_turn = outcome.assistant_turn
        self._record(turn, started, first_token_ms, failure)
        yield outcome
        completed = isinstance(outcome, AnswerDone) and outcome.assistant_turn.status == Turn.Status.COMPLETE
        if completed and self._wants_model_title:
            title = await self._model_title(outcome.assistant_turn.content)
            if title:
                yield TitleSet(title)

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
            "content": "".join(parts), "latency_ms": int((time.monotonic() - started) * 1000),
            "first_token_ms": first_token_ms, "dropped_turns": self._dropped,
        }

    def _counted_usage(self, parts: list[str]) -> dict[str, Any]:
        """Usage counted here, for an answer whose upstream reported none (cut short)."""
        text = "".join(parts)
        return {
            "prompt_tokens": self._prompt_tokens, "usage_approximate": True,
            "completion_tokens": llm.get_backend().count_tokens(text) if text else 0,
        }

    def _cancelled_fields(self, parts: list[str], started: float, first_token_ms: int | None) -> dict[str, Any]:
        return {
            **self._outcome_fields(parts, started, first_token_ms), **self._counted_usage(parts),
            "status": Turn.Status.CANCELLED, "finish_reason": "cancelled",
        }

    async def _store_cancelled(self, parts: list[str], started: float, first_token_ms: int | None) -> None:
        with contextlib.suppress(errors.DatabaseUnavailable):
            await _store_answer_retrying(
                self.assistant_turn, self.conversation.owner_id, self._cancelled_fields(parts, started, first_token_ms)
            )

    async def _model_title(self, answer: str) -> str:
        """Ask the model for a short title; on any failure keep the first-words title. Never raises."""
        if not settings.CHAT_MODEL_TITLES:
            return ""
        # Its text only: a message with images is a list of parts, whose images are no part of a title.
        first_message = message_text(self._messages[-1])
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
        title = title_from_text(title)
        stored = await _db(_store_title)(self.conversation.pk, self._fallback_title, title)
        return title if stored else ""

    def run(self) -> ChatRun:
        """Run the answer on the answer engine and wait for it to be stored (sync code). Raises on failure."""
        from conversations.answers import engine

        log = engine.start(self)
        log.finished.wait()
        outcome = log.outcome()
        if isinstance(outcome, AnswerFailed):
            raise outcome.error
        return self


def chat_turn_begin(
    *, conversation: Conversation, user: User, content: str | None = None, regenerate: bool = False,
    turn_id: int | None = None, options: dict[str, Any] | None = None, after_turn_id: int | None = None,
    tool_results: list[ToolResult] | None = None, attachment_ids: list[uuid.UUID] | None = None,
) -> ChatRun:
    """Store the user turn (or a new answer version) and return the run that calls the model (sync).

    - `content`: a new message after the current turn (or after `after_turn_id`: a new branch there);
    - `tool_results` instead of `content`: the results ([{"tool_call_id", "content"}]) of the tools that turn's
      answer called, one turn each, then the model's next answer;
    - `attachment_ids`: the user's uploaded, unsent files to send with a new message (checked for the model:
      errors.AttachmentRefused before anything is stored);
    - `content` and `turn_id` (a user message): a new version of that message, then its answer;
    - `regenerate=True`: a new version of the answer `turn_id` (default: the current turn); with `content`
      too, a new version of the message that answer answers (the original edit-and-resend contract).
    - `options`: Chat Completions parameters for this answer (validated by the caller), sent to the model as
      given; errors.OptionRefused if the configured backend cannot honour one.
    Every older version stays, with its usage, feedback and status. Raises ChatError (busy, quota,
    nothing to regenerate or edit) before anything is stored. The caller must own `conversation` (views look it up with
    `Conversation.objects.for_user`). The DB connection is released before returning: the model call
    that follows holds none. The API's streaming views call this in the same worker-thread trip as the
    rest of the request's checks.
    """
    if not regenerate and content is None and not tool_results:
        raise ValueError("content (or tool results) is required to append or edit")
    observability.annotate(conversation_id=str(conversation.pk), user_id=getattr(user, "pk", None))
    if options:
        refused = llm.get_backend().refused_option(options)
        if refused is not None:
            raise errors.OptionRefused(refused[1], param=refused[0])
    files = attachments.attachments_to_send(
        owner=user, ids=attachment_ids or [], model=conversation.model or llm.get_backend().default_model
    )
    try:
        start, dropped = _begin(
            conversation.pk, user, content, regenerate, turn_id, after_turn_id, tool_results, files
        )
    finally:
        release_connection()
    start.options = dict(options or {})
    return ChatRun(start, dropped)


async def chat_turn_start(
    *, conversation: Conversation, user: User, content: str | None = None, regenerate: bool = False,
    turn_id: int | None = None, options: dict[str, Any] | None = None,
) -> ChatRun:
    """`chat_turn_begin` from async code (one worker-thread trip)."""
    return await sync_to_async(chat_turn_begin, thread_sensitive=True)(
        conversation=conversation, user=user, content=content, regenerate=regenerate, turn_id=turn_id,
        options=options,
    )


def chat_turn(
    *, conversation: Conversation, user: User, content: str | None = None, regenerate: bool = False,
    turn_id: int | None = None, options: dict[str, Any] | None = None, after_turn_id: int | None = None,
    tool_results: list[ToolResult] | None = None, attachment_ids: list[uuid.UUID] | None = None,
) -> ChatRun:
    """Sync form of `chat_turn_begin(...)` + `run()`: returns when the answer is stored.

    Raises ChatError before storing (busy, quota) or after (the failed answer is stored first).
    """
    return chat_turn_begin(
        conversation=conversation, user=user, content=content, regenerate=regenerate, turn_id=turn_id,
        options=options, after_turn_id=after_turn_id, tool_results=tool_results, attachment_ids=attachment_ids,
    ).run()
