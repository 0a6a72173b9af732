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

import functools
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from chatsite import observability
from chatsite.prebuilt import per_thread
from conversations import attachments, errors, llm, notifications
from conversations.digests import next_digest, root_digest
from conversations.messages import ModelMessage, StoredMessage, ToolCall, ToolResult, message_text
from conversations.models import Attachment, Conversation, Turn, quoted_column
from conversations.selectors import default_model, history_for_model, project_system_text
from conversations.services.conversations import title_from_text
from conversations.services.quota import Liveness, quota_reserve, tokens_so_far, usage_add
from knowledge.retrieval import TokenRoom, knowledge_section
from knowledge.search import knowledge_bases_linked
from personal.selectors import (
    ASSISTANT_INSTRUCTIONS,
    CUSTOM_INSTRUCTIONS,
    MEMORIES,
    personal_system_sections,
    with_personal_prompt,
)
from teams.policy import Feature, Policy, policy_for

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

INTERRUPTED = errors.AnswerInterrupted.message
# What an answer nobody writes any more is stored with (its error and the error's code).
_INTERRUPTED_FIELDS = {"status": Turn.Status.FAILED, "error": INTERRUPTED, "error_code": errors.AnswerInterrupted.code}


def release_connection() -> None:
    """Give the DB connection back (to the pool on PostgreSQL) before a long wait.

    Inside an atomic block (tests wrap each test in one) there is nothing to release.
    """
    if not connection.in_atomic_block:
        connection.close()


@per_thread
def _locking_query() -> QuerySet[Conversation]:
    """The query that locks a conversation for a turn, built once per thread and cloned by each use (as a view's
    `queryset` is; chatsite.prebuilt): resolving its subqueries costs more CPU than running it. Its rows: the
    conversation, its current turn and its project (not locked: turns are only ever added, never moved), its running
    answer if any, and what the prompt needs of it beside the history (personal.selectors.with_personal_prompt;
    whether it has knowledge bases to search)."""
    running = Turn.objects.filter(conversation_id=OuterRef("pk"), status=Turn.Status.PENDING).order_by()
    return with_personal_prompt(
        Conversation.objects.select_for_update(of=("self",)).select_related("current_turn", "project")
    ).annotate(**{  # declared on Conversation (not columns), so given by name
        "running_id": Subquery(running.values("pk")[:1]),
        "running_since": Subquery(running.values("created_at")[:1]),
        "has_knowledge_bases": ExpressionWrapper(knowledge_bases_linked(), output_field=BooleanField()),
    })


def _claim_conversation(conversation_id: uuid.UUID, alive: Liveness) -> Conversation:
    """Lock the conversation row (PostgreSQL) and refuse if an answer is still being written: one query
    (_locking_query).

    On PostgreSQL the running answer is read in that query's snapshot, taken before the lock is waited for: one
    begun meanwhile by another request is not seen here, and the insert of this one then breaks
    turn_one_running_per_conversation (ConversationBusy, as when it is seen).
    """
    conversation = _locking_query().get(pk=conversation_id)
    running_id, since = conversation.running_id, conversation.running_since
    if running_id is not None and since is not None:  # both or neither: one running answer's
        stale = since < timezone.now() - timedelta(seconds=settings.CHAT_STALE_TURN_SECONDS)
        if not stale and alive([(running_id, since)]):
            raise errors.ConversationBusy()
        # Its worker died, or its answer could not be stored: fail it so the chat can go on.
        Turn.objects.filter(pk=running_id).update(**_INTERRUPTED_FIELDS, completed_at=timezone.now())
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
    policy: Policy | None = None  # what the user may use (teams.policy): which server tools the answer offers
    # Continuing a stopped or cut answer: its text so far, and its usage already counted in the ledger.
    continued_text: str | None = None
    counted_usage: tuple[int, int] = (0, 0)
    knowledge_tool: bool = False  # the answer searches the chat's knowledge bases with knowledge_search (a tool)
    # Why the answer is refused before any model call (the system prompt leaves no room for the message): the
    # answering package stores it as the answer's failure.
    refusal: errors.ChatError | None = None


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
            model = conversation.model or default_model(user)
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


