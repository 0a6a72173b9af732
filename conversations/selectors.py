"""Reads: conversations for a user, the history sent to the model, usage."""

from datetime import datetime, time, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from conversations.models import Conversation, Turn


def conversation_list(*, user, archived: bool = False, search: str = ""):
    """The user's conversations, newest activity first; search matches titles and turn text."""
    conversations = Conversation.objects.for_user(user).filter(archived=archived)
    search = search.strip()
    if search:
        in_turns = Turn.objects.filter(conversation__owner=user, content__icontains=search).values(
            "conversation_id"
        )
        conversations = conversations.filter(Q(title__icontains=search) | Q(pk__in=in_turns))
    return conversations.order_by("-updated_at")


def conversation_get(*, user, conversation_id) -> Conversation:
    """The user's conversation or Conversation.DoesNotExist (a foreign id is 'not found', never 'forbidden')."""
    return Conversation.objects.for_user(user).get(pk=conversation_id)


def history_for_model(conversation: Conversation, *, before_position: int) -> list[dict]:
    """This conversation's turns before `before_position`, in order, as model messages.

    Failed, cancelled and unfinished answers are left out: the model never sees an error text or
    half an answer as something it said. One query, whatever the length.
    """
    rows = (
        Turn.objects.filter(conversation=conversation, position__lt=before_position)
        .exclude(role=Turn.Role.ASSISTANT, status__in=[
            Turn.Status.FAILED, Turn.Status.CANCELLED, Turn.Status.PENDING, Turn.Status.STREAMING,
        ])
        .order_by("position")
        .values_list("role", "content")
    )
    return [{"role": role, "content": content} for role, content in rows]


def start_of_today() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def tokens_used_today(user) -> int:
    total = Turn.objects.filter(
        conversation__owner=user, role=Turn.Role.ASSISTANT, created_at__gte=start_of_today()
    ).aggregate(total=Sum("prompt_tokens") + Sum("completion_tokens"))["total"]
    return total or 0


def usage_by_day(user, *, days: int = 30) -> list[dict]:
    """Token usage per day (oldest first) over the last `days` days, including the answer count."""
    since = start_of_today() - timedelta(days=days - 1)
    rows = (
        Turn.objects.filter(conversation__owner=user, role=Turn.Role.ASSISTANT, created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            prompt_tokens=Sum("prompt_tokens"), completion_tokens=Sum("completion_tokens"), answers=Count("id")
        )
        .order_by("day")
    )
    return list(rows)


def model_backend_health() -> dict[str, str]:
    """The configured model backend and its state: up, starting (the local model server is loading) or down."""
    from conversations import llm

    backend = llm.get_backend()
    return {"backend": backend.name, "state": backend.state()}
