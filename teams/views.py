"""A user's own pages: their usage by day (with a chart), and who reviewed their chats and when."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET

from conversations.admin_views import bar_chart
from conversations.reviews import reviewer_name, reviews_for_owner
from conversations.selectors import usage_by_day
from teams.policy import policy_for

USAGE_PERIODS = (7, 30, 90)
REVIEWS_PER_PAGE = 50


@login_required
@require_GET
def usage(request):
    """Tokens and answers per day over the last 7, 30 or 90 days, from the usage ledger the quota counts."""
    days = int(request.GET["days"]) if request.GET.get("days") in {str(period) for period in USAGE_PERIODS} else 30
    by_day = {row["day"]: row for row in usage_by_day(request.user, days=days)}
    today = timezone.localdate()
    rows = []
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        row = by_day.get(day)
        prompt, completion = (row["prompt_tokens"], row["completion_tokens"]) if row else (0, 0)
        rows.append({"day": day, "prompt_tokens": prompt, "completion_tokens": completion,
                     "tokens": prompt + completion, "answers": row["answers"] if row else 0})
    budget = policy_for(request.user).daily_token_budget
    chart = bar_chart([(date_format(row["day"], "M j"), row["tokens"]) for row in rows], width=720, plot_height=140,
                      label_every=max(1, days // 6))
    return render(request, "teams/usage.html", {
        "rows": rows[::-1], "chart": chart, "days": days, "periods": USAGE_PERIODS, "budget": budget,
        "total_tokens": sum(row["tokens"] for row in rows), "total_answers": sum(row["answers"] for row in rows),
    })


@login_required
@require_GET
def reviews(request):
    """Every time a staff member opened one of the user's chats (or a file sent in it) in the admin."""
    page = Paginator(reviews_for_owner(request.user), REVIEWS_PER_PAGE).get_page(request.GET.get("page"))
    entries = [{"review": review, "reviewer": reviewer_name(review)} for review in page]
    return render(request, "teams/reviews.html", {"page": page, "entries": entries})
