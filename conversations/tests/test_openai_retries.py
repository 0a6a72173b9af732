"""An SDK's retries land on the first attempt's answer (conversations.api.idempotency): the real `openai` client
with its own retries, over real HTTP, against an upstream that fails."""

import openai
import pytest

from conversations.models import Conversation, Turn
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def retrying_client(live_asgi, raw_key, fake_upstream):  # noqa: F811
    return openai.OpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, max_retries=2, timeout=20)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_sdk_retries_of_a_failed_answer_make_one_conversation_and_no_more_upstream_calls(
    retrying_client, user, fake_upstream, settings, stream,
):
    fake_upstream.behaviour.fail_status = 500  # every call fails
    with pytest.raises(openai.InternalServerError) as caught:
        retrying_client.chat.completions.create(model="fake-model", messages=HI, stream=stream)
    assert Conversation.objects.filter(owner=user).count() == 1
    assert Turn.objects.filter(role="assistant").get().status == Turn.Status.FAILED
    # The server's own retries of the first attempt, and none for the client's two retries.
    assert len(fake_upstream.chat_requests) == settings.OPENAI_MAX_RETRIES + 1
    assert "earlier attempt failed" in caught.value.message  # the client's last retry got the first failure


def test_the_same_body_after_an_answer_is_a_new_request(client, user, fake_upstream):  # noqa: F811
    first = client.chat.completions.create(model="fake-model", messages=HI)
    again = client.chat.completions.create(model="fake-model", messages=HI)
    assert first.id != again.id and len(fake_upstream.chat_requests) == 2


def test_an_idempotency_key_replays_the_first_attempts_outcome(client, user, fake_upstream, settings):  # noqa: F811
    fake_upstream.behaviour.fail_status, fake_upstream.behaviour.fail_count = 500, settings.OPENAI_MAX_RETRIES + 1
    failing = {"Idempotency-Key": "request-1"}
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="fake-model", messages=HI, extra_headers=failing)
    assert len(fake_upstream.chat_requests) == settings.OPENAI_MAX_RETRIES + 1  # the upstream recovered since
    assert Conversation.objects.filter(owner=user).count() == 1

    answered = {"Idempotency-Key": "request-2"}
    first = client.chat.completions.create(model="fake-model", messages=HI, extra_headers=answered)
    calls = len(fake_upstream.chat_requests)
    again = client.chat.completions.create(model="fake-model", messages=HI, extra_headers=answered)
    assert again.id == first.id and again.choices[0].message.content == first.choices[0].message.content
    assert len(fake_upstream.chat_requests) == calls and Conversation.objects.filter(owner=user).count() == 2

    def streamed_text(headers):
        stream = client.chat.completions.create(model="fake-model", messages=HI, extra_headers=headers,
                                                stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        assert chunks[-1].usage.completion_tokens > 0 and chunks[-2].choices[0].finish_reason == "stop"
        return chunks[0].id, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert streamed_text({"Idempotency-Key": "request-3"}) == streamed_text({"Idempotency-Key": "request-3"})
    assert len(fake_upstream.chat_requests) == calls + 1

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "other"}],
                                       extra_headers=answered)
    assert caught.value.body["param"] == "Idempotency-Key" and "another request body" in caught.value.message


def test_responses_retries_land_on_the_first_attempt(retrying_client, client, user, fake_upstream, settings):  # noqa: F811
    fake_upstream.behaviour.fail_status = 500
    with pytest.raises(openai.InternalServerError):
        retrying_client.responses.create(model="fake-model", input="hi")
    assert Conversation.objects.filter(owner=user).count() == 1
    assert len(fake_upstream.chat_requests) == settings.OPENAI_MAX_RETRIES + 1

    fake_upstream.behaviour.fail_status = None
    key = {"Idempotency-Key": "response-1"}
    first = client.responses.create(model="fake-model", input="hello", extra_headers=key)
    again = client.responses.create(model="fake-model", input="hello", extra_headers=key)
    assert again.id == first.id and again.output_text == first.output_text
    assert len(fake_upstream.chat_requests) == settings.OPENAI_MAX_RETRIES + 2

    streamed = {"Idempotency-Key": "response-2"}
    completed = [e for e in client.responses.create(model="fake-model", input="hello", extra_headers=streamed,
                                                    stream=True) if e.type == "response.completed"]
    with pytest.raises(openai.ConflictError) as caught:  # a stream is not replayed: the response is named
        client.responses.create(model="fake-model", input="hello", extra_headers=streamed, stream=True)
    assert completed[0].response.id in caught.value.message


def test_a_key_whose_conversation_was_deleted_starts_afresh(client, user, fake_upstream):  # noqa: F811
    key = {"Idempotency-Key": "request-4"}
    first = client.chat.completions.create(model="fake-model", messages=HI, extra_headers=key)
    Conversation.objects.filter(owner=user).delete()
    again = client.chat.completions.create(model="fake-model", messages=HI, extra_headers=key)
    assert again.id != first.id and Conversation.objects.filter(owner=user).count() == 1
