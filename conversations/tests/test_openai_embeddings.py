"""`/v1/embeddings` relayed to the upstream through conversations.llm (the fake upstream's deterministic vectors),
through the real `openai` client: floats and base64, the key's quota and throttle, and a clear refusal when the
configured backend has no embeddings."""

import asyncio
import base64
import struct

import openai
import pytest
from django.core.cache import cache
from django.utils import timezone

from conversations import llm
from conversations.models import DailyUsage
from conversations.tests.fake_upstream import fake_embedding
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "text-embedding-3-small"


@pytest.mark.parametrize("encoding_format", [None, "float", "base64"])
def test_embeddings_are_the_upstreams_in_order(client, user, fake_upstream, encoding_format):  # noqa: F811
    texts = ["the first text", "a second one"]
    extra = {"encoding_format": encoding_format} if encoding_format else {}  # the client's default is base64
    result = client.embeddings.create(model=MODEL, input=texts, **extra)
    assert [row.index for row in result.data] == [0, 1]
    for row, text in zip(result.data, texts, strict=True):
        vector = row.embedding
        if encoding_format == "base64":  # asked for, the client hands it over as sent (it decodes its own default)
            raw = base64.b64decode(vector)
            vector = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        # base64 carries float32s: equal to the upstream's floats within float32's precision.
        assert vector == pytest.approx(fake_embedding(text), abs=1e-6)
    assert result.model == MODEL and result.usage.prompt_tokens == 6
    sent = fake_upstream.embedding_requests[-1].body
    assert sent == {"model": MODEL, "input": texts, "encoding_format": "float"}
    usage = DailyUsage.objects.get(user=user)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.answers) == (6, 0, 0)  # counted, and no answer


def test_dimensions_are_passed_on(client, fake_upstream):  # noqa: F811
    result = client.embeddings.create(model=MODEL, input="short", dimensions=3, encoding_format="float")
    assert result.data[0].embedding == fake_embedding("short", 3)
    assert fake_upstream.embedding_requests[-1].body["dimensions"] == 3


async def embed(texts: list[str]) -> list[list[float]]:
    """llm.embed on a loop of its own, whose upstream session is closed before the loop goes."""
    try:
        return await llm.embed(texts)
    finally:
        await llm.close_sessions()


def test_the_llm_module_embeds_for_other_code(fake_upstream):
    assert asyncio.run(embed(["one", "two"])) == [fake_embedding("one"), fake_embedding("two")]
    assert asyncio.run(embed([])) == []


def test_the_model_list_offers_the_embedding_models_for_embeddings(client, settings, fake_upstream):  # noqa: F811
    """As OpenAI's: one list, whose embedding ids /v1/embeddings takes; `purpose` says which endpoint each is for."""
    settings.EMBEDDING_MODELS = [MODEL, "text-embedding-3-large"]
    settings.CHAT_CONTEXT_TOKENS_BY_MODEL = {"text-embedding-3-large": 8191}
    listed = {model.id: model.to_dict() for model in client.models.list()}
    assert list(listed) == ["fake-model", MODEL, "text-embedding-3-large"]
    assert [model["purpose"] for model in listed.values()] == ["chat", "embeddings", "embeddings"]
    assert listed["text-embedding-3-large"] == client.models.retrieve("text-embedding-3-large").to_dict() == {
        "id": "text-embedding-3-large", "object": "model", "created": 0, "owned_by": "chatsite",
        "purpose": "embeddings", "context_length": 8191, "max_output_tokens": None,
        "capabilities": {"vision": False, "tools": False},
    }
    assert listed[MODEL]["context_length"] is None  # the upstream's limit, not stated by the site
    for name, model in listed.items():
        if model["purpose"] == "embeddings":
            assert client.embeddings.create(model=name, input="listed", encoding_format="float").model == name
    assert [request.body["model"] for request in fake_upstream.embedding_requests] == [
        MODEL, "text-embedding-3-large"
    ]
    with pytest.raises(openai.NotFoundError):  # a chat model is no embedding model
        client.embeddings.create(model="fake-model", input="x")


def test_no_embedding_model_is_listed_without_embeddings(client, settings, fake_upstream):  # noqa: F811
    settings.LLM_BACKEND = "local"  # the embedded model's server: no embeddings (it is not asked for models here)
    assert [model.purpose for model in client.models.list()] == ["chat"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(MODEL)


def test_an_unknown_model_and_token_arrays_are_refused(client, fake_upstream):  # noqa: F811
    with pytest.raises(openai.NotFoundError) as unknown:
        client.embeddings.create(model="no-such-embedder", input="x")
    assert unknown.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as tokens:
        client.embeddings.create(model=MODEL, input=[[1, 2, 3]])
    assert tokens.value.body["param"] == "input"
    assert fake_upstream.embedding_requests == []


def test_the_embedded_model_has_no_embeddings(client, settings, fake_upstream):  # noqa: F811
    settings.LLM_BACKEND = "local"
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input="x")
    assert caught.value.body["code"] == "embeddings_unsupported" and "SmolLM2" in caught.value.message
    with pytest.raises(Exception, match="SmolLM2"):
        asyncio.run(embed(["x"]))


def test_the_daily_quota_applies(client, user, settings, fake_upstream):  # noqa: F811
    settings.CHAT_DAILY_TOKEN_QUOTA = 100
    DailyUsage.objects.create(user=user, day=timezone.localdate(), prompt_tokens=100, answers=1)
    with pytest.raises(openai.RateLimitError) as caught:
        client.embeddings.create(model=MODEL, input="over the quota")
    assert caught.value.body["code"] == "quota_exceeded" and fake_upstream.embedding_requests == []


def test_the_chat_throttle_applies(client, settings, fake_upstream):  # noqa: F811
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"chat": "2/min"}}
    client.embeddings.create(model=MODEL, input="one")
    client.embeddings.create(model=MODEL, input="two")
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model=MODEL, input="three")
    assert len(fake_upstream.embedding_requests) == 2


def test_an_upstream_failure_is_the_upstreams_error(client, fake_upstream):  # noqa: F811
    fake_upstream.behaviour.fail_status = 400
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model=MODEL, input="x")
    assert caught.value.status_code == 502 and caught.value.body["code"] == "upstream_rejected"