def _begin_regenerate(
    conversation_id: uuid.UUID, user: User, alive: Liveness, answer_id: int | None, model: str | None = None
) -> TurnStart:
    """A new version of an answer, beside the old one (which keeps its text, usage, feedback and status); by
    `model` when given (regenerate with another model: the chat's model stays), else the chat's."""
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _claim_conversation(conversation_id, alive)
            old, question = _answer_to_redo(conversation, answer_id)
            reserved = quota_reserve(user, alive=alive, context_tokens=old.prompt_tokens)
            earlier = _sibling_ids(conversation_id, question.pk)
            model = model or conversation.model or default_model(user)
            assistant_turn = Turn.objects.create(
                conversation=conversation, parent=question, position=old.position, role=Turn.Role.ASSISTANT,
                status=Turn.Status.PENDING, model=model, quota_reserved=reserved, created_at=now,
            )
            _with_versions(assistant_turn, earlier)
            _make_current(conversation, assistant_turn, now, added=1)
    except IntegrityError:
        raise errors.ConversationBusy() from None
    return TurnStart(conversation, None, assistant_turn, model, question.pk, answer_parent_digest=question.digest)


CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it from exactly where it stopped, without repeating any of it "
    "and without any preamble."
)


def _begin_continue(conversation_id: uuid.UUID, user: User, alive: Liveness, answer_id: int) -> TurnStart:
    """Continue an answer that was stopped (cancelled) or cut at its length: the same turn runs again and grows
    (the model gets its text so far and is asked to go on), and its branch is shown."""
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _claim_conversation(conversation_id, alive)
            answer = Turn.objects.filter(
                Q(status=Turn.Status.CANCELLED) | Q(status=Turn.Status.COMPLETE, finish_reason="length"),
                conversation=conversation, pk=answer_id, role=Turn.Role.ASSISTANT, parent__isnull=False,
            ).exclude(content="").first()
            if answer is None:
                raise errors.NothingToContinue()
            reserved = quota_reserve(user, alive=alive, context_tokens=answer.prompt_tokens + answer.completion_tokens)
            # Started again now: liveness, stale sweeps and the usage ledger read a running answer's start.
            Turn.objects.filter(pk=answer.pk).update(
                status=Turn.Status.PENDING, quota_reserved=reserved, completed_at=None, error="", error_code="",
                created_at=now
            )
            answer.status, answer.quota_reserved, answer.created_at = Turn.Status.PENDING, reserved, now
            conversation.current_turn = answer
            conversation.updated_at = now
            conversation.save(update_fields=["current_turn", "updated_at"])
    except IntegrityError:
        raise errors.ConversationBusy() from None
    assert answer.parent_id is not None
    parent_digest = Turn.objects.filter(pk=answer.parent_id).values_list("digest", flat=True).first()
    model = answer.model or conversation.model or llm.get_backend().default_model
    siblings = _sibling_ids(conversation_id, answer.parent_id)
    index = siblings.index(answer.pk)
    answer.sibling_count, answer.sibling_index = len(siblings), index + 1
    answer.previous_sibling_id = siblings[index - 1] if index else None
    answer.next_sibling_id = siblings[index + 1] if index + 1 < len(siblings) else None
    return TurnStart(
        conversation, None, answer, model,
        answer.parent_id, answer_parent_digest=parent_digest, continued_text=answer.content,
        counted_usage=(answer.prompt_tokens, answer.completion_tokens),
    )


def _begin_edit(
    conversation_id: uuid.UUID, user: User, alive: Liveness, message_id: int | None, answer_id: int | None,
    content: str, model: str | None = None,
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
            model = model or conversation.model or default_model(user)
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
    files: list[Attachment] | None = None, model: str | None = None, continue_turn_id: int | None = None,
) -> TurnStart:
    if continue_turn_id is not None:
        return _begin_continue(conversation_id, user, alive, continue_turn_id)
    if regenerate and content is None:
        return _begin_regenerate(conversation_id, user, alive, turn_id, model)
    if regenerate or turn_id is not None:
        if content is None:  # tool results answer the current turn's tool calls: they never edit a message
            raise ValueError("content is required to edit a message")
        message_id, answer_id = (None, turn_id) if regenerate else (turn_id, None)
        return _begin_edit(conversation_id, user, alive, message_id, answer_id, content, model)
    inputs: list[StoredMessage] = (
        [{"role": Turn.Role.USER, "content": content}] if content is not None
        else [{"role": Turn.Role.TOOL, **result} for result in tool_results or ()]
    )
    return _begin_append(conversation_id, user, alive, inputs, after_turn_id, files)


