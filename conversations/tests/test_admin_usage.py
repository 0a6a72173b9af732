"""The admin usage page: tokens per day overall and per user, answers per status, feedback counts."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conversations.admin_views import USAGE_DAYS, bar_chart, usage_summary
from conversations.models import Conversation, Feedback, Turn
from conversations.services.quota import usage_add
from conversations.tests.admin_support import add_exchange, make_reviewer

pytestmark = pytest.mark.django_db


def exchange_with_ledger(conversation, *, prompt_tokens, completion_tokens, at, **fields):
    """A question and its answer, with the answer's tokens added to the usage ledger as answer_store does."""
    pair = add_exchange(conversation, "q", fields.pop("answer", "a"), prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens, at=at, **fields)
    usage_add(conversation.owner_id, timezone.localdate(at), prompt_tokens=prompt_tokens,
              completion_tokens=completion_tokens)
    return pair


@pytest.fixture
def usage_data(user, other_user):
    now = timezone.now()
    alice = Conversation.objects.create(owner=user, title="alice chat")
    bob = Conversation.objects.create(owner=other_user, title="bob chat")
    exchange_with_ledger(alice, prompt_tokens=100, completion_tokens=20, rating=1, at=now)
    exchange_with_ledger(alice, prompt_tokens=50, completion_tokens=10, rating=-1, at=now - timedelta(days=3))
    exchange_with_ledger(bob, answer="", prompt_tokens=7, completion_tokens=0, status=Turn.Status.FAILED, at=now)
    exchange_with_ledger(bob, prompt_tokens=1, completion_tokens=2, status=Turn.Status.CANCELLED, at=now)
    # Outside the window: counted nowhere.
    old = now - timedelta(days=USAGE_DAYS + 2)
    _, old_answer = exchange_with_ledger(bob, prompt_tokens=5000, completion_tokens=5000, rating=1, at=old)
    Feedback.objects.filter(turn=old_answer).update(created_at=old)
    return alice, bob


def test_summary_counts_the_last_30_days(usage_data, user, other_user):
    summary = usage_summary()
    assert len(summary["overall"]) == USAGE_DAYS
    assert summary["overall"][-1]["day"] == timezone.localdate()
    assert summary["overall"][-1] == {
        "day": timezone.localdate(), "tokens": 120 + 7 + 3, "answers": 3, "active_users": 2, "messages": 3, "failed": 1,
    }
    assert summary["overall"][-4]["tokens"] == 60
    assert summary["overall_tokens"] == 190
    assert summary["overall_answers"] == 4

    per_user = {row["username"]: row for row in summary["per_user"]}
    assert (per_user["alice"]["tokens"], per_user["alice"]["answers"]) == (180, 2)
    assert (per_user["bob"]["tokens"], per_user["bob"]["answers"]) == (10, 2)
    assert [row["username"] for row in summary["per_user"]] == ["alice", "bob"]
    assert [bar.value for bar in per_user["alice"]["chart"].bars][-4:] == [60, 0, 0, 120]

    statuses = {row["status"]: row["count"] for row in summary["statuses"]}
    assert statuses == {"pending": 0, "complete": 2, "failed": 1, "cancelled": 1}
    assert (summary["feedback_positive"], summary["feedback_negative"]) == (1, 1)


def test_reviewer_sees_the_usage_page_with_svg_charts_and_no_inline_script_or_style(client, make_user, usage_data):
    client.force_login(make_reviewer(make_user))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin_usage"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg class=\"usage-chart") == 6  # tokens, messages, active users, failed; models; statuses
    assert html.count("<svg class=\"usage-spark") == 2
    assert "190 tokens in 4 answers" in html
    assert re.search(r'data-status="failed">1<', html)
    assert re.search(r'data-rating="-1">1<', html)
    # CSP: no inline script and no style attribute anywhere on the page.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html
    # session, user, permissions (2), then the summary's 9 queries: independent of the data volume.
    assert len(queries) == 13


def test_usage_page_needs_the_view_conversation_permission(client, make_user):
    staff = make_user("staffer", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin_usage")).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    assert client.get(reverse("admin_usage")).status_code == 200


def test_usage_page_redirects_anonymous_users_to_the_admin_login(client):
    response = client.get(reverse("admin_usage"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_usage_link_on_admin_index_and_conversation_list(client, make_user):
    client.force_login(make_reviewer(make_user))
    for url in [reverse("admin:index"), reverse("admin:conversations_conversation_changelist")]:
        assert f'href="{reverse("admin_usage")}"' in client.get(url).content.decode()


def test_bar_chart_scales_bars_to_the_largest_value():
    chart = bar_chart([("a", 0), ("b", 50), ("c", 100), ("d", 1)], width=400, plot_height=100, label_every=2)
    heights = [float(bar.height) for bar in chart.bars]
    assert heights == [0.0, 50.0, 100.0, 1.0]
    assert [float(bar.y) + float(bar.height) for bar in chart.bars] == [100.0] * 4  # all stand on the axis
    assert [bar.show_label for bar in chart.bars] == [True, False, True, False]
    assert chart.max_value == 100
    assert chart.height == 116

    empty = bar_chart([("a", 0), ("b", 0)], width=100, plot_height=20)
    assert [float(bar.height) for bar in empty.bars] == [0.0, 0.0]
    assert empty.height == 20
