"""One append costs the same number of queries whatever the length of the history, and reads the memories and the
knowledge bases only when there are some to give.

The whole `answering.answer` runs against the fake upstream over real HTTP; the bench reports the times
(bench/turn_profile.py: the turn path's CPU and queries per chat).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import answering, errors
from conversations.models import Turn
from conversations.services import conversation_create
from conversations.tests.factories import conversation_with_history
from knowledge.services import conversation_knowledge_set, knowledge_base_create
from personal import services as personal_services

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
        caller = type(user).objects.get(pk=user.pk)  # a request's own user: its policy is read once per request
        with CaptureQueriesContext(connection) as captured:
            run = answering.answer(conversation=conversation, user=caller, content="one more question")
        assert run.assistant_turn.status == Turn.Status.COMPLETE
        counts[turns] = len(captured.captured_queries)
        reads[turns] = history_reads(captured.captured_queries)
        sent[turns] = len(fake_upstream.chat_requests[-1].messages)

    assert counts[1] == counts[100] == counts[1000], counts
    # In the calling thread: the user's groups and budget override (teams.policy, one query: the models and tools
    # offered, once per request); BEGIN, lock the conversation (one query: its current turn and project, its running
    # answer if any, its assistant's instructions and its owner's custom instructions, whether they keep memories,
    # whether the chat has knowledge bases), insert the message, insert the answer (its parent is the message),
    # update the conversation, COMMIT; read the history (the branch, one recursive query). No memories and no
    # knowledge bases here, so no query for either. The answer engine then stores the answer and the conversation's
    # updated_at from its own threads (two single-row UPDATEs, not captured here).
    assert counts[1] == 8, counts
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


def append(user, conversation, content="a question") -> list[str]:
    """One answered message, as a request's own user sends it; the SQL of the calling thread's queries."""
    caller = type(user).objects.get(pk=user.pk)
    with CaptureQueriesContext(connection) as captured:
        answering.answer(conversation=conversation, user=caller, content=content)
    return [query["sql"] for query in captured.captured_queries]


def reads_of(table: str, queries: list[str]) -> list[str]:
    """The queries reading `table` itself (not in a subquery of another: those name it with an alias, U0...)."""
    return [sql for sql in queries if sql.lstrip().startswith("SELECT") and f'FROM "{table}" WHERE' in sql]


def test_memories_are_read_only_when_memory_is_on_and_there_are_some(fake_upstream, user):
    conversation = conversation_create(owner=user)
    assert reads_of("personal_memory", append(user, conversation)) == []  # none kept

    personal_services.memory_create(owner=user, content="Has a cat named Miso.")
    queries = append(user, conversation)
    assert len(reads_of("personal_memory", queries)) == 1 and len(queries) == 9
    assert "Has a cat named Miso." in fake_upstream.chat_requests[-1].messages[0]["content"]

    personal_services.personalization_update(user=user, memory_enabled=False)
    queries = append(user, conversation)
    assert reads_of("personal_memory", queries) == [] and len(queries) == 8
    assert "Miso" not in fake_upstream.chat_requests[-1].messages[0]["content"]


def test_knowledge_bases_are_read_only_for_a_chat_that_has_some(fake_upstream, user):
    without = conversation_create(owner=user)
    assert reads_of("knowledge_knowledgebase", append(user, without)) == []

    with_base = conversation_create(owner=user)
    conversation_knowledge_set(
        conversation=with_base, base_ids=[knowledge_base_create(owner=user, name="Handbook").pk]
    )
    assert len(reads_of("knowledge_knowledgebase", append(user, with_base))) == 1
    # The flag is the chat's own: the chat without bases still reads none.
    assert reads_of("knowledge_knowledgebase", append(user, without)) == []


def test_a_change_to_instructions_memories_or_groups_shows_at_the_very_next_turn(
    fake_upstream, user, settings
):
    from django.contrib.auth.models import Group

    from teams.models import GroupPolicy

    settings.CHAT_MODELS = ["fake-model", "other-model"]
    conversation = conversation_create(owner=user, model="fake-model")
    append(user, conversation)
    personal_services.personalization_update(user=user, about_me="I teach physics.")
    memory = personal_services.memory_create(owner=user, content="Lives in Busan.")
    append(user, conversation)
    system = fake_upstream.chat_requests[-1].messages[0]["content"]
    assert "I teach physics." in system and "Lives in Busan." in system

    personal_services.personalization_update(user=user, about_me="I teach chemistry.")
    personal_services.memory_delete(memory=memory)
    append(user, conversation)
    system = fake_upstream.chat_requests[-1].messages[0]["content"]
    assert "I teach chemistry." in system and "physics" not in system and "Busan" not in system

    # A group that no longer allows the chat's model: the next turn is refused.
    group = Group.objects.create(name="others only")
    GroupPolicy.objects.create(group=group, allowed_models=["other-model"])
    group.user_set.add(user)
    with pytest.raises(errors.ModelNotFound):
        append(user, conversation)


def test_a_chat_in_a_project_reads_its_instructions_with_the_lock(fake_upstream, user):
    from conversations.organizing import project_create

    project = project_create(owner=user, name="Physics", instructions="Answer in SI units.")
    conversation = conversation_create(owner=user, project=project)
    queries = append(user, conversation)
    assert len(queries) == 8 and reads_of("conversations_project", queries) == []
    assert "Answer in SI units." in fake_upstream.chat_requests[-1].messages[0]["content"]
