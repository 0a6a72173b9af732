"""Versions: regenerate and edit add siblings in the turn tree; the user switches between them.

Through the REST API (session and key clients share the code) against the fake upstream over real HTTP.
"""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations import answering
from conversations.models import Conversation, Feedback, Turn
from conversations.services import conversation_create
from conversations.tests.api_helpers import assert_error
from conversations.tests.factories import conversation_with_history

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, url, body=None):
    return client.post(url, body or {}, format="json")


def branch(key_client, conversation, **params):
    response = key_client.get(f"/api/v1/conversations/{conversation.pk}/turns/", params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def texts(turns):
    return [turn["content"] for turn in turns]


def test_regenerate_keeps_every_version_and_switching_back_shows_the_first(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    fake_upstream.behaviour.reply = "first answer"
    first = answering.answer(conversation=conversation, user=user, content="question").assistant_turn
    Feedback.objects.create(turn=first, rating=1, comment="good")
    for reply in ("second answer", "third answer"):
        fake_upstream.behaviour.reply = reply
        response = post(key_client, f"/api/v1/conversations/{conversation.pk}/regenerate/")
        assert response.status_code == 200, response.content
    newest = response.json()["assistant_turn"]
    assert (newest["sibling_index"], newest["sibling_count"], newest["next_sibling_id"]) == (3, 3, None)

    turns = branch(key_client, conversation)
    assert texts(turns) == ["question", "third answer"]
    assert (turns[1]["sibling_index"], turns[1]["sibling_count"]) == (3, 3)
    assert (turns[0]["sibling_index"], turns[0]["sibling_count"]) == (1, 1)

    # Walk back with previous_sibling_id, as the page's "<" does.
    second_id = turns[1]["previous_sibling_id"]
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/switch/", {"turn_id": second_id})
    assert response.status_code == 200 and texts(response.json()["turns"]) == ["question", "second answer"]
    first_id = response.json()["turns"][1]["previous_sibling_id"]
    assert first_id == first.pk
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/switch/", {"turn_id": first_id})
    shown = response.json()["turns"][1]
    assert (shown["content"], shown["sibling_index"], shown["previous_sibling_id"]) == ("first answer", 1, None)

    # The choice is stored: another client (another device) sees the same branch.
    conversation.refresh_from_db()
    assert conversation.current_turn_id == first.pk
    assert texts(branch(key_client, conversation)) == ["question", "first answer"]
    # The old version kept its usage and feedback; every version's tokens count in usage.
    kept = Turn.objects.get(pk=first.pk)
    assert kept.status == Turn.Status.COMPLETE and kept.completion_tokens > 0 and kept.feedback.comment == "good"
    answers = Turn.objects.filter(conversation=conversation, role="assistant")
    spent = sum(t.prompt_tokens + t.completion_tokens for t in answers)
    assert answers.count() == 3 and key_client.get("/api/v1/usage/").json()["tokens_today"] == spent

    # A new message continues the branch shown, and the model is sent exactly that branch.
    answering.answer(conversation=conversation, user=user, content="follow-up")
    sent = [m["content"] for m in fake_upstream.chat_requests[-1].messages[1:]]
    assert sent == ["question", "first answer", "follow-up"]


def test_editing_the_first_message_forks_the_chat_and_both_branches_stay(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    for number in (1, 2, 3):
        fake_upstream.behaviour.reply = f"answer {number}"
        answering.answer(conversation=conversation, user=user, content=f"question {number}")
    original = branch(key_client, conversation)
    assert len(original) == 6

    fake_upstream.behaviour.reply = "answer to the edit"
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/turns/{original[0]['id']}/edit/",
                    {"content": "question 1, edited"})
    assert response.status_code == 201, response.content
    edited = response.json()["user_turn"]
    assert (edited["parent_id"], edited["position"], edited["sibling_index"], edited["sibling_count"]) == (
        None, 1, 2, 2)
    # The model saw only the new branch: the edited message, nothing from below the old one.
    assert [m["content"] for m in fake_upstream.chat_requests[-1].messages[1:]] == ["question 1, edited"]
    assert texts(branch(key_client, conversation)) == ["question 1, edited", "answer to the edit"]

    # Switch to the old first message: its branch comes back down to its newest turn.
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/switch/", {"turn_id": original[0]["id"]})
    assert texts(response.json()["turns"]) == texts(original)
    # Another branch can be read without switching to it.
    assert texts(branch(key_client, conversation, leaf=edited["id"])) == ["question 1, edited", "answer to the edit"]
    assert texts(branch(key_client, conversation)) == texts(original)

    # The tree holds everything; a middle message can be edited too.
    tree = key_client.get(f"/api/v1/conversations/{conversation.pk}/tree/").json()
    assert len(tree["turns"]) == 8 and tree["current_turn_id"] == original[-1]["id"]
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/turns/{original[2]['id']}/edit/",
                    {"content": "question 2, edited"})
    assert response.status_code == 201
    assert texts(branch(key_client, conversation))[:3] == ["question 1", "answer 1", "question 2, edited"]
    assert Conversation.objects.get(pk=conversation.pk).turn_count == 10


def test_edit_and_switch_refuse_what_is_not_theirs_to_change(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    run = answering.answer(conversation=conversation, user=user, content="question")
    other = conversation_create(owner=user)
    other_run = answering.answer(conversation=other, user=user, content="elsewhere")
    url = f"/api/v1/conversations/{conversation.pk}"
    # An answer is not a message to edit; a turn of another conversation is not found here.
    answer_url = f"{url}/turns/{run.assistant_turn.pk}/edit/"
    assert_error(post(key_client, answer_url, {"content": "x"}), 404, "nothing_to_edit")
    assert_error(post(key_client, f"{url}/turns/{other_run.user_turn.pk}/edit/", {"content": "x"}), 404)
    assert_error(post(key_client, f"{url}/switch/", {"turn_id": other_run.assistant_turn.pk}), 404)
    assert_error(post(key_client, f"{url}/switch/", {"turn_id": "x"}), 400, "invalid")
    assert_error(post(key_client, f"{url}/regenerate/", {"turn_id": other_run.assistant_turn.pk}), 409,
                 "nothing_to_regenerate")
    assert_error(key_client.get(f"{url}/turns/", {"leaf": other_run.assistant_turn.pk}), 404)
    assert_error(key_client.get(f"{url}/turns/", {"leaf": "²"}), 400, "invalid")
    assert Turn.objects.filter(conversation=conversation).count() == 2


def test_stop_then_regenerate_gives_a_complete_answer(user, fake_upstream):
    """The stop flag of a stopped answer must not stop the next version (it once did, for 10 minutes)."""
    conversation = conversation_create(owner=user)
    run = answering.answer(conversation=conversation, user=user, content="Tell me a long story")
    # Stop arrives after the answer was stored: the flag is left in the cache for the stopped turn.
    answering.stop_conversation(conversation)
    Turn.objects.filter(pk=run.assistant_turn.pk).update(status=Turn.Status.CANCELLED)
    fake_upstream.behaviour.reply = "a complete second story"
    again = answering.answer(conversation=conversation, user=user, regenerate=True)
    assert again.assistant_turn.pk != run.assistant_turn.pk
    stored = Turn.objects.get(pk=again.assistant_turn.pk)
    assert (stored.status, stored.content) == (Turn.Status.COMPLETE, "a complete second story")


def test_stop_during_an_answer_then_regenerate_completes(key_client, user, fake_upstream):
    from django.core.cache import cache

    from conversations import answering

    conversation = conversation_create(owner=user)
    fake_upstream.behaviour.token_delay = 0.05
    fake_upstream.behaviour.reply = " ".join(f"word{i}" for i in range(40))
    run = answering.begin(conversation=conversation, user=user, content="Tell me a long story")
    assert answering.stop_conversation(conversation).pk == run.assistant_turn.pk  # Stop while it is being written
    run.log.finished.wait()
    first = Turn.objects.get(pk=run.assistant_turn.pk)
    assert first.status == Turn.Status.CANCELLED and len(first.content.split()) < 40
    assert cache.get(f"chat:stop:{first.pk}") is None  # cleared once the answer was stored
    fake_upstream.behaviour.token_delay = 0
    again = post(key_client, f"/api/v1/conversations/{conversation.pk}/regenerate/")
    assert again.json()["assistant_turn"]["status"] == "complete"
    assert again.json()["assistant_turn"]["content"] == fake_upstream.behaviour.reply


def test_exports_hold_the_tree_as_json_and_the_branch_shown_as_markdown(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user, title="Forked")
    fake_upstream.behaviour.reply = "old answer"
    answering.answer(conversation=conversation, user=user, content="question")
    fake_upstream.behaviour.reply = "new answer"
    answering.answer(conversation=conversation, user=user, regenerate=True)
    url = f"/api/v1/conversations/{conversation.pk}/export/"
    document = key_client.get(url, {"format": "json"}).json()
    assert [t["content"] for t in document["turns"]] == ["question", "old answer", "new answer"]
    question_id = document["turns"][0]["id"]
    assert [t["parent_id"] for t in document["turns"]] == [None, question_id, question_id]
    assert document["current_turn_id"] == document["turns"][2]["id"]
    markdown = key_client.get(url, {"format": "md"}).content.decode()
    assert "new answer" in markdown and "old answer" not in markdown


def test_the_page_shows_the_version_switcher(authenticated_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="question")
    answering.answer(conversation=conversation, user=user, regenerate=True)
    html = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert html.count('class="turn-versions"') == 1
    assert "2 / 2" in html and 'aria-label="Version 2 of 2"' in html
    newest = Turn.objects.filter(conversation=conversation, role="assistant").order_by("id")
    assert f'data-turn-target="{newest[0].pk}"' in html
    fragment = authenticated_client.get(reverse("conversations:turn", args=[conversation.pk, newest[1].pk]))
    assert "2 / 2" in fragment.content.decode()


# --- Costs: constant in the number of turns and of versions ---------------------------------------------


def _count_queries(func) -> int:
    with CaptureQueriesContext(connection) as captured:
        func()
    return len(captured.captured_queries)


def _conversation_with_versions(user, turns: int, siblings: int):
    """`turns` turns on the branch shown, and `siblings` versions of its last answer and first message."""
    conversation = conversation_with_history(user, turns)
    last = conversation.current_turn
    first = Turn.objects.get(conversation=conversation, position=1)
    for number in range(siblings - 1):
        Turn.objects.create(conversation=conversation, parent=last.parent, position=last.position, role=last.role,
                            content=f"version {number}")
        Turn.objects.create(conversation=conversation, position=1, role="user", content=f"first {number}")
    # The branch shown ends at the oldest version of the last turn (so versions exist on both sides of it).
    assert first.parent_id is None
    return conversation


@pytest.mark.parametrize("dimension", ["turns", "siblings"])
def test_page_list_and_append_cost_the_same_whatever_the_turns_and_versions(
    authenticated_client, key_client, user, fake_upstream, dimension
):
    # From two turns: a chat of one message has no answer whose knowledge citations the page would look up.
    sizes = [(2, 1), (1000, 1)] if dimension == "turns" else [(2, 1), (2, 50)]
    key_client.get("/api/v1/usage/")  # the key's first use records its last-used time: not part of the costs
    counts = []
    for turns, siblings in sizes:
        conversation = _conversation_with_versions(user, turns, siblings)
        page = _count_queries(lambda c=conversation: authenticated_client.get(c.get_absolute_url()))
        listed = _count_queries(lambda c=conversation: key_client.get(f"/api/v1/conversations/{c.pk}/turns/"))
        # Each call as a request would make it, with its own user object (its groups' policy read once per request).
        append = _count_queries(lambda c=conversation: answering.answer(
            conversation=c, user=type(user).objects.get(pk=user.pk), content="more"))
        regenerate = _count_queries(lambda c=conversation: answering.answer(
            conversation=c, user=type(user).objects.get(pk=user.pk), regenerate=True))
        counts.append((page, listed, append, regenerate))
    assert counts[0] == counts[1], counts


def test_the_branch_is_read_in_one_query_whatever_its_depth(user, django_assert_num_queries):
    from conversations.selectors import turn_path

    conversation = conversation_with_history(user, 300)
    with django_assert_num_queries(2):  # the recursive path with the version columns, then the feedback
        turns = turn_path(conversation)
    assert [t.position for t in turns] == list(range(1, 301))
    assert all((t.sibling_count, t.sibling_index) == (1, 1) for t in turns)


# --- Migration: linear conversations become single-branch trees ----------------------------------------


def test_the_migration_turns_linear_conversations_into_single_branch_trees():
    executor = MigrationExecutor(connection)
    before, after = [("conversations", "0003_turn_ordering_without_join")], [("conversations", "0004_turn_versions")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    try:
        owner = old.get_model("accounts", "User").objects.create(username="legacy")
        OldConversation = old.get_model("conversations", "Conversation")
        OldTurn = old.get_model("conversations", "Turn")
        chat = OldConversation.objects.create(owner=owner, title="legacy", turn_count=6)
        rows = [("user", "q1", "complete"), ("assistant", "a1", "failed"), ("user", "q2", "complete"),
                ("assistant", "a2", "cancelled"), ("user", "q3", "complete"), ("assistant", "a3", "complete")]
        made = [OldTurn.objects.create(conversation=chat, position=n, role=role, content=text, status=status,
                                       prompt_tokens=5, completion_tokens=7)
                for n, (role, text, status) in enumerate(rows, start=1)]
        old.get_model("conversations", "Feedback").objects.create(turn_id=made[5].pk, rating=-1, comment="meh")
        empty = OldConversation.objects.create(owner=owner, title="empty")
        crashed = OldConversation.objects.create(owner=owner, title="crashed", turn_count=3)
        for n, status in [(1, "complete"), (2, "pending"), (3, "streaming")]:
            OldTurn.objects.create(conversation=crashed, position=n, role="user" if n == 1 else "assistant",
                                   status=status)

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps
        Turn_, Conversation_ = new.get_model("conversations", "Turn"), new.get_model("conversations", "Conversation")
        turns = list(Turn_.objects.filter(conversation_id=chat.pk).order_by("position"))
        assert [(t.content, t.status, t.prompt_tokens, t.completion_tokens) for t in turns] == [
            (text, status, 5, 7) for _, text, status in rows]
        assert [t.parent_id for t in turns] == [None, *[t.pk for t in turns[:-1]]]
        assert Conversation_.objects.get(pk=chat.pk).current_turn_id == turns[-1].pk
        assert new.get_model("conversations", "Feedback").objects.get(turn_id=turns[-1].pk).comment == "meh"
        assert Conversation_.objects.get(pk=empty.pk).current_turn_id is None
        # Two answers left running by a crash: the newest stays running, the other is failed.
        statuses = Turn_.objects.filter(conversation_id=crashed.pk).order_by("position").values_list("status",
                                                                                                      flat=True)
        assert list(statuses) == ["complete", "failed", "streaming"]
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