# What each part of the system prompt is, as a refusal of a prompt too long names it (_system_prompt_too_long).
CHAT_PROMPT, PROJECT_INSTRUCTIONS, MODEL_NOTE, MESSAGE = "chat_prompt", "project_instructions", "model_note", "message"
PART_NAMES = {
    CHAT_PROMPT: _("this chat's system prompt"),
    PROJECT_INSTRUCTIONS: _("the project's instructions"),
    MODEL_NOTE: _("the site's note for this model"),
    ASSISTANT_INSTRUCTIONS: _("the assistant's instructions"),
    CUSTOM_INSTRUCTIONS: _("your custom instructions"),
    MEMORIES: _("your memories"),
    MESSAGE: _("the message"),
}


def _system_prompt_too_long(
    parts: list[tuple[str, str]], newest: ModelMessage, backend: llm.Backend, budget: int
) -> errors.SystemPromptTooLong:
    """The refusal of a system prompt that leaves no room for the message: its size, the budget, and its three
    largest parts (the message among them), each with its size, in the language of the request; short enough for
    the answer's stored error."""
    sizes: dict[str, int] = {}
    for kind, text in parts:
        sizes[kind] = sizes.get(kind, 0) + backend.count_tokens(text)
    sizes[MESSAGE] = backend.message_tokens(newest)
    largest = sorted(sizes.items(), key=lambda item: -item[1])
    return errors.SystemPromptTooLong(
        gettext(
            "This chat's instructions are too long for the model's context: about %(used)s tokens with the message, "
            "where %(budget)s fit. The largest: %(parts)s."
        ) % {
            "used": sum(sizes.values()), "budget": max(budget, 0),
            "parts": ", ".join(
                gettext("%(part)s (about %(tokens)s tokens)") % {"part": PART_NAMES[kind], "tokens": tokens}
                for kind, tokens in largest[:3] if tokens
            ),
        }
    )


def _prepare(start: TurnStart, *, tools_allowed: bool) -> TurnStart:
    """The prompt of the answer `start` began: the system prompt, then the history fitted to the model's context.

    What the system prompt holds cannot be trimmed (instructions; the memories are kept within
    CHAT_MEMORY_PROMPT_CHARS), except the knowledge passages, which get what room is left (the best first, a line
    saying how many were left out). A system prompt that leaves no room for the newest message is refused before any
    model call or search: `start.refusal`, which the answering package stores as the answer's failure.
    """
    conversation = start.conversation
    backend = llm.get_backend()
    # In this order: the chat's own prompt (or the site's), its project's instructions, what this backend's models
    # need told, the owner's personalization.
    parts = [(CHAT_PROMPT, conversation.system_prompt or settings.CHAT_DEFAULT_SYSTEM_PROMPT)]
    project_text = project_system_text(conversation)
    if project_text:
        parts.append((PROJECT_INSTRUCTIONS, project_text))
    if backend.system_note:
        parts.append((MODEL_NOTE, backend.system_note))
    parts += personal_system_sections(conversation=conversation)
    system_prompt = "\n\n".join(text for _, text in parts)
    history = history_for_model(
        conversation, last_turn_id=start.question_id, vision=attachments.model_reads_images(start.model)
    )
    if start.continued_text is not None:  # the answer so far, then the request to go on
        history += [
            {"role": "assistant", "content": start.continued_text}, {"role": "user", "content": CONTINUE_PROMPT},
        ]
    budget = backend.context_tokens(start.model) - settings.CHAT_MAX_ANSWER_TOKENS
    room = (
        budget - backend.message_tokens({"role": "system", "content": system_prompt})
        - backend.message_tokens(history[-1])
    )
    if room < 0:
        start.refusal = _system_prompt_too_long(parts, history[-1], backend, budget)
    # A continued answer keeps the citations of its first run. Read with the lock: a chat without bases costs no query
    # here (and has no knowledge section, step or tool).
    elif start.continued_text is None and conversation.has_knowledge_bases:
        question = next((message_text(m) for m in reversed(history) if m["role"] == Turn.Role.USER), "")
        knowledge_text, start.knowledge_tool = knowledge_section(
            conversation=conversation, question=question, answer_turn=start.assistant_turn,
            tools_offered=tools_allowed and start.model in settings.CHAT_TOOL_MODELS,
            room=TokenRoom(tokens=room - 1, count=backend.count_tokens),  # a token for the blank line before it
        )
        if knowledge_text:
            system_prompt = f"{system_prompt}\n\n{knowledge_text}"
    start.messages, start.dropped_turns, start.prompt_tokens = _fit_to_context(
        [{"role": "system", "content": system_prompt}, *history], backend, start.model
    )
    return start


