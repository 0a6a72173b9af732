"""Fixtures for the teams tests: groups with a policy."""

import pytest
from django.contrib.auth.models import Group

from teams.models import GroupPolicy


@pytest.fixture
def make_group(db):
    def make(name: str, *, members=(), models=(), budget: int = 0, **features) -> Group:
        group = Group.objects.create(name=name)
        GroupPolicy.objects.create(group=group, allowed_models=list(models), daily_token_budget=budget, **features)
        group.user_set.add(*members)
        return group

    return make


@pytest.fixture
def two_models(settings, fake_upstream):
    """The site offers fake-model (its default) and other-model."""
    settings.CHAT_MODELS = ["fake-model", "other-model"]
    return ["fake-model", "other-model"]
