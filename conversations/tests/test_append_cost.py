"""One append costs the same number of queries whatever the length of the history.

The whole `answering.answer` runs against the fake upstream over real HTTP; the bench reports the times.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import answering
from conversations.models import Turn
from conversations.tests.factories import conversation_with_history

pytestmark = pytest.mark.django_db(transaction=True)

HISTORY_LENGTHS = (1, 100, 1000)


def history_reads(queries) -> list[str]:
    """The queries that read turn texts along the branch, i.e. the history sent to the model."""
    return [
        query["sql"] for query in queries
        if query["sql"].lstrip().upper().startswith("WITH RECURSIVE") and "t.content" in query["sql"]
    ]


def test_append_query_count_is_the_same_for_1_100_and_1000_turns_of_history(fake_upstream, user):
    counts, reads, sent = {}, {}, {}
    for turns in HISTORY_LENGTHS:
        conversation = conversation_with_history(user, turns)
        with CaptureQueriesContext(connection) as captured:
            run = answering.answer(conversation=conversation, user=user, content="one more question")
        assert run.assistant_turn.status == Turn.Status.COMPLETE
        counts[turns] = len(captured.captured_queries)
        reads[turns] = history_reads(captured.captured_queries)
        sent[turns] = len(fake_upstream.chat_requests[-1].messages)

    assert counts[1] == counts[100] == counts[1000], counts
    # In the calling thread: BEGIN, lock the conversation (with its current turn), look for a running answer,
    # insert the message, insert the answer (its parent is the message), update the conversation, COMMIT; read
    # the history (the branch, one recursive query); the user's custom instructions and their memories (personal
    # app, for the system prompt). The answer engine then stores the answer and the conversation's updated_at from
    # its own threads (two single-row UPDATEs, not captured here).
    assert counts[1] == 10, counts
    assert all(len(found) == 1 for found in reads.values()), reads
    # The history really was read and sent: system prompt + history + the new message
    # (1,000 short turns fit the default context budget, so nothing is trimmed).
    assert sent == {turns: turns + 2 for turns in HISTORY_LENGTHS}


def test_appends_store_both_turns_at_the_end_of_a_long_history(fake_upstream, user):
    conversation = conversation_with_history(user, 1000)
    answering.answer(conversation=conversation, user=user, content="after a thousand")
    conversation.refresh_from_db()
    assert conversation.turn_count == 1002
    tail = list(conversation.turns.filter(position__gt=1000).values_list("position", "role", "status"))
    assert tail == [(1001, "user", "complete"), (1002, "assistant", "complete")]
