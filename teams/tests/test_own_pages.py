"""A user's own pages: their usage with a chart (linked from the profile), and who reviewed their chats and when."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conversations.models import ReviewLog
from conversations.services import conversation_create
from conversations.services.quota import usage_add

pytestmark = pytest.mark.django_db


def test_the_profile_links_both_pages(authenticated_client):
    html = authenticated_client.get(reverse("profile")).content.decode()
    assert f'href="{reverse("teams:usage")}"' in html and f'href="{reverse("teams:reviews")}"' in html


def test_usage_page_draws_the_ledger_per_day(authenticated_client, user, make_group):
    make_group("interns", members=[user], budget=5000)
    today = timezone.localdate()
    usage_add(user.pk, today, prompt_tokens=30, completion_tokens=12)
    usage_add(user.pk, today - timedelta(days=8), prompt_tokens=100, completion_tokens=0)
    response = authenticated_client.get(reverse("teams:usage"), {"days": 7})
    assert response.context["total_tokens"] == 42 and response.context["budget"] == 5000
    assert len(response.context["rows"]) == 7 and response.context["rows"][0]["tokens"] == 42
    html = response.content.decode()
    assert html.count('<rect class="bar"') == 7 and "style=" not in html
    assert authenticated_client.get(reverse("teams:usage"), {"days": 30}).context["total_tokens"] == 142
    assert authenticated_client.get(reverse("teams:usage"), {"days": "9999"}).context["days"] == 30


def test_reviews_page_lists_who_reviewed_which_chat_and_when(authenticated_client, user, other_user, make_user,
                                                            settings):
    reviewer = make_user("rita", first_name="Rita", last_name="Reviewer", is_staff=True)
    chat = conversation_create(owner=user, title="Tax questions")
    ReviewLog.objects.create(conversation=chat, reviewer=reviewer)
    ReviewLog.objects.create(conversation=conversation_create(owner=other_user, title="Bob's chat"), reviewer=reviewer)
    settings.CHAT_SHOW_REVIEWER = True
    html = authenticated_client.get(reverse("teams:reviews")).content.decode()
    assert "Tax questions" in html and "Rita Reviewer" in html and "Bob&#x27;s chat" not in html
    settings.CHAT_SHOW_REVIEWER = False  # the operator hides who: the page says "a staff member"
    html = authenticated_client.get(reverse("teams:reviews")).content.decode()
    assert "Rita" not in html and "A staff member" in html


def test_usage_chart_labels_days_in_the_pages_language(authenticated_client, settings):
    authenticated_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"
    chart = authenticated_client.get(reverse("teams:usage"), {"days": 7}).context["chart"]
    today = timezone.localdate()
    labels = [bar.label for bar in chart.bars]
    assert labels[-1] == f"{today.month}월 {today.day}", labels
