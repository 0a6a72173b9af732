"""HTML pages of the chat: the chat page, the history list (paged), and one rendered turn.

Writes (send, stop, regenerate, rename, archive, delete, feedback) go through the REST API from the
page's JavaScript, so the browser and API clients share one code path.
"""

import uuid
from datetime import UTC, datetime, timedelta
from itertools import groupby

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from conversations import llm, selectors
from conversations.models import Conversation, Turn
from conversations.selectors import conversation_list

HISTORY_PAGE_SIZE = 50
TURN_PAGE_SIZE = 100

HISTORY_GROUPS = {
    "today": _("Today"),
    "yesterday": _("Yesterday"),
    "week": _("Previous 7 days"),
    "older": _("Older"),
}


def _history_group(updated_at: datetime, today) -> str:
    day = timezone.localdate(updated_at)
    if day >= today:
        return "today"
    if day == today - timedelta(days=1):
        return "yesterday"
    if day >= today - timedelta(days=7):
        return "week"
    return "older"


def _cursor(conversation: Conversation) -> str:
    return f"{conversation.updated_at.isoformat()}|{conversation.pk}"


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    when, _sep, last_id = cursor.partition("|")
    try:
        when = parse_datetime(when)
        last_id = uuid.UUID(last_id)
        if when is not None:
            when = when.astimezone(UTC)  # a far-off offset can overflow the year: refuse it here, not in SQL
    except (ValueError, OverflowError):
        when = None
    if when is None:
        raise Http404("bad cursor")
    return when, last_id


def _history_page(request, *, archived: bool, search: str = "", cursor: str = "") -> dict:
    """One page of the user's history, grouped by age: a single query whatever the history size.

    Keyset paging on (updated_at, id) keeps page N as cheap as page 1.
    """
    conversations = conversation_list(user=request.user, archived=archived, search=search).order_by(
        "-updated_at", "-pk"
    )
    if cursor:
        when, last_id = _parse_cursor(cursor)
        conversations = conversations.filter(Q(updated_at__lt=when) | Q(updated_at=when, pk__lt=last_id))
    rows = list(conversations.only("id", "title", "archived", "updated_at")[: HISTORY_PAGE_SIZE + 1])
    has_more = len(rows) > HISTORY_PAGE_SIZE
    rows = rows[:HISTORY_PAGE_SIZE]
    today = timezone.localdate()
    groups = [
        {"key": key, "label": HISTORY_GROUPS[key], "conversations": list(items)}
        for key, items in groupby(rows, key=lambda c: _history_group(c.updated_at, today))
    ]
    return {
        "history_groups": groups,
        "history_next": _cursor(rows[-1]) if has_more else "",
        "history_archived": archived,
        "history_search": search,
    }


def _chat_context(request, conversation: Conversation | None) -> dict:
    backend = llm.get_backend()
    models = backend.models()
    if conversation and conversation.model and conversation.model not in models:
        models = [*models, conversation.model]
    return {
        "conversation": conversation,
        "model_choices": models,
        "default_model": backend.default_model,
        "default_system_prompt": settings.CHAT_DEFAULT_SYSTEM_PROMPT,
        "max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        **_history_page(request, archived=False),
    }


@login_required
@require_GET
def home(request):
    """A new, empty chat: the conversation is created when the first message is sent."""
    return render(request, "conversations/chat.html", {**_chat_context(request, None), "turns": []})


def _turn_page(conversation: Conversation, *, before: int | None = None) -> dict:
    """The newest TURN_PAGE_SIZE turns of the branch shown (before a position, for "show earlier"), oldest
    first, with their versions: two queries (the path, the feedback)."""
    rows = selectors.turn_path(conversation, before_position=before, limit=TURN_PAGE_SIZE + 1)
    has_earlier = len(rows) > TURN_PAGE_SIZE
    rows = rows[-TURN_PAGE_SIZE:]
    return {"turns": rows, "turns_before": rows[0].position if has_earlier else None}


@login_required
@require_GET
def conversation_detail(request, conversation_id):
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    return render(
        request, "conversations/chat.html", {**_chat_context(request, conversation), **_turn_page(conversation)}
    )


@login_required
@require_GET
def turn_list(request, conversation_id):
    """Turns of the branch shown, as an HTML fragment: earlier ones of a long conversation (`before`, the
    "Show earlier messages" button), or the newest page (no `before`: after switching versions)."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    raw = request.GET.get("before")
    before = None
    if raw is not None:
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**31:
            return HttpResponseBadRequest("`before` must be a turn position (a whole number).")
        before = int(raw)
    return render(request, "conversations/_turns.html", _turn_page(conversation, before=before))


@login_required
@require_GET
def history(request):
    """More of the history list (load on scroll), a search, or the archived list, as an HTML fragment."""
    search = request.GET.get("q", "")[:200]
    if "\x00" in search:
        return HttpResponseBadRequest("The search cannot contain a null character.")
    context = _history_page(
        request,
        archived=request.GET.get("archived") == "1",
        search=search,
        cursor=request.GET.get("cursor", ""),
    )
    return render(request, "conversations/_history.html", context)


@login_required
@require_GET
def turn_detail(request, conversation_id, turn_id: int):
    """One turn rendered as on the page, with its versions (the script swaps it in when an answer finishes)."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    try:
        turn = selectors.turn_with_versions(conversation, turn_id)
    except Turn.DoesNotExist:
        raise Http404 from None
    return render(request, "conversations/_turn.html", {"turn": turn})
