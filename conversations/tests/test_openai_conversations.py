"""The Conversations API (`/v1/conversations` and its items) and `responses.create(conversation=...)`, through the
real `openai` client against a live chatsite: one stored conversation whichever side (the SDK, the page's API)
writes to it."""

import openai
import pytest

from conversations import answering, selectors
from conversations.models import Conversation
from conversations.services import conversation_create
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def thread(conversation: Conversation) -> list[tuple[str, str]]:
    conversation.refresh_from_db()
    return [(turn.role, turn.content) for turn in selectors.turn_path(conversation)]


def test_create_retrieve_update_and_delete(client, user):  # noqa: F811
    created = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Hi"},
               {"type": "message", "role": "assistant", "content": "Hello!"}],
        metadata={"topic": "greetings"},
    )
    assert created.id.startswith("conv_") and created.metadata == {"topic": "greetings"}
    stored = Conversation.objects.get(owner=user)
    assert created.id == f"conv_{stored.pk.hex}" and thread(stored) == [("user", "Hi"), ("assistant", "Hello!")]
    assert list(selectors.conversation_list(user=user)) == [stored]  # listed on the page like any chat

    assert client.conversations.retrieve(created.id).metadata == {"topic": "greetings"}
    updated = client.conversations.update(created.id, metadata={"topic": "farewells"})
    assert updated.metadata == {"topic": "farewells"}
    stored.refresh_from_db()
    assert stored.metadata == {"topic": "farewells"}

    deleted = client.conversations.delete(created.id)
    assert deleted.deleted and deleted.id == created.id
    assert not Conversation.objects.exists()
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(created.id)


def test_metadata_has_openais_limits(client):  # noqa: F811
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.create(metadata={f"k{n}": "v" for n in range(17)})
    assert caught.value.body["param"] == "metadata"
    assert not Conversation.objects.exists()


def test_items_are_the_thread_shown_a_page_at_a_time(client, user, fake_upstream):  # noqa: F811
    conversation = client.conversations.create(items=[{"role": "user", "content": "one"},
                                                      {"role": "assistant", "content": "two"}])
    client.responses.create(model="fake-model", input="three", conversation=conversation.id)
    reply = fake_upstream.behaviour.reply

    newest_first = client.conversations.items.list(conversation.id, limit=3)
    texts = [item.content[0].text for item in newest_first.data]
    assert texts == [reply, "three", "two"] and newest_first.has_more
    oldest_first = list(client.conversations.items.list(conversation.id, order="asc", limit=1))  # every page
    assert [(item.role, item.content[0].text) for item in oldest_first] == [
        ("user", "one"), ("assistant", "two"), ("user", "three"), ("assistant", reply),
    ]
    first = oldest_first[0]
    assert client.conversations.items.retrieve(first.id, conversation_id=conversation.id).content[0].text == "one"


def test_items_cannot_be_added_or_taken_out_one_by_one(client, user):  # noqa: F811
    conversation = client.conversations.create(items=[{"role": "user", "content": "one"},
                                                      {"role": "assistant", "content": "two"}])
    item = client.conversations.items.list(conversation.id).data[0]
    with pytest.raises(openai.BadRequestError) as added:
        client.conversations.items.create(conversation.id, items=[{"role": "user", "content": "three"}])
    assert added.value.body["code"] == "unsupported_operation" and "POST /v1/responses" in added.value.message
    with pytest.raises(openai.BadRequestError) as removed:
        client.conversations.items.delete(item.id, conversation_id=conversation.id)
    assert removed.value.body["code"] == "unsupported_operation"
    assert thread(Conversation.objects.get()) == [("user", "one"), ("assistant", "two")]


def test_responses_go_on_in_the_conversation(client, user, fake_upstream):  # noqa: F811
    conversation = client.conversations.create()
    reply = fake_upstream.behaviour.reply
    first = client.responses.create(model="fake-model", input="Hi", conversation=conversation.id,
                                    instructions="Be brief.")
    second = client.responses.create(model="fake-model", input="Again", conversation={"id": conversation.id})
    assert first.conversation.id == conversation.id == second.conversation.id
    stored = Conversation.objects.get()
    assert stored.system_prompt == "Be brief."
    assert thread(stored) == [("user", "Hi"), ("assistant", reply), ("user", "Again"), ("assistant", reply)]
    # The model saw the whole thread: the stored conversation is the history.
    sent = fake_upstream.chat_requests[-1].messages
    assert [m["content"] for m in sent if m["role"] != "system"] == ["Hi", reply, "Again"]


def test_an_sdk_goes_on_with_a_chat_started_on_the_page_and_the_page_with_the_sdks(
    client, user, fake_upstream, key_client,  # noqa: F811
):
    reply = fake_upstream.behaviour.reply
    on_page = conversation_create(owner=user, title="from the page")
    answering.answer(conversation=on_page, user=user, content="typed on the page")
    client.responses.create(model="fake-model", input="sent by a script", conversation=str(on_page.pk))
    assert thread(on_page) == [("user", "typed on the page"), ("assistant", reply),
                               ("user", "sent by a script"), ("assistant", reply)]

    by_sdk = client.conversations.create(items=[{"role": "user", "content": "from the SDK"}])
    stored = Conversation.objects.get(pk=by_sdk.id.removeprefix("conv_"))
    response = key_client.post(f"/api/v1/conversations/{stored.pk}/turns/", {"content": "typed on the page"},
                               format="json")
    assert response.status_code == 201, response.content
    assert thread(stored) == [("user", "from the SDK"), ("user", "typed on the page"), ("assistant", reply)]


def test_another_users_conversation_is_not_found(client, other_user, fake_upstream):  # noqa: F811
    theirs = conversation_create(owner=other_user, title="bob's")
    answering.answer(conversation=theirs, user=other_user, content="bob's question")
    fake_upstream.requests.clear()
    for name in (f"conv_{theirs.pk.hex}", str(theirs.pk), "conv_nothing"):
        with pytest.raises(openai.NotFoundError):
            client.conversations.retrieve(name)
        with pytest.raises(openai.NotFoundError):
            client.conversations.items.list(name)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="fake-model", input="mine now", conversation=name)
    assert theirs.turns.count() == 2 and fake_upstream.chat_requests == []


def test_conversation_and_previous_response_id_do_not_mix(client, fake_upstream):  # noqa: F811
    conversation = client.conversations.create()
    first = client.responses.create(model="fake-model", input="Hi", conversation=conversation.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fake-model", input="Again", conversation=conversation.id,
                                previous_response_id=first.id)
    assert caught.value.body["param"] == "conversation"


def test_the_input_after_a_conversation_is_only_the_new_message(client, fake_upstream):  # noqa: F811
    conversation = client.conversations.create(items=[{"role": "user", "content": "one"},
                                                      {"role": "assistant", "content": "two"}])
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fake-model", conversation=conversation.id, input=[
            {"role": "user", "content": "resent"}, {"role": "assistant", "content": "resent"},
            {"role": "user", "content": "new"},
        ])
    assert caught.value.body["param"] == "input" and fake_upstream.chat_requests == []
