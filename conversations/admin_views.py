"""The admin's usage page over a chosen range: messages, tokens, active users and failed answers per day; by model,
group and user; answers per status, feedback counts; each table as CSV.

Charts are SVG drawn on the server (no chart library, no script): geometry is computed here and the
template only writes attributes, which the strict CSP allows.
"""

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypedDict

from django import forms
from django.contrib import admin
from django.contrib.contenttypes import views as contenttype_views
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _

from conversations.attachments import file_response
from conversations.models import Attachment, DailyUsage, Feedback, Turn
from conversations.reviews import review_record, staff_may_read_chats

USAGE_DAYS = 30
MAX_RANGE_DAYS = 366
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


def _days(first_day: date, last_day: date) -> list[date]:
    return [first_day + timedelta(days=offset) for offset in range((last_day - first_day).days + 1)]


def _day_label(day: date) -> str:
    return date_format(day, "M j")


class DayTotals(TypedDict):
    day: date
    tokens: int  # the ledger's (DailyUsage): what quotas count, deleted chats included
    answers: int  # the ledger's
    active_users: int  # users with an answer that day (the ledger's)
    messages: int  # user messages sent that day (turns that still exist)
    failed: int  # failed answers that day (turns that still exist)


class UsageRange(forms.Form):
    since = forms.DateField(required=False)
    until = forms.DateField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        until = data.get("until") or timezone.localdate()
        since = data.get("since") or until - timedelta(days=USAGE_DAYS - 1)
        if since > until:
            raise forms.ValidationError(_("The first day is after the last."))
        if (until - since).days >= MAX_RANGE_DAYS:
            raise forms.ValidationError(_("Choose at most %(days)d days.") % {"days": MAX_RANGE_DAYS})
        data["since"], data["until"] = since, until
        return data


