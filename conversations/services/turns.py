"""The turn's short write transactions: begin (append, regenerate, edit), a tool step, and the stored answer.

The answering package (conversations.answering) owns an answer's life and calls these; they never call it.
Where they must know whether an answer is still being produced (the conversation lock, quota admission),
they are handed its liveness check (`alive`).

A turn is three steps, and only the middle one is slow:
1. a short transaction stores the user turn and a `pending` assistant turn (row lock on PostgreSQL,
   IMMEDIATE transaction on SQLite, the unique (conversation, position) constraint as final guard);
2. the model is called with no transaction open and no DB connection held (it is released after
   step 1 and borrowed again for step 3);
3. a short transaction stores the answer, usage, finish reason, latency and status.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from chatsite import observability
from conversations import attachments, errors, llm
from conversations.digests import next_digest, root_digest
from conversations.messages import ModelMessage, StoredMessage, ToolCall, ToolResult
from conversations.models import Attachment, Conversation, Turn
from conversations.selectors import history_for_model
from conversations.services.conversations import title_from_text
from conversations.services.quota import Liveness, quota_reserve, tokens_so_far, usage_add
from personal.selectors import personal_system_text

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

INTERRUPTED = "The answer was interrupted."


def release_connection() -> None:
    """Give the DB connection back (to the pool on PostgreSQL) before a long wait.

    Inside an atomic block (tests wrap each test in one) there is nothing to release.
    """
    if not connection.in_atomic_block:
        connection.close()


def _claim_conversation(conversation_id: uuid.UUID, alive: Liveness) -> Conversation:
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
        stale = running.created_at < timezone.now() - timedelta(seconds=settings.CHAT_STALE_TURN_SECONDS)
        if not stale and alive([(running.pk, running.created_at)]):
            raise errors.ConversationBusy()
        # Its worker died, or its answer could not be stored: fail it so the chat can go on.
        Turn.objects.filter(pk=running.pk).update(
            status=Turn.Status.FAILED, error=INTERRUPTED, completed_at=timezone.now()
        )
    return conversation


@dataclass
class TurnStart:
    """What begin stored, and what the answer needs: the prompt, fitted to the model's context."""

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
    dropped_turns: int = 0  # older turns left out of the prompt to fit the context


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
    conversation_id: uuid.UUID, user: User, alive: Liveness, inputs: list[StoredMessage],
    after_turn_id: int | None = None, files: list[Attachment] | None = None,
) -> TurnStart:
    """A new message (or tool results) after the turn shown last (the current turn), or after `after_turn_id`
    (a new branch when that is not the current turn)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _claim_conversation(conversation_id, alive)
            parent = conversation.current_turn
            if after_turn_id is not None and after_turn_id != conversation.current_turn_id:
                parent = Turn.objects.filter(conversation=conversation, pk=after_turn_id).first()
                if parent is None:
                    raise errors.NothingToEdit()
            content = "".join(message["content"] for message in inputs)
            if files:  # the digest of a message with files covers them (conversations.digests)
                inputs[0]["attachments"] = [file.sha256 for file in files]
            reserved = quota_reserve(
                user, alive=alive, context_tokens=tokens_so_far(parent), input_tokens=_input_tokens(content, files)
            )
            model = conversation.model or llm.get_backend().default_model
            user_turn, assistant_turn, added = _create_turns(conversation, parent, inputs, now, model, reserved)
            attachments.bind(files or [], user_turn)
            user_turn.attachment_list = files or []
            _with_versions(user_turn, [])
            auto_titled = not conversation.title and inputs[0]["role"] == Turn.Role.USER
            if auto_titled:  # a message of files only is named after them
                conversation.title = title_from_text(content.strip() or ", ".join(file.name for file in files or ()))
            _make_current(conversation, assistant_turn, now, added=added, fields=("title",) if auto_titled else ())
    except IntegrityError:
        # Another answer started first (turn_one_running_per_conversation is the final guard).
        raise errors.ConversationBusy() from None
    return TurnStart(
        conversation, user_turn, assistant_turn, model, user_turn.pk, auto_titled=auto_titled,
        answer_parent_digest=user_turn.digest,
    )


def _input_tokens(content: str, files: list[Attachment] | None = None) -> int:
    """What a new message will cost as a prompt: its text, its documents' text and its images (quota admission
    counts it before anything is stored)."""
    tokens = len(content) // 3
    for file in files or ():
        tokens += llm.IMAGE_TOKENS if file.kind == Attachment.Kind.IMAGE else llm.approximate_tokens(file.text)
    return tokens


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
    return answer, _question_of(answer)


def _parent_of(turn: Turn) -> Turn | None:
    parent_id = turn.parent_id
    return Turn.objects.select_related("parent").filter(pk=parent_id).first() if parent_id is not None else None


def _question_of(answer: Turn) -> Turn:
    """The input an answer answers: its parent, or, for an answer whose server tool steps came before it (the
    steps share the answer's start time: answer_step_store), the input before its first step, so that a new
    version redoes the whole answer, tools included."""
    question = answer.parent
    assert question is not None
    while question.role == Turn.Role.TOOL:
        step = _parent_of(question)
        while step is not None and step.role == Turn.Role.TOOL:
            step = _parent_of(step)
        if step is None or step.created_at != answer.created_at or step.parent is None:
            break
        question = step.parent
    return question


def _begin_regenerate(conversation_id: uuid.UUID, user: User, alive: Liveness, answer_id: int | None) -> TurnStart:
    """A new version of an answer, beside the old one (which keeps its text, usage, feedback and status)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _claim_conversation(conversation_id, alive)
            old, question = _answer_to_redo(conversation, answer_id)
            reserved = quota_reserve(user, alive=alive, context_tokens=old.prompt_tokens)
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
    return TurnStart(conversation, None, assistant_turn, model, question.pk, answer_parent_digest=question.digest)


def _begin_edit(
    conversation_id: uuid.UUID, user: User, alive: Liveness, message_id: int | None, answer_id: int | None,
    content: str,
) -> TurnStart:
    """A new version of a user message (`message_id`, or the one `answer_id` answers), then its answer.

    Everything below the old message stays on its own branch.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _claim_conversation(conversation_id, alive)
            if message_id is None:
                message_id = _answer_to_redo(conversation, answer_id)[1].pk
            old = (
                Turn.objects.filter(conversation=conversation, pk=message_id, role=Turn.Role.USER)
                .select_related("parent").first()
            )
            if old is None:
                raise errors.NothingToEdit()
            reserved = quota_reserve(
                user, alive=alive, context_tokens=tokens_so_far(old.parent), input_tokens=_input_tokens(content)
            )
            earlier = _sibling_ids(conversation_id, old.parent_id)
            model = conversation.model or llm.get_backend().default_model
            user_turn, assistant_turn, _ = _create_turns(
                conversation, old.parent, [{"role": Turn.Role.USER, "content": content}], now, model, reserved
            )
            _with_versions(user_turn, earlier)
            _make_current(conversation, assistant_turn, now, added=2)
    except IntegrityError:
        raise errors.ConversationBusy() from None
    return TurnStart(
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
    conversation_id: uuid.UUID, user: User, alive: Liveness, content: str | None, regenerate: bool,
    turn_id: int | None, after_turn_id: int | None, tool_results: list[ToolResult] | None,
    files: list[Attachment] | None = None,
) -> TurnStart:
    if regenerate and content is None:
        return _begin_regenerate(conversation_id, user, alive, turn_id)
    if regenerate or turn_id is not None:
        if content is None:  # tool results answer the current turn's tool calls: they never edit a message
            raise ValueError("content is required to edit a message")
        message_id, answer_id = (None, turn_id) if regenerate else (turn_id, None)
        return _begin_edit(conversation_id, user, alive, message_id, answer_id, content)
    inputs: list[StoredMessage] = (
        [{"role": Turn.Role.USER, "content": content}] if content is not None
        else [{"role": Turn.Role.TOOL, **result} for result in tool_results or ()]
    )
    return _begin_append(conversation_id, user, alive, inputs, after_turn_id, files)


def _prepare(start: TurnStart) -> TurnStart:
    conversation = start.conversation
    system_prompt = conversation.system_prompt or settings.CHAT_DEFAULT_SYSTEM_PROMPT
    personal_text = personal_system_text(user_id=conversation.owner_id, conversation=conversation)
    if personal_text:
        system_prompt = f"{system_prompt}\n\n{personal_text}"
    history = history_for_model(
        conversation, last_turn_id=start.question_id, vision=attachments.model_reads_images(start.model)
    )
    backend = llm.get_backend()
    start.messages, start.dropped_turns, start.prompt_tokens = _fit_to_context(
        [{"role": "system", "content": system_prompt}, *history], backend, start.model
    )
    return start


def turn_begin(
    *, conversation: Conversation, user: User, alive: Liveness, content: str | None = None,
    regenerate: bool = False, turn_id: int | None = None, options: dict[str, Any] | None = None,
    after_turn_id: int | None = None, tool_results: list[ToolResult] | None = None,
    attachment_ids: list[uuid.UUID] | None = None,
) -> TurnStart:
    """Store the user turn (or a new answer version) and a pending answer; return what the answer needs.

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
    - `alive`: the answering package's liveness check (a running answer makes the conversation busy and holds
      quota only while it is alive).
    Every older version stays, with its usage, feedback and status. Raises ChatError (busy, quota,
    nothing to regenerate or edit) before anything is stored. The caller must own `conversation` (views look
    it up with `Conversation.objects.for_user`). The DB connection is released before returning: the model
    call that follows holds none.
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
        start = _prepare(_begin(
            conversation.pk, user, alive, content, regenerate, turn_id, after_turn_id, tool_results, files
        ))
    finally:
        release_connection()
    start.options = dict(options or {})
    return start


