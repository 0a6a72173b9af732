"""`manage.py prune_conversations --older-than DAYS [--dry-run]`: retention by last activity."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from conversations.management.commands import prune_conversations
from conversations.models import Conversation, Feedback, ReviewLog, Turn
from conversations.tests.admin_support import add_exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_and_new(user, other_user):
    now = timezone.now()
    old = []
    for number in range(3):
        conversation = Conversation.objects.create(owner=user if number else other_user, title=f"old {number}")
        add_exchange(conversation, "q", "a", rating=-1, at=now - timedelta(days=40 + number))
        ReviewLog.objects.create(conversation=conversation, reviewer=user)
        old.append(conversation)
    recent = Conversation.objects.create(owner=user, title="recent")
    add_exchange(recent, "q", "a", rating=1, at=now - timedelta(days=29))
    # Started long ago but active yesterday: last activity counts, not creation.
    revived = Conversation.objects.create(owner=user, title="revived", created_at=now - timedelta(days=400))
    add_exchange(revived, "q", "a", at=now - timedelta(days=1))
    return old, [recent, revived]


def run(*args):
    out = StringIO()
    call_command("prune_conversations", *args, stdout=out)
    return out.getvalue()


def test_dry_run_reports_and_deletes_nothing(old_and_new):
    before = (Conversation.objects.count(), Turn.objects.count(), Feedback.objects.count(), ReviewLog.objects.count())
    output = run("--older-than", "30", "--dry-run")
    assert "would delete 3 conversations, 6 turns, 3 feedback, 3 review log entries" in output
    assert (Conversation.objects.count(), Turn.objects.count(), Feedback.objects.count(),
            ReviewLog.objects.count()) == before


def test_prune_deletes_only_conversations_inactive_for_longer_than_days(old_and_new):
    old, kept = old_and_new
    output = run("--older-than", "30")
    assert "Deleted 3 conversations, 6 turns, 3 feedback, 3 review log entries" in output
    assert set(Conversation.objects.all()) == set(kept)
    assert Turn.objects.count() == 4
    assert Feedback.objects.count() == 1
    assert ReviewLog.objects.count() == 0

    assert "Deleted 0 conversations, 0 turns" in run("--older-than", "30")


def test_prune_works_in_batches(old_and_new, monkeypatch):
    monkeypatch.setattr(prune_conversations, "BATCH_SIZE", 2)
    output = run("--older-than", "30")  # three conversations: a batch of two, then one
    assert "Deleted 3 conversations, 6 turns" in output
    assert sorted(Conversation.objects.values_list("title", flat=True)) == ["recent", "revived"]


def test_cutoff_is_exclusive_of_more_recent_activity(old_and_new):
    run("--older-than", "41")
    assert sorted(Conversation.objects.values_list("title", flat=True)) == ["old 0", "recent", "revived"]


@pytest.mark.parametrize("value", ["0", "-3", "ten", "1.5"])
def test_bad_days_are_refused(value):
    with pytest.raises(CommandError, match="older-than"):
        run("--older-than", value)


def test_days_are_required():
    with pytest.raises(CommandError, match="older-than"):
        run()