def usage_summary(first_day: date | None = None, last_day: date | None = None) -> dict:
    """Everything the usage page shows for the days first_day..last_day (default: the last USAGE_DAYS days, today
    included), in 9 queries whatever the number of users and turns: per day, per model, per group, the top users
    (tokens from the usage ledger, as the quotas count them; messages and failures from the turns), statuses and
    feedback."""
    last_day = last_day or timezone.localdate()
    first_day = first_day or last_day - timedelta(days=USAGE_DAYS - 1)
    days = _days(first_day, last_day)
    since = timezone.make_aware(datetime.combine(first_day, time.min))
    until = timezone.make_aware(datetime.combine(last_day + timedelta(days=1), time.min))
    ledger = DailyUsage.objects.filter(day__gte=first_day, day__lte=last_day)
    turns = Turn.objects.filter(created_at__gte=since, created_at__lt=until)
    answers = turns.filter(role=Turn.Role.ASSISTANT)
    ledger_tokens = Sum(F("prompt_tokens") + F("completion_tokens"))
    failed = Count("pk", filter=Q(role=Turn.Role.ASSISTANT, status=Turn.Status.FAILED))

    ledger_days: dict[date, Mapping[str, Any]] = {
        row["day"]: row
        for row in ledger.values("day").annotate(
            tokens=ledger_tokens, answer_count=Sum("answers"), active_users=Count("user", filter=Q(answers__gt=0))
        ).order_by()
    }
    turn_days: dict[date, Mapping[str, Any]] = {
        row["day"]: row
        for row in turns.annotate(day=TruncDate("created_at")).values("day").annotate(
            messages=Count("pk", filter=Q(role=Turn.Role.USER)), failed=failed
        ).order_by()
    }
    overall: list[DayTotals] = []
    for day in days:
        spent, sent = ledger_days.get(day, {}), turn_days.get(day, {})
        overall.append({
            "day": day, "tokens": spent.get("tokens") or 0, "answers": spent.get("answer_count") or 0,
            "active_users": spent.get("active_users") or 0, "messages": sent.get("messages") or 0,
            "failed": sent.get("failed") or 0,
        })

    per_model = list(
        answers.values("model").annotate(
            answers=Count("pk"), tokens=Sum(F("prompt_tokens") + F("completion_tokens")), failed=failed
        ).order_by("-tokens", "model")
    )
    in_groups = ledger.filter(user__groups__isnull=False).values(group=F("user__groups__name")).annotate(
        tokens=ledger_tokens, answer_count=Sum("answers"), users=Count("user", distinct=True)
    ).order_by("-tokens", "group")
    no_group = ledger.filter(user__groups__isnull=True).aggregate(
        tokens=ledger_tokens, answer_count=Sum("answers"), users=Count("user", distinct=True)
    )
    group_rows: list[dict[str, Any]] = [
        {"group": row["group"], "users": row["users"], "answers": row["answer_count"] or 0, "tokens": row["tokens"]}
        for row in [*in_groups, *([{"group": None, **no_group}] if no_group["users"] else [])]
    ]

    top_users = [
        {"user_id": row["user_id"], "username": row["username"], "tokens": row["tokens"],
         "answers": row["answer_count"]}
        for row in ledger.values("user_id", username=F("user__username"))
        .annotate(tokens=ledger_tokens, answer_count=Sum("answers"))
        .order_by("-tokens", "user_id")[:TOP_USERS]
    ]
    user_ids = [row["user_id"] for row in top_users]
    user_days: dict[int, dict[date, int]] = {user_id: {} for user_id in user_ids}
    for user_id, day, tokens in ledger.filter(user_id__in=user_ids).values_list(
        "user_id", "day", F("prompt_tokens") + F("completion_tokens")
    ):
        user_days[user_id][day] = tokens
    label_every = max(1, len(days) // 6)
    per_user = [
        {
            **row,
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
        Feedback.objects.filter(created_at__gte=since, created_at__lt=until).values_list("rating")
        .annotate(count=Count("pk")).order_by()
    )

    def day_chart(key: str) -> BarChart:
        return bar_chart([(_day_label(row["day"]), row[key]) for row in overall],  # type: ignore[literal-required]
                         width=720, plot_height=120, label_every=label_every)

    return {
        "days": len(days),
        "since": first_day,
        "until": last_day,
        "overall": overall,
        "overall_tokens": sum(day["tokens"] for day in overall),
        "overall_answers": sum(day["answers"] for day in overall),
        "overall_messages": sum(day["messages"] for day in overall),
        "overall_failed": sum(day["failed"] for day in overall),
        "overall_chart": day_chart("tokens"),
        "day_charts": [
            {"key": "messages", "label": _("Messages per day"), "chart": day_chart("messages")},
            {"key": "active_users", "label": _("Active users per day"), "chart": day_chart("active_users")},
            {"key": "failed", "label": _("Failed answers per day"), "chart": day_chart("failed")},
        ],
        "per_model": per_model,
        "model_chart": bar_chart([(row["model"] or "?", row["tokens"] or 0) for row in per_model], width=360,
                                 plot_height=100, label_every=1),
        "per_group": group_rows,
        "per_user": per_user,
        "statuses": statuses,
        "status_chart": bar_chart([(str(row["label"]), row["count"]) for row in statuses], width=360, plot_height=100,
                                  label_every=1),
        "feedback_positive": ratings.get(1, 0),
        "feedback_negative": ratings.get(-1, 0),
    }


CSV_TABLES = {
    "days": ("overall", ["day", "messages", "tokens", "answers", "active_users", "failed"]),
    "models": ("per_model", ["model", "answers", "tokens", "failed"]),
    "groups": ("per_group", ["group", "users", "answers", "tokens"]),
    "users": ("per_user", ["username", "answers", "tokens"]),
}


def usage_csv(summary: dict, table: str) -> HttpResponse:
    """One of the page's tables as CSV (the same rows the page shows)."""
    key, columns = CSV_TABLES[table]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(
        True, f"usage-{table}-{summary['since']:%Y%m%d}-{summary['until']:%Y%m%d}.csv"
    )
    writer = csv.writer(response)
    writer.writerow(columns)
    for row in summary[key]:
        writer.writerow(["" if row[column] is None else _csv_safe(row[column]) for column in columns])
    return response


def _csv_safe(value):
    """A cell a spreadsheet will not run as a formula (a username or model name starting with =, +, - or @)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not isinstance(value, int) else value


def usage_view(request):
    """Staff who may view conversations (reviewers, superusers) see aggregate usage over a chosen range (?since=,
    ?until=), and download each table as CSV (?csv=days|models|groups|users); nobody edits here."""
    if not request.user.has_perm("conversations.view_conversation"):
        raise PermissionDenied
    form = UsageRange(request.GET)
    if not form.is_valid():
        return TemplateResponse(request, "admin/usage.html", {
            **admin.site.each_context(request), "title": _("Usage"), "range_form": form,
        }, status=400)
    summary = usage_summary(form.cleaned_data["since"], form.cleaned_data["until"])
    table = request.GET.get("csv")
    if table:
        if table not in CSV_TABLES:
            raise Http404
        return usage_csv(summary, table)
    context = {
        **admin.site.each_context(request),
        "title": _("Usage"),
        "range_form": form,
        "range_query": f"since={summary['since']:%Y-%m-%d}&until={summary['until']:%Y-%m-%d}",
        **summary,
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
    so its owner is told, and served inert like the owner's own view. Refused when staff may not read chats."""
    if not request.user.has_perm("conversations.view_conversation") or not staff_may_read_chats():
        raise PermissionDenied
    attachment = get_object_or_404(
        Attachment.objects.exclude(turn__conversation__delete_after__isnull=False).select_related("turn"),
        pk=attachment_id,
    )
    if attachment.turn is None:  # not sent yet, or sent in a temporary chat: in no chat a reviewer may see
        raise Http404
    review_record(conversation_id=attachment.turn.conversation_id, reviewer=request.user)
    return file_response(attachment)
