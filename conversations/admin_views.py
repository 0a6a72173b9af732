"""The admin's usage page: tokens per day (overall and per user), answers per status, feedback counts.

Charts are SVG drawn on the server (no chart library, no script): geometry is computed here and the
template only writes attributes, which the strict CSP allows.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypedDict

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes import views as contenttype_views
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from conversations.attachments import file_response
from conversations.models import Attachment, Feedback, Turn
from conversations.reviews import review_record
from conversations.selectors import start_of_today

USAGE_DAYS = 30
TOP_USERS = 20


@dataclass(frozen=True)
class ChartBar:
    x: str
    y: str
    width: str
    height: str
    label: str
    value: int
    show_label: bool


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    plot_height: int
    max_value: int
    bars: list[ChartBar]


def bar_chart(points: list[tuple[str, int]], *, width: int, plot_height: int, label_every: int = 0) -> BarChart:
    """Bars for (label, value) points, scaled to the largest value; every `label_every`-th bar is labelled."""
    max_value = max((value for _, value in points), default=0)
    slot = width / max(len(points), 1)
    gap = min(2.0, slot / 5)
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = plot_height * value / max_value if max_value else 0
        if value and bar_height < 1:
            bar_height = 1  # a non-zero day stays visible
        bars.append(
            ChartBar(
                x=f"{index * slot + gap / 2:.2f}",
                y=f"{plot_height - bar_height:.2f}",
                width=f"{slot - gap:.2f}",
                height=f"{bar_height:.2f}",
                label=label,
                value=value,
                show_label=bool(label_every) and index % label_every == 0,
            )
        )
    label_space = 16 if label_every else 0
    return BarChart(width=width, height=plot_height + label_space, plot_height=plot_height, max_value=max_value,
                    bars=bars)


def _days(first_day: date) -> list[date]:
    return [first_day + timedelta(days=offset) for offset in range(USAGE_DAYS)]


def _day_label(day: date) -> str:
    return date_format(day, "M j")


class DayTotals(TypedDict):
    day: date
    tokens: int
    answers: int


def usage_summary() -> dict:
    """Everything the usage page shows, for the last USAGE_DAYS days (today included), in 6 queries."""
    since = start_of_today() - timedelta(days=USAGE_DAYS - 1)
    days = _days(timezone.localdate() - timedelta(days=USAGE_DAYS - 1))
    answers = Turn.objects.filter(role=Turn.Role.ASSISTANT, created_at__gte=since)
    tokens = Sum(F("prompt_tokens") + F("completion_tokens"))

    per_day = {
        row["day"]: row
        for row in answers.annotate(day=TruncDate("created_at")).values("day").annotate(
            tokens=tokens, answers=Count("pk")
        )
    }
    empty_day = {"tokens": 0, "answers": 0}
    overall: list[DayTotals] = [
        {"day": day, "tokens": row["tokens"] or 0, "answers": row["answers"]}
        for day, row in ((day, per_day.get(day, empty_day)) for day in days)
    ]

    top_users = list(
        answers.values(user_id=F("conversation__owner"))
        .annotate(tokens=tokens, answers=Count("pk"))
        .order_by("-tokens", "user_id")[:TOP_USERS]
    )
    user_ids = [row["user_id"] for row in top_users]
    usernames = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    user_days: dict[int, dict[date, int]] = {user_id: {} for user_id in user_ids}
    for row in (
        answers.filter(conversation__owner__in=user_ids)
        .annotate(day=TruncDate("created_at"))
        .values("day", user_id=F("conversation__owner"))
        .annotate(tokens=tokens)
    ):
        user_days[row["user_id"]][row["day"]] = row["tokens"] or 0
    per_user = [
        {
            "username": usernames.get(row["user_id"], "?"),
            "user_id": row["user_id"],
            "tokens": row["tokens"] or 0,
            "answers": row["answers"],
            "chart": bar_chart(
                [(_day_label(day), user_days[row["user_id"]].get(day, 0)) for day in days], width=180, plot_height=24
            ),
        }
        for row in top_users
    ]

    status_counts = dict(answers.values_list("status").annotate(count=Count("pk")).order_by())
    statuses = [
        {"status": status, "label": label, "count": status_counts.get(status, 0)}
        for status, label in Turn.Status.choices
    ]
    ratings = dict(
        Feedback.objects.filter(created_at__gte=since).values_list("rating").annotate(count=Count("pk")).order_by()
    )
    return {
        "days": USAGE_DAYS,
        "since": days[0],
        "overall": overall,
        "overall_tokens": sum(day["tokens"] for day in overall),
        "overall_answers": sum(day["answers"] for day in overall),
        "overall_chart": bar_chart(
            [(_day_label(day["day"]), day["tokens"]) for day in overall], width=720, plot_height=160, label_every=5
        ),
        "per_user": per_user,
        "statuses": statuses,
        "status_chart": bar_chart([(str(row["label"]), row["count"]) for row in statuses], width=360, plot_height=100,
                                  label_every=1),
        "feedback_positive": ratings.get(1, 0),
        "feedback_negative": ratings.get(-1, 0),
    }


def usage_view(request):
    """Staff who may view conversations (reviewers, superusers) see aggregate usage; nobody edits here."""
    if not request.user.has_perm("conversations.view_conversation"):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": _("Usage"),
        **usage_summary(),
    }
    return TemplateResponse(request, "admin/usage.html", context)


def view_on_site(request, content_type_id, object_id):
    """The admin's "view on site" redirect (Django's contenttypes shortcut), with an id its model cannot read (not a
    UUID, a number out of range) a 404 like any unknown id, not a 500."""
    try:
        return contenttype_views.shortcut(request, content_type_id, object_id)
    except (ValidationError, ValueError, OverflowError):
        raise Http404 from None


def attachment_file_view(request, attachment_id):
    """A file sent in a chat, for a reviewer (staff who may view conversations): logged as a review of the chat,
    so its owner is told, and served inert like the owner's own view."""
    if not request.user.has_perm("conversations.view_conversation"):
        raise PermissionDenied
    attachment = get_object_or_404(
        Attachment.objects.exclude(turn__conversation__delete_after__isnull=False).select_related("turn"),
        pk=attachment_id,
    )
    if attachment.turn is None:  # not sent yet, or sent in a temporary chat: in no chat a reviewer may see
        raise Http404
    review_record(conversation_id=attachment.turn.conversation_id, reviewer=request.user)
    return file_response(attachment)
