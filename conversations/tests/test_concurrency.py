"""Concurrent appends to one conversation: positions stay gapless and unique, losers get 'busy'."""

import threading

import pytest
from django.db import connection

from conversations import answering, errors
from conversations.models import Turn
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_concurrent_appends(fake_upstream, user):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL feature; SQLite serializes writers (run in CI on PostgreSQL)")
    fake_upstream.behaviour.ttft = 0.3  # the answers overlap
    conversation = conversation_create(owner=user)
    barrier = threading.Barrier(20)
    outcomes, unexpected = [], []

    def append(i):
        try:
            barrier.wait()
            answering.answer(conversation=conversation, user=user, content=f"message {i}")
            outcomes.append("ok")
        except errors.ConversationBusy:
            outcomes.append("busy")
        except Exception as exc:  # anything else is a bug
            unexpected.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=append, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert unexpected == []
    assert len(outcomes) == 20
    turns = Turn.objects.filter(conversation=conversation).order_by("position")
    positions = list(turns.values_list("position", flat=True))
    assert positions == list(range(1, len(positions) + 1))
    assert len(positions) == 2 * outcomes.count("ok")
    assert outcomes.count("ok") >= 1
    conversation.refresh_from_db()
    assert conversation.turn_count == len(positions)
