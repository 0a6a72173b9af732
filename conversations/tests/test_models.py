"""Database-level rules: the constraints reject bad rows on SQLite and PostgreSQL alike."""

import pytest
from django.db import IntegrityError, transaction

from conversations.models import Conversation, Turn


@pytest.fixture
def conversation(user):
    return Conversation.objects.create(owner=user, title="t")


@pytest.mark.django_db
def test_position_is_unique_per_conversation(conversation):
    Turn.objects.create(conversation=conversation, position=1, role="user", content="a")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Turn.objects.create(conversation=conversation, position=1, role="assistant", content="b")
    assert "turn_unique_position" in str(caught.value) or "UNIQUE" in str(caught.value)


@pytest.mark.django_db
def test_same_position_in_another_conversation_is_fine(conversation, user):
    other = Conversation.objects.create(owner=user)
    Turn.objects.create(conversation=conversation, position=1, role="user")
    Turn.objects.create(conversation=other, position=1, role="user")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "constraint"),
    [
        ("role", "wizard", "turn_role_valid"),
        ("status", "exploded", "turn_status_valid"),
        ("position", 0, "turn_position_positive"),
    ],
)
def test_check_constraints(conversation, field, value, constraint):
    values = {"conversation": conversation, "position": 1, "role": "user", field: value}
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Turn.objects.create(**values)
    assert constraint in str(caught.value) or "CHECK" in str(caught.value).upper()


@pytest.mark.django_db
def test_negative_token_counts_are_rejected(conversation):
    turn = Turn.objects.create(conversation=conversation, position=1, role="assistant")
    with pytest.raises(IntegrityError), transaction.atomic():
        Turn.objects.filter(pk=turn.pk).update(completion_tokens=-1)


@pytest.mark.django_db
def test_for_user_only_returns_own_conversations(conversation, other_user):
    assert list(Conversation.objects.for_user(other_user)) == []
    assert list(Conversation.objects.for_user(conversation.owner)) == [conversation]


@pytest.mark.django_db
def test_str_and_url(conversation):
    assert str(conversation) == "t"
    assert conversation.get_absolute_url() == f"/c/{conversation.id}/"
