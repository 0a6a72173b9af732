"""Database-level rules: the constraints reject bad rows on SQLite and PostgreSQL alike."""

import pytest
from django.db import IntegrityError, transaction

from conversations.models import Conversation, Turn


@pytest.fixture
def conversation(user):
    return Conversation.objects.create(owner=user, title="t")


@pytest.mark.django_db
def test_versions_share_a_position_and_a_parent(conversation):
    first = Turn.objects.create(conversation=conversation, position=1, role="user", content="a")
    Turn.objects.create(conversation=conversation, position=1, role="user", content="a, edited")
    Turn.objects.create(conversation=conversation, parent=first, position=2, role="assistant", content="b")
    Turn.objects.create(conversation=conversation, parent=first, position=2, role="assistant", content="b again")
    assert conversation.turns.filter(parent=first).count() == 2


@pytest.mark.django_db
def test_a_parent_must_belong_to_the_same_conversation(conversation, user):
    other = Conversation.objects.create(owner=user)
    foreign = Turn.objects.create(conversation=other, position=1, role="user", content="elsewhere")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Turn.objects.create(conversation=conversation, parent=foreign, position=2, role="assistant")
    assert "turn_parent_same_conversation" in str(caught.value)
    mine = Turn.objects.create(conversation=conversation, position=1, role="user", content="here")
    child = Turn.objects.create(conversation=conversation, parent=mine, position=2, role="assistant")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Turn.objects.filter(pk=child.pk).update(parent=foreign)
    assert "turn_parent_same_conversation" in str(caught.value)


@pytest.mark.django_db
def test_the_current_turn_must_belong_to_the_conversation(conversation, user):
    other = Conversation.objects.create(owner=user)
    foreign = Turn.objects.create(conversation=other, position=1, role="user", content="elsewhere")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(current_turn=foreign)
    assert "conversation_current_turn_same_conversation" in str(caught.value)


@pytest.mark.django_db
def test_only_one_answer_runs_per_conversation(conversation):
    question = Turn.objects.create(conversation=conversation, position=1, role="user", content="q")
    Turn.objects.create(conversation=conversation, parent=question, position=2, role="assistant", status="pending")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Turn.objects.create(
            conversation=conversation, parent=question, position=2, role="assistant", status="pending"
        )
    assert "turn_one_running_per_conversation" in str(caught.value) or "UNIQUE" in str(caught.value)


@pytest.mark.django_db
def test_a_turn_status_is_one_of_the_four(conversation):
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Turn.objects.create(conversation=conversation, position=1, role="user", content="q", status="streaming")
    assert "turn_status_valid" in str(caught.value)


@pytest.mark.django_db
@pytest.mark.parametrize(("parent", "position"), [(False, 2), (True, 1)])
def test_first_messages_and_only_they_are_at_position_one(conversation, parent, position):
    root = Turn.objects.create(conversation=conversation, position=1, role="user", content="q")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Turn.objects.create(
            conversation=conversation, parent=root if parent else None, position=position, role="assistant"
        )
    assert "turn_root_at_position_one" in str(caught.value)


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


# --- Migrations 0011-0012: meaningful names ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_renaming_migrations_carry_old_rows_over():
    """Chats from /api/chat stored as "seed_api" become "chat_endpoint"; an answer left "streaming" (a status
    older code could write) becomes "pending", so the stale sweep still finds it."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("conversations", "0010_organize")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    try:
        owner = old.get_model("accounts", "User").objects.create(username="legacy")
        chat = old.get_model("conversations", "Conversation").objects.create(owner=owner, source="seed_api")
        question = old.get_model("conversations", "Turn").objects.create(
            conversation=chat, position=1, role="user", content="q", status="complete")
        answer = old.get_model("conversations", "Turn").objects.create(
            conversation=chat, parent=question, position=2, role="assistant", status="streaming")

        executor = MigrationExecutor(connection)
        leaf = executor.loader.graph.leaf_nodes()
        executor.migrate(leaf)
        assert Conversation.objects.get(pk=chat.pk).source == Conversation.Source.CHAT_ENDPOINT
        assert Turn.objects.get(pk=answer.pk).status == Turn.Status.PENDING
        assert Turn.objects.running().filter(pk=answer.pk).exists()
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
