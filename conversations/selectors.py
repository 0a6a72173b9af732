"""Reads: conversations for a user, the history sent to the model, usage."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, overload

from django.db import connection
from django.db.models import Exists, OuterRef, Prefetch, QuerySet, prefetch_related_objects
from django.utils import timezone

from conversations.digests import history_digest
from conversations.messages import ModelMessage, StoredMessage, ToolCall
from conversations.models import Attachment, Conversation, DailyUsage, Project, ProjectQuerySet, Turn
from conversations.search import conversations_matching
from teams.policy import policy_for

if TYPE_CHECKING:
    import uuid

    from django.contrib.auth.models import AnonymousUser

    from accounts.models import ApiKey, User


def conversation_list(*, user: User, archived: bool = False, search: str = "") -> QuerySet[Conversation]:
    """The user's conversations, newest activity first; a search matches titles, message text and the text of
    attached files (conversations.search.SOURCES). Temporary chats are never listed (on the page or through the API).

    Each carries `is_running`: an answer is being written in it (the history list marks it). A search reads the
    texts through their indexes, and a page stops once it is full.
    """
    running = Turn.objects.filter(conversation=OuterRef("pk"), status=Turn.Status.PENDING)
    conversations = (
        Conversation.objects.for_user(user).filter(archived=archived, delete_after__isnull=True)
        .annotate(is_running=Exists(running))
    )
    search = search.strip()
    if search:
        conversations = conversations.filter(conversations_matching(search))
    return conversations.order_by("-updated_at")


def project_get(*, user: User, project_id: int, projects: ProjectQuerySet | None = None) -> Project:
    """The user's project or Project.DoesNotExist (a foreign id is 'not found', never 'forbidden'). A caller wanting
    more on it passes `projects` (e.g. Project.objects.with_chat_count()); ownership is added to the query here."""
    return (Project.objects.all() if projects is None else projects).for_user(user).get(pk=project_id)


def project_for_conversation(conversation: Conversation) -> Project | None:
    """The project a chat lives in, if any (one query, only when it is in one). Whatever a project brings to its chats
    (its instructions; its knowledge bases) is reached from here."""
    if conversation.project_id is None:
        return None
    return Project.objects.filter(pk=conversation.project_id, owner_id=conversation.owner_id).first()


def project_system_text(conversation: Conversation) -> str:
    """What a chat's project adds to its system prompt (after the chat's own, before the owner's personalization):
    the project's instructions. Empty outside a project or when it has none. No query when the chat was read with
    its project (a turn's lock query: services.turns), else one, only when it is in one."""
    project = conversation.project if conversation.project_id is not None else None
    if project is None or project.owner_id != conversation.owner_id or not project.instructions.strip():
        return ""
    return f"Instructions for the project \"{project.name}\" this chat belongs to:\n{project.instructions.strip()}"


def conversation_get(*, user: User, conversation_id: uuid.UUID | str) -> Conversation:
    """The user's conversation or Conversation.DoesNotExist (a foreign id is 'not found', never 'forbidden')."""
    return Conversation.objects.for_user(user).get(pk=conversation_id)


# --- Versions: turns form a tree; the conversation's current turn is the leaf of the branch shown -----------

# Sibling columns for a turn `t`: how many versions share its parent, its 1-based place among them (by id,
# i.e. creation order) and its neighbours' ids. Each is an index range on turn_siblings_idx
# (conversation, parent, id); first messages (no parent) are versions of each other.


def _sibling_column(aggregate: str, condition: str, name: str) -> str:
    # Two index-range subqueries, one per case: an OR across them would scan the whole conversation.
    return f"""CASE WHEN t.parent_id IS NULL
        THEN (SELECT {aggregate} FROM conversations_turn s
              WHERE s.conversation_id = t.conversation_id AND s.parent_id IS NULL {condition})
        ELSE (SELECT {aggregate} FROM conversations_turn s
              WHERE s.conversation_id = t.conversation_id AND s.parent_id = t.parent_id {condition})
        END AS {name}"""


_SIBLING_COLUMNS = ",\n".join([
    _sibling_column("COUNT(*)", "", "sibling_count"),
    _sibling_column("COUNT(*)", "AND s.id <= t.id", "sibling_index"),
    _sibling_column("MAX(s.id)", "AND s.id < t.id", "previous_sibling_id"),
    _sibling_column("MIN(s.id)", "AND s.id > t.id", "next_sibling_id"),
])

# The path from a turn up to its first message: one recursive query, whatever the depth.
_PATH_CTE = """
    WITH RECURSIVE path (id) AS (
        SELECT id FROM conversations_turn WHERE id = %s AND conversation_id = %s
        UNION ALL
        SELECT t.parent_id FROM conversations_turn t JOIN path ON t.id = path.id WHERE t.parent_id IS NOT NULL
    )"""


def _conversation_param(conversation: Conversation) -> Any:
    # Raw SQL gets the id as the database stores it (a UUID on PostgreSQL, 32 hex digits on SQLite).
    return Conversation._meta.pk.get_db_prep_value(conversation.pk, connection)


# The newest `limit` turns of the path above a position: the walk up from the leaf stops at the lowest one wanted
# (`floor`, computed from the leaf's own position when no `before` is given), so a page of a 5,000-turn branch
# reads its page, not the branch.
_PAGE_CTE = """
    WITH RECURSIVE path (id, parent_id, position, floor) AS (
        SELECT id, parent_id, position, COALESCE(%s, position + 1) - %s FROM conversations_turn
        WHERE id = %s AND conversation_id = %s
        UNION ALL
        SELECT t.id, t.parent_id, t.position, path.floor FROM conversations_turn t JOIN path ON t.id = path.parent_id
        WHERE path.position > path.floor
    )"""


def turn_path(
    conversation: Conversation, *, leaf_id: int | None = None, before_position: int | None = None,
    limit: int | None = None,
) -> list[Turn]:
    """The thread shown: the turns from the first message down to `leaf_id` (default: the current turn).

    Oldest first; with `limit`, the newest `limit` of them (before `before_position`, for "show earlier"), and only
    those are read. Each turn carries its versions' sibling_count, sibling_index, previous_sibling_id and
    next_sibling_id, and its feedback. Two queries (the path, the feedback), whatever the depth and the number of
    versions.
    """
    leaf_id = conversation.current_turn_id if leaf_id is None else leaf_id
    if leaf_id is None:
        return []
    # Without a limit the floor is below every position (the walk reaches the first message).
    span = limit if limit is not None else 2**31
    sql = f"""{_PAGE_CTE}
        SELECT t.*, {_SIBLING_COLUMNS}
        FROM conversations_turn t JOIN path ON t.id = path.id"""
    params: list[Any] = [before_position, span, leaf_id, _conversation_param(conversation)]
    if before_position is not None:
        sql += " WHERE t.position < %s"
        params.append(before_position)
    sql += " ORDER BY t.position DESC"
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    turns = list(Turn.objects.raw(sql, params))[::-1]
    _with_related(turns, conversation)
    return turns


class TurnPathPages(Sequence[Turn]):
    """The branch down to `leaf_id` as a sequence for a paginator: its length is the leaf's depth (positions run
    1..depth along a branch) and a slice reads only its own turns (turn_path), so page N of `turns/` costs a
    page, not the branch."""

    def __init__(self, conversation: Conversation, *, leaf_id: int | None, depth: int):
        self.conversation, self.leaf_id, self.depth = conversation, leaf_id, depth

    def __len__(self) -> int:
        return self.depth

    @overload
    def __getitem__(self, index: int) -> Turn: ...

    @overload
    def __getitem__(self, index: slice) -> list[Turn]: ...

    def __getitem__(self, index: int | slice) -> Turn | list[Turn]:
        if isinstance(index, int):
            turns = self[index : index + 1] if index >= 0 else self[self.depth + index : self.depth + index + 1]
            if not turns:
                raise IndexError(index)
            return turns[0]
        start, stop, _step = index.indices(self.depth)
        if stop <= start:
            return []
        # Positions start+1..stop: the `stop - start` newest turns above position stop + 1.
        return turn_path(self.conversation, leaf_id=self.leaf_id, before_position=stop + 1, limit=stop - start)


def turn_path_pages(conversation: Conversation, *, leaf_id: int | None = None) -> TurnPathPages:
    """The branch down to `leaf_id` (default: the current turn), to be paged: one query for the leaf's depth."""
    leaf_id = conversation.current_turn_id if leaf_id is None else leaf_id
    depth = 0
    if leaf_id is not None:
        leaf = Turn.objects.filter(pk=leaf_id, conversation=conversation).values_list("position", flat=True)
        depth = leaf.first() or 0
    return TurnPathPages(conversation, leaf_id=leaf_id, depth=depth)


def turn_with_versions(conversation: Conversation, turn_id: int) -> Turn:
    """One turn of `conversation` with its sibling columns (Turn.DoesNotExist if it is not one of them)."""
    rows = list(Turn.objects.raw(
        f"SELECT t.*, {_SIBLING_COLUMNS} FROM conversations_turn t WHERE t.id = %s AND t.conversation_id = %s",
        [turn_id, _conversation_param(conversation)],
    ))
    if not rows:
        raise Turn.DoesNotExist
    _with_related(rows, conversation)
    return rows[0]


def _with_related(turns: list[Turn], conversation: Conversation) -> None:
    """What a shown turn needs besides its row: feedback, and its files (queried only in chats that have any)."""
    prefetch_related_objects(turns, "feedback")
    if conversation.has_attachments:
        prefetch_related_objects(turns, Prefetch("attachments", to_attr="attachment_list"))
    for turn in turns:
        turn.conversation = conversation  # no lazy query per turn
        if not conversation.has_attachments:
            turn.attachment_list = []


def latest_leaf_id(conversation: Conversation, turn_id: int) -> int | None:
    """The newest turn without children below (or at) `turn_id`: where the branch through it now ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            """WITH RECURSIVE below (id) AS (
                   SELECT id FROM conversations_turn WHERE id = %s AND conversation_id = %s
                   UNION ALL
                   SELECT t.id FROM conversations_turn t JOIN below ON t.parent_id = below.id
               )
               SELECT below.id FROM below
               WHERE NOT EXISTS (SELECT 1 FROM conversations_turn c WHERE c.parent_id = below.id)
               ORDER BY below.id DESC LIMIT 1""",
            [turn_id, _conversation_param(conversation)],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def history_for_model(
    conversation: Conversation, *, last_turn_id: int, vision: bool = False
) -> list[ModelMessage]:
    """The path from the first message down to `last_turn_id`, as model messages.

    Failed, cancelled and unfinished answers are left out: the model never sees an error text or
    half an answer as something it said. One query, whatever the length; a second when the
    conversation has attachments (their text, and images as parts when the model reads them: `vision`).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""{_PATH_CTE}
                SELECT t.id, t.role, t.content, t.tool_calls, t.tool_call_id FROM conversations_turn t
                JOIN path ON t.id = path.id
                WHERE NOT (t.role = %s AND t.status IN (%s, %s, %s))
                ORDER BY t.position""",
            [last_turn_id, _conversation_param(conversation), Turn.Role.ASSISTANT,
             Turn.Status.FAILED, Turn.Status.CANCELLED, Turn.Status.PENDING],
        )
        rows = cursor.fetchall()
    messages = [model_message(*row[1:]) for row in rows]
    if conversation.has_attachments:
        from conversations.attachments import message_content

        files: dict[int | None, list[Attachment]] = {}
        for attachment in Attachment.objects.filter(turn_id__in=[row[0] for row in rows]).order_by("created_at"):
            files.setdefault(attachment.turn_id, []).append(attachment)
        for (turn_id, _role, content, *_calls), message in zip(rows, messages, strict=True):
            if turn_id in files:  # a user message: its text, its documents' text, its images
                message["content"] = message_content(content, files[turn_id], vision=vision)
    return messages


def model_message(
    role: str, content: str, tool_calls: list[ToolCall] | str | None, tool_call_id: str | None
) -> ModelMessage:
    """A stored turn as an OpenAI message: an answer's tool calls and a tool result's call id included."""
    if role == Turn.Role.TOOL:
        return {"role": role, "tool_call_id": tool_call_id or "", "content": content}
    if tool_calls:
        # A string: a JSON column read with raw SQL (SQLite).
        calls: list[ToolCall] = json.loads(tool_calls) if isinstance(tool_calls, str) else tool_calls
        return {"role": role, "content": content or None, "tool_calls": calls}
    return {"role": role, "content": content}


def turn_continued_by(
    *, user: User, api_key: ApiKey | None, system_prompt: str, history: list[StoredMessage]
) -> Turn | None:
    """The turn a resent history ends at, in a conversation this API key started (conversations.digests).

    `history`: the request's messages before its new one, roles as stored. The newest match wins.
    """
    if not history or api_key is None:
        return None
    return (
        Turn.objects.for_user(user).filter(
            digest=history_digest(system_prompt, history), conversation__api_key=api_key
        )
        .select_related("conversation").order_by("-id").first()
    )


def conversation_tree(conversation: Conversation) -> list[Turn]:
    """Every turn of every branch, in creation order (parents before children), with feedback."""
    return list(conversation.turns.select_related("feedback").order_by("id"))


def start_of_today() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def tokens_used_today(user: User) -> int:
    """Tokens spent upstream today (the usage ledger: deleting chats or answers does not reduce it)."""
    usage = DailyUsage.objects.filter(user=user, day=timezone.localdate()).first()
    return usage.total_tokens if usage is not None else 0


class DayUsage(TypedDict):
    day: date
    prompt_tokens: int
    completion_tokens: int
    answers: int


def usage_by_day(user: User, *, days: int = 30) -> list[DayUsage]:
    """Token usage per day (oldest first) over the last `days` days, including the answer count."""
    since = timezone.localdate() - timedelta(days=days - 1)
    return list(
        DailyUsage.objects.filter(user=user, day__gte=since).order_by("day")
        .values("day", "prompt_tokens", "completion_tokens", "answers")
    )


def models_offered(user: User | AnonymousUser) -> list[str]:
    """The models this user may pick: the site's (the configured backend's default first) that their groups
    allow (teams.policy)."""
    from conversations import llm

    policy = policy_for(user)
    return [name for name in llm.get_backend().models() if policy.allows_model(name)]


def embedding_models_offered(user: User | AnonymousUser) -> list[str]:
    """The embedding models this user may use at /v1/embeddings: the site's (EMBEDDING_MODELS, the default first)
    that their groups allow, as for chat models; none when the backend computes no embeddings."""
    from conversations import llm

    if llm.get_backend().embeddings_refused is not None:
        return []
    policy = policy_for(user)
    return [name for name in llm.embedding_models() if policy.allows_model(name)]


def default_model(user: User | AnonymousUser) -> str:
    """The model a chat of this user's answers with when it names none: the site's default, or, when their groups
    do not allow it, the first model they allow ("" when they allow none the site offers)."""
    from conversations import llm

    backend = llm.get_backend()
    if policy_for(user).allows_model(backend.default_model):
        return backend.default_model
    return next(iter(models_offered(user)), "")


def model_backend_health() -> dict[str, str]:
    """The configured model backend and its state: up, starting (the local model server is loading) or down."""
    from conversations import llm

    backend = llm.get_backend()
    return {"backend": backend.name, "state": backend.state()}


def running_answer(conversation: Conversation) -> Turn | None:
    """The answer being written in this conversation, if any (there is at most one)."""
    return conversation.turns.filter(role=Turn.Role.ASSISTANT, status=Turn.Status.PENDING).first()
