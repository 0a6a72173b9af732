"""A resent history continues its conversation when a client normalized it (Open WebUI trims the answer's
trailing whitespace, some clients write CRLF), through the real `openai` client; a different history never
does. And the migration that recomputed stored digests over normalized texts."""

import importlib

import pytest
from django.apps import apps

from accounts.models import ApiKey
from conversations import selectors
from conversations.models import Conversation, Turn
from conversations.services import conversation_create
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

normalized_digests = importlib.import_module("conversations.migrations.0018_normalized_history_digests")


def test_a_trimmed_answer_resent_continues_the_same_conversation(client, user, fake_upstream):  # noqa: F811
    """Open WebUI's habit: the answer, its trailing whitespace trimmed, resent with the next question."""
    fake_upstream.behaviour.reply = "Hello there.\n\n"
    messages = [{"role": "system", "content": "Be brief.\r\n"}, {"role": "user", "content": "one\r\nline two"}]
    reply = client.chat.completions.create(model="fake-model", messages=messages).choices[0].message.content
    assert reply == "Hello there.\n\n"  # stored and answered as the model wrote it

    resent = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one\nline two "},
              {"role": "assistant", "content": reply.rstrip()}, {"role": "user", "content": "two"}]
    client.chat.completions.create(model="fake-model", messages=resent)

    conversation = Conversation.objects.get(owner=user)
    assert conversation.turn_count == 4 and conversation.turns.count() == 4  # no copy of the history
    assert list(conversation.turns.order_by("position").values_list("content", flat=True)) == [
        "one\r\nline two", "Hello there.\n\n", "two", "Hello there.\n\n",
    ]


@pytest.mark.parametrize("changed", ["Hello  there.", "Hello there!", "hello there."])
def test_a_different_answer_resent_starts_a_new_conversation(client, user, fake_upstream, changed):  # noqa: F811
    fake_upstream.behaviour.reply = "Hello there. "
    first = [{"role": "user", "content": "one"}]
    client.chat.completions.create(model="fake-model", messages=first)
    client.chat.completions.create(model="fake-model", messages=[
        *first, {"role": "assistant", "content": changed}, {"role": "user", "content": "two"},
    ])
    assert Conversation.objects.filter(owner=user).count() == 2
    assert Conversation.objects.filter(owner=user, turn_count=2).get().turns.count() == 2  # the first as it was


def _old_digest_chain(conversation, contents):
    """Turns stored before texts were normalized: digests by the formula of then (frozen in the migration)."""
    digest = normalized_digests._root(conversation.system_prompt, False)
    parent = None
    for position, content in enumerate(contents, start=1):
        turn = Turn(conversation=conversation, parent=parent, position=position, content=content,
                    role=Turn.Role.USER if position % 2 else Turn.Role.ASSISTANT, status=Turn.Status.COMPLETE)
        digest = normalized_digests._next(digest, turn, [], False)
        turn.digest = digest
        turn.save()
        parent = turn
    conversation.current_turn, conversation.turn_count = parent, len(contents)
    conversation.save(update_fields=["current_turn", "turn_count"])
    return parent


def test_the_migration_lets_old_digests_match_normalized_histories(user):
    key = ApiKey.generate(user=user, name="sdk")[0]
    conversation = conversation_create(owner=user, title="old", system_prompt="Be brief.\n")
    conversation.api_key = key
    conversation.save(update_fields=["api_key"])
    last = _old_digest_chain(conversation, ["one", "Hello there.\n", "two", "Fine."])
    untouched = conversation_create(owner=user, title="normal already")
    untouched.api_key = key
    untouched.save(update_fields=["api_key"])
    normal_last = _old_digest_chain(untouched, ["three", "Done."])
    normal_digest = normal_last.digest

    def continued(system_prompt, *contents):
        history = [{"role": Turn.Role.USER if i % 2 == 0 else Turn.Role.ASSISTANT, "content": text}
                   for i, text in enumerate(contents)]
        return selectors.turn_continued_by(user=user, api_key=key, system_prompt=system_prompt, history=history)

    trimmed = ("Be brief.", "one", "Hello there.", "two", "Fine.")
    assert continued(*trimmed) is None  # before the migration: the stored digests are byte-exact

    normalized_digests.normalize_digests(apps, None)

    assert continued(*trimmed) == last
    assert continued("Be brief.\n", "one", "Hello there.\n", "two", "Fine.") == last  # sent exactly, as before
    assert continued("Be brief.", "one", "Hello there.", "two", "Fine!") is None
    normal_last.refresh_from_db()
    assert normal_last.digest == normal_digest and continued("", "three", "Done.") == normal_last
