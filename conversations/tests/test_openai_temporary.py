"""`store: false` on Chat Completions, as Open WebUI's background tasks (titles, tags, follow-ups) can send it:
answered and counted, never in the history list, deleted like a temporary chat; through the real `openai` client."""

import openai
import pytest

from accounts.models import ApiKey
from conversations import selectors
from conversations.models import Conversation, DailyUsage
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

TASK = [{"role": "user", "content": "### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat."}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_task_with_store_false_is_answered_counted_and_not_listed(client, user, fake_upstream, stream):  # noqa: F811
    response = client.chat.completions.create(model="fake-model", messages=TASK, store=False, stream=stream)
    text = ("".join(c.choices[0].delta.content or "" for c in response if c.choices) if stream
            else response.choices[0].message.content)
    assert text == fake_upstream.behaviour.reply
    conversation = Conversation.objects.get(owner=user)
    assert conversation.delete_after is not None and not selectors.conversation_list(user=user).exists()
    assert DailyUsage.objects.get(user=user).answers == 1
    assert len(fake_upstream.chat_requests) == 1  # no title call for a chat nobody lists


def test_store_false_never_touches_a_stored_chat(client, user, fake_upstream):  # noqa: F811
    first = [{"role": "user", "content": "one"}]
    reply = client.chat.completions.create(model="fake-model", messages=first).choices[0].message.content
    stored = Conversation.objects.get(owner=user)

    resent = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": TASK[0]["content"]}]
    client.chat.completions.create(model="fake-model", messages=resent, store=False)
    assert stored.turns.count() == 2 and list(selectors.conversation_list(user=user)) == [stored]
    copy = Conversation.objects.exclude(pk=stored.pk).get()
    assert copy.delete_after is not None and copy.turns.count() == 4

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=TASK, store=False,
                                       extra_headers={"X-Chatsite-Conversation": str(stored.pk)})
    assert caught.value.body["param"] == "store" and stored.turns.count() == 2


@pytest.fixture
def unstored_key_client(live_asgi, user, fake_upstream):  # noqa: F811
    """The client of a key whose owner keeps its chats out of the history (for a tool that cannot send store)."""
    _, raw = ApiKey.generate(user=user, name="open webui tasks", store_chats=False)
    return openai.OpenAI(base_url=f"{live_asgi}/v1", api_key=raw, max_retries=0, timeout=20)


def test_a_key_that_keeps_its_chats_out_of_the_history(unstored_key_client, user, fake_upstream):
    completion = unstored_key_client.chat.completions.create(model="fake-model", messages=TASK)
    response = unstored_key_client.responses.create(model="fake-model", input="Another task.")
    assert completion.choices[0].message.content == response.output_text == fake_upstream.behaviour.reply
    assert response.store is False
    chats = Conversation.objects.filter(owner=user)
    assert chats.count() == 2 and all(chat.delete_after is not None for chat in chats)
    assert not selectors.conversation_list(user=user).exists()
    assert DailyUsage.objects.get(user=user).answers == 2
    assert len(fake_upstream.chat_requests) == 2  # no title calls


def test_such_a_key_cannot_write_into_a_stored_chat(client, unstored_key_client, user, fake_upstream):  # noqa: F811
    client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "one"}])
    stored = Conversation.objects.get(owner=user)
    with pytest.raises(openai.BadRequestError) as caught:
        unstored_key_client.chat.completions.create(model="fake-model", messages=TASK,
                                                    extra_headers={"X-Chatsite-Conversation": str(stored.pk)})
    assert caught.value.body["param"] == "store"
    with pytest.raises(openai.BadRequestError) as through_conversation:
        unstored_key_client.responses.create(model="fake-model", input="x", conversation=str(stored.pk))
    assert through_conversation.value.body["param"] == "store" and stored.turns.count() == 2