def turn_begin(
    *, conversation: Conversation, user: User, alive: Liveness, content: str | None = None,
    regenerate: bool = False, turn_id: int | None = None, options: dict[str, Any] | None = None,
    after_turn_id: int | None = None, tool_results: list[ToolResult] | None = None,
    attachment_ids: list[uuid.UUID] | None = None, model: str | None = None, continue_turn_id: int | None = None,
) -> TurnStart:
    """Store the user turn (or a new answer version) and a pending answer; return what the answer needs.

    - `content`: a new message after the current turn (or after `after_turn_id`: a new branch there);
    - `tool_results` instead of `content`: the results ([{"tool_call_id", "content"}]) of the tools that turn's
      answer called, one turn each, then the model's next answer;
    - `attachment_ids`: the user's uploaded, unsent files to send with a new message (checked for the model:
      errors.AttachmentRefused before anything is stored);
    - `content` and `turn_id` (a user message): a new version of that message, then its answer;
    - `regenerate=True`: a new version of the answer `turn_id` (default: the current turn); with `content`
      too, a new version of the message that answer answers (the original edit-and-resend contract); with
      `model` (an offered model, checked by the caller), the new version is written by that model;
    - `continue_turn_id`: that answer, stopped or cut at its length, runs again and grows (the same turn: its
      text so far stays first); errors.NothingToContinue for any other turn.
    - `options`: Chat Completions parameters for this answer (validated by the caller), sent to the model as
      given; errors.OptionRefused if the configured backend cannot honour one.
    - `alive`: the answering package's liveness check (a running answer makes the conversation busy and holds
      quota only while it is alive).
    Every older version stays, with its usage, feedback and status. Raises ChatError (busy, quota,
    nothing to regenerate or edit) before anything is stored. The caller must own `conversation` (views look
    it up with `Conversation.objects.for_user`). The DB connection is released before returning: the model
    call that follows holds none.
    """
    if not regenerate and content is None and not tool_results and continue_turn_id is None:
        raise ValueError("content (or tool results) is required to append or edit")
    observability.annotate(conversation_id=str(conversation.pk), user_id=getattr(user, "pk", None))
    policy = policy_for(user)
    # The model that writes this answer: `model` (regenerate with another model), else the chat's.
    writer = model or conversation.model or default_model(user)
    if not writer or not policy.allows_model(writer):  # a model the user's groups do not allow is an unknown one
        raise errors.ModelNotFound(writer)
    if options:
        refused = llm.get_backend().refused_option(options)
        if refused is not None:
            raise errors.OptionRefused(refused[1], param=refused[0])
    files = attachments.attachments_to_send(
        owner=user, ids=attachment_ids or [], model=writer
    )
    try:
        start = _prepare(_begin(
            conversation.pk, user, alive, content, regenerate, turn_id, after_turn_id, tool_results, files, model,
            continue_turn_id,
        ), tools_allowed=policy.allows(Feature.SERVER_TOOLS) and "tools" not in (options or {}))
        # Before the connection goes back: on_commit (outside a transaction) checks autocommit, which would take a
        # pooled connection again and keep it through the whole answer.
        notifications.answer_started(start.conversation, start.assistant_turn.pk)
    finally:
        release_connection()
    start.options = dict(options or {})
    start.policy = policy
    return start


