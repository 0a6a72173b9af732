"""openai-python (async) against a live chatsite, as an integrator uses the newer APIs: a background response polled
to completion and one cancelled, a conversation created and then answered into with `conversation=`, and
embeddings with a model picked from the model list."""

import asyncio

import openai
import pytest
from openai import AsyncOpenAI

from conversations.models import Conversation, Turn
from conversations.tests.fake_upstream import fake_embedding
from conversations.tests.test_api_live import live_asgi, raw_key  # noqa: F401 (fixtures)
from tests.clients.helpers import stored_conversations

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def openai_client(live_asgi, raw_key, fake_upstream):  # noqa: F811
    return AsyncOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, max_retries=0, timeout=20)


async def polled(client, response_id: str, *, until: tuple[str, ...]):
    for _ in range(400):
        try:
            response = await client.responses.retrieve(response_id)
        except openai.InternalServerError as exc:
            # 503 "briefly unavailable, retry": the test database is SQLite in memory with a shared cache, where a
            # read that meets the answer's store gets "table is locked" at once instead of waiting. A client that
            # polls goes on polling; any other error fails the test.
            if exc.status_code != 503:
                raise
            await asyncio.sleep(0.05)
            continue
        if response.status in until:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"{response_id} is still {response.status}")


def test_background_responses_polled_and_cancelled(openai_client, user, fake_upstream):
    fake_upstream.behaviour.token_delay = 0.02

    async def scenario():
        quick = await openai_client.responses.create(model="fake-model", input="Quick.", background=True)
        done = await polled(openai_client, quick.id, until=("completed",))
        fake_upstream.behaviour.tokens, fake_upstream.behaviour.token_delay = 500, 0.05
        slow = await openai_client.responses.create(model="fake-model", input="Slow.", background=True)
        await polled(openai_client, slow.id, until=("in_progress",))
        cancelled = await openai_client.responses.cancel(slow.id)
        return quick, done, cancelled

    quick, done, cancelled = asyncio.run(scenario())
    assert quick.status == "queued" and done.output_text == fake_upstream.behaviour.reply
    assert cancelled.status == "cancelled"
    assert Turn.objects.filter(role="assistant").order_by("pk").last().status == Turn.Status.CANCELLED


def test_a_conversation_then_responses_in_it(openai_client, user, fake_upstream):
    async def scenario():
        conversation = await openai_client.conversations.create(metadata={"source": "script"})
        for text in ("Hi", "Again"):
            await openai_client.responses.create(model="fake-model", input=text, conversation=conversation.id)
        items = await openai_client.conversations.items.list(conversation.id, order="asc")
        return conversation, items

    conversation, items = asyncio.run(scenario())
    reply = fake_upstream.behaviour.reply
    assert [item.content[0].text for item in items.data] == ["Hi", reply, "Again", reply]
    assert stored_conversations(user) == [[("user", "Hi"), ("assistant", reply), ("user", "Again"),
                                           ("assistant", reply)]]
    assert Conversation.objects.get().metadata == {"source": "script"}


def test_embeddings_with_a_model_picked_from_the_list(openai_client, fake_upstream):
    async def scenario():
        listed = [model async for model in openai_client.models.list()]
        embedder = next(model.id for model in listed if model.purpose == "embeddings")
        return embedder, await openai_client.embeddings.create(model=embedder, input=["a", "b"])

    embedder, result = asyncio.run(scenario())
    assert embedder == "text-embedding-3-small" and result.model == embedder
    assert [row.embedding for row in result.data] == [pytest.approx(fake_embedding(t), abs=1e-6) for t in "ab"]