def answer_store(*, turn: Turn, owner_id: int, fields: dict[str, Any]) -> Turn:
    """Store an answer's outcome on `turn`; if the database is away, raise DatabaseUnavailable.

    One transaction stores the answer and adds its tokens to the owner's usage ledger (on the day the answer
    started, the day its quota was checked); then the conversation's updated_at (whose failure is only
    logged: the answer itself is stored).
    """
    fields = {**fields, "completed_at": timezone.now(), "quota_reserved": None}
    try:
        with transaction.atomic():
            Turn.objects.filter(pk=turn.pk).update(**fields)
            usage_add(
                owner_id, timezone.localdate(turn.created_at),
                prompt_tokens=fields.get("prompt_tokens", 0), completion_tokens=fields.get("completion_tokens", 0),
            )
    except DatabaseError as exc:
        logger.warning("could not store answer %s: database unavailable (%s)", turn.pk, type(exc).__name__)
        raise errors.DatabaseUnavailable() from None
    try:  # the answer is stored: a failure here only leaves the chat's place in the history list
        Conversation.objects.filter(pk=turn.conversation_id).update(updated_at=fields["completed_at"])
    except DatabaseError:
        logger.warning("stored answer %s, but not its conversation's updated_at: database unavailable", turn.pk)
    for name, value in fields.items():
        setattr(turn, name, value)
    return turn