def answer_store(
    *, turn: Turn, owner_id: int, fields: dict[str, Any], counted: tuple[int, int] = (0, 0)
) -> Turn:
    """Store an answer's outcome on `turn`; if the database is away, raise DatabaseUnavailable.

    One transaction stores the answer and adds its tokens to the owner's usage ledger (on the day the answer
    started, the day its quota was checked), less `counted` (prompt, completion: a continued answer's earlier
    part, already in the ledger); then the conversation's updated_at (whose failure is only logged: the
    answer itself is stored).
    """
    fields = {**fields, "completed_at": timezone.now(), "quota_reserved": None}
    try:
        with transaction.atomic():
            Turn.objects.filter(pk=turn.pk).update(**fields)
            usage_add(
                owner_id, timezone.localdate(turn.created_at),
                prompt_tokens=max(fields.get("prompt_tokens", counted[0]) - counted[0], 0),
                completion_tokens=max(fields.get("completion_tokens", counted[1]) - counted[1], 0),
            )
    except DatabaseError as exc:
        logger.warning("could not store answer %s: database unavailable (%s)", turn.pk, type(exc).__name__)
        raise errors.DatabaseUnavailable() from None
    try:  # the answer is stored: a failure here only leaves the chat's place in the history list (and its total)
        # Storing an answer changes the chat's tokens only: its feedback totals are kept by the feedback writes.
        _chat_total_store(turn.conversation_id, fields["completed_at"])
    except DatabaseError:
        logger.warning("stored answer %s, but not its conversation's updated_at: database unavailable", turn.pk)
    for name, value in fields.items():
        setattr(turn, name, value)
    return turn


@functools.cache
def _chat_total_sql() -> str:
    """The chat's updated_at and its total_tokens, recomputed as models.review_totals("total_tokens") defines it
    (the sum of its turns' tokens), in one statement written out with the models' names. Through the ORM the same
    UPDATE (a Coalesce of a grouped Sum in a Subquery of OuterRef) costs about 1.5 ms of CPU to build and compile
    and 0.2 ms to run, on every stored answer (bench/TURN.md); test_services checks that both give the same total."""
    quote = connection.ops.quote_name
    updated_at, total_tokens, pk = (quoted_column(Conversation, name) for name in ("updated_at", "total_tokens", "id"))
    prompt, completion, of_chat = (
        quoted_column(Turn, name) for name in ("prompt_tokens", "completion_tokens", "conversation")
    )
    total = f"SELECT SUM({prompt} + {completion}) FROM {quote(Turn._meta.db_table)} WHERE {of_chat} = %s"  # noqa: S608
    # The models' names; every value is a parameter.
    set_both = f"{updated_at} = %s, {total_tokens} = COALESCE(({total}), 0)"
    return f"UPDATE {quote(Conversation._meta.db_table)} SET {set_both} WHERE {pk} = %s"  # noqa: S608


def _chat_total_store(conversation_id: uuid.UUID, updated_at: datetime) -> None:
    chat = Conversation._meta
    pk = chat.pk.get_db_prep_value(conversation_id, connection)
    at = chat.get_field("updated_at").get_db_prep_value(updated_at, connection)
    with connection.cursor() as cursor:
        cursor.execute(_chat_total_sql(), [at, pk, pk])


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
            turn_count=F("turn_count") + 1 + len(results), updated_at=now,
            total_tokens=F("total_tokens") + usage["prompt_tokens"] + usage["completion_tokens"],
        )
        usage_add(owner_id, timezone.localdate(answer.created_at), prompt_tokens=usage["prompt_tokens"],
                  completion_tokens=usage["completion_tokens"])
    answer.parent, answer.position = parent, parent.position + 1
    _with_versions(answer, [])
    return step, stored


def answer_fail_interrupted(*, turn_ids: list[int]) -> int:
    """Fail these pending answers: nobody produces them any more (their worker died). Returns how many."""
    return Turn.objects.filter(pk__in=turn_ids, status=Turn.Status.PENDING).update(
        **_INTERRUPTED_FIELDS, completed_at=timezone.now()
    )


def turns_fail_stale(*, older_than_seconds: int | None = None) -> int:
    """Mark answers abandoned by a dead worker as failed; returns how many."""
    seconds = settings.CHAT_STALE_TURN_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return Turn.objects.filter(status=Turn.Status.PENDING, created_at__lt=cutoff).update(
        **_INTERRUPTED_FIELDS, completed_at=timezone.now()
    )


def title_store(*, conversation_id: uuid.UUID, fallback: str, title: str) -> bool:
    """Set a title the model wrote, only over the automatic one: never overwrite a name the user chose meanwhile."""
    if not Conversation.objects.filter(pk=conversation_id, title=fallback).update(title=title):
        return False
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is not None:
        notifications.conversation_changed(conversation)
    return True
