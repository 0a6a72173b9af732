"""Test data for the review panel tests: conversations with turns, tokens, failures and feedback."""

import importlib
from datetime import datetime
from types import SimpleNamespace

from django.apps import apps
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from conversations.models import Conversation, Feedback, Turn, review_totals

XSS_PAYLOAD = '<script>window.__xss = "script";</script><img src="x" onerror="window.__xss = \'img\'"><b>bold?</b>'


def reviewers_group() -> Group:
    """The group migration 0002 made. A transactional test's flush deletes migration data, so after one
    the same migration step is run again (the real code, not a copy of its permission list)."""
    group = Group.objects.filter(name="Reviewers").first()
    if group is None:
        migration = importlib.import_module("conversations.migrations.0002_reviewers_group")
        migration.create_reviewers_group(apps, SimpleNamespace(connection=connection))
        group = Group.objects.get(name="Reviewers")
    return group


def make_reviewer(make_user, username="rita"):
    reviewer = make_user(username, is_staff=True)
    reviewer.groups.add(reviewers_group())
    return reviewer


def add_exchange(
    conversation: Conversation,
    question: str,
    answer: str,
    *,
    status: str = Turn.Status.COMPLETE,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    rating: int | None = None,
    comment: str = "",
    at: datetime | None = None,
    error: str = "",
) -> tuple[Turn, Turn]:
    """Append a user question and an assistant answer below the current turn, as the service does."""
    at = at or timezone.now()
    parent = conversation.current_turn
    position = parent.position if parent else 0
    question_turn = Turn.objects.create(
        conversation=conversation, parent=parent, position=position + 1, role=Turn.Role.USER, content=question,
        created_at=at,
    )
    answer_turn = Turn.objects.create(
        conversation=conversation, parent=question_turn, position=position + 2, role=Turn.Role.ASSISTANT,
        content=answer, status=status, model="fake-model", prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens, latency_ms=120, first_token_ms=40, error=error, created_at=at,
        completed_at=at,
    )
    if rating is not None:
        Feedback.objects.create(turn=answer_turn, rating=rating, comment=comment)
    conversation.turn_count += 2
    conversation.current_turn = answer_turn
    conversation.updated_at = at
    conversation.save(update_fields=["turn_count", "current_turn", "updated_at"])
    Conversation.objects.filter(pk=conversation.pk).update(**review_totals())  # as the services keep them
    return question_turn, answer_turn


def make_conversation(owner, title: str = "", *, exchanges: int = 1, **fields) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title=title, model="fake-model", **fields)
    for number in range(1, exchanges + 1):
        add_exchange(conversation, f"question {number}", f"answer {number}", rating=1 if number == 1 else None)
    return conversation