def answer_step_store(
    *, answer: Turn, owner_id: int, content: str, tool_calls: list[ToolCall], results: list[tuple[str, str, int]],
    usage: dict[str, Any], model: str, parent_digest: str | None,
) -> tuple[Turn, list[Turn]]:
    """One round of the tool loop, stored before the pending `answer`: the model's step (an assistant turn with
    its tool calls and this round's usage), then one tool turn per result ((tool_call_id, content, milliseconds
    it took)); the pending answer moves below them (its id, followers and stop signal stay). Returns the step
    and the results."""
    now = timezone.now()
    with transaction.atomic():
        digest = parent_digest and next_digest(
            parent_digest, {"role": Turn.Role.ASSISTANT, "content": content, "tool_calls": tool_calls}
        )
        step = Turn.objects.create(
            conversation_id=answer.conversation_id, parent_id=answer.parent_id, position=answer.position,
            role=Turn.Role.ASSISTANT, status=Turn.Status.COMPLETE, content=content, tool_calls=tool_calls,
            finish_reason="tool_calls", model=model, digest=digest or None, created_at=answer.created_at,
            completed_at=now, **usage,
        )
        parent, stored = step, []
        for tool_call_id, result, milliseconds in results:
            digest = digest and next_digest(
                digest, {"role": Turn.Role.TOOL, "content": result, "tool_call_id": tool_call_id}
            )
            parent = Turn.objects.create(
                conversation_id=answer.conversation_id, parent=parent, position=parent.position + 1,
                role=Turn.Role.TOOL, content=result, tool_call_id=tool_call_id, digest=digest or None,
                latency_ms=milliseconds, created_at=now, completed_at=now,
            )
            stored.append(parent)
        Turn.objects.filter(pk=answer.pk).update(parent=parent, position=parent.position + 1)
        Conversation.objects.filter(pk=answer.conversation_id).update(
            turn_count=F("turn_count") + 1 + len(results), updated_at=now
        )
        usage_add(owner_id, timezone.localdate(answer.created_at), prompt_tokens=usage["prompt_tokens"],
                  completion_tokens=usage["completion_tokens"])
    answer.parent, answer.position = parent, parent.position + 1
    _with_versions(answer, [])
    return step, stored


def answer_fail_interrupted(*, turn_ids: list[int]) -> int:
    """Fail these pending answers: nobody produces them any more (their worker died). Returns how many."""
    return Turn.objects.filter(pk__in=turn_ids, status=Turn.Status.PENDING).update(
        status=Turn.Status.FAILED, error=INTERRUPTED, completed_at=timezone.now()
    )


def turns_fail_stale(*, older_than_seconds: int | None = None) -> int:
    """Mark answers abandoned by a dead worker as failed; returns how many."""
    seconds = settings.CHAT_STALE_TURN_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return Turn.objects.filter(status=Turn.Status.PENDING, created_at__lt=cutoff).update(
        status=Turn.Status.FAILED, error=INTERRUPTED, completed_at=timezone.now()
    )


def title_store(*, conversation_id: uuid.UUID, fallback: str, title: str) -> bool:
    """Set a title the model wrote, only over the automatic one: never overwrite a name the user chose meanwhile."""
    return bool(Conversation.objects.filter(pk=conversation_id, title=fallback).update(title=title))
