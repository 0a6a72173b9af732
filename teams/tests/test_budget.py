"""The daily token budget of a user's groups (or their override) is the quota the usage ledger admits against."""

import pytest

from conversations import answering, errors
from conversations.selectors import tokens_used_today
from conversations.services import conversation_create
from teams.models import UserPolicy

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_groups_budget_is_the_quota(user, other_user, make_group, fake_upstream, settings, api_client):
    settings.CHAT_DAILY_TOKEN_QUOTA = 0  # the site has none: only the group's holds
    make_group("interns", members=[user], budget=5)
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="use it up")
    assert tokens_used_today(user) >= 5
    with pytest.raises(errors.QuotaExceeded):
        answering.answer(conversation=conversation, user=user, content="one more")
    body = api_client.get("/api/v1/usage/").json()
    assert body["quota"] == 5 and body["quota_left"] == 0
    # bob, in no group, has the site's (none).
    for _ in range(2):
        answering.answer(conversation=conversation_create(owner=other_user), user=other_user, content="free")


def test_the_highest_budget_of_the_groups_or_the_override(user, make_group, fake_upstream, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 1
    make_group("interns", members=[user], budget=5)
    make_group("staff", members=[user], budget=100_000)
    conversation = conversation_create(owner=user)
    for _ in range(2):
        answering.answer(conversation=conversation, user=user, content="plenty")
    UserPolicy.objects.create(user=user, daily_token_budget=1)
    fresh = type(user).objects.get(pk=user.pk)  # the next request's user reads the override
    with pytest.raises(errors.QuotaExceeded):
        answering.answer(conversation=conversation, user=fresh, content="over the override")
