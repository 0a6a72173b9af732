"""Model continuity on an answer: a new version by another model, and "continue" on an answer that was stopped or
cut at its length (the same answer grows); through the REST API, against the fake upstream over real HTTP."""

import json

import pytest
from django.test import AsyncClient

from conversations import answering
from conversations.models import Conversation, DailyUsage, Turn
from conversations.services import conversation_create
from conversations.services.turns import CONTINUE_PROMPT
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, url, body=None):
    return client.post(url, body or {}, format="json")


@pytest.fixture
def two_models(settings, fake_upstream):
    settings.CHAT_MODELS = ["fake-model", "other-model"]
    return fake_upstream


def test_regenerate_with_another_model_adds_a_version_labelled_with_it(key_client, user, two_models):
    conversation = conversation_create(owner=user)
    first = answering.answer(conversation=conversation, user=user, content="question").assistant_turn

    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/regenerate/",
                    {"turn_id": first.pk, "model": "other-model"})

    assert response.status_code == 200, response.content
    version = response.json()["assistant_turn"]
    assert (version["model"], version["sibling_index"], version["sibling_count"]) == ("other-model", 2, 2)
    assert [request.body["model"] for request in two_models.chat_requests] == ["fake-model", "other-model"]
    assert Turn.objects.get(pk=first.pk).model == "fake-model"  # the first version keeps its label
    assert Conversation.objects.get(pk=conversation.pk).model == ""  # the chat's own model stays


def test_regenerate_with_a_model_not_offered_is_400_and_asks_nothing(key_client, user, two_models):
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="question")
    two_models.requests.clear()

    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/regenerate/", {"model": "gpt-imaginary"})

    assert_error_shape(response, 400)
    assert two_models.chat_requests == []
    assert Turn.objects.filter(conversation=conversation).count() == 2


@pytest.fixture
def cut_answer(user, fake_upstream, settings):
    """An answer cut at its length: the fake upstream stops at CHAT_MAX_ANSWER_TOKENS with finish_reason length."""
    settings.CHAT_MAX_ANSWER_TOKENS = 3
    fake_upstream.behaviour.reply = "one two three four five six"
    conversation = conversation_create(owner=user)
    answer = answering.answer(conversation=conversation, user=user, content="Count to six").assistant_turn
    assert (answer.finish_reason, answer.content) == ("length", "one two three ")
    settings.CHAT_MAX_ANSWER_TOKENS = 100
    fake_upstream.requests.clear()
    return conversation, Turn.objects.get(pk=answer.pk)


def test_continue_grows_the_same_answer_and_the_model_gets_the_text_so_far(key_client, cut_answer, fake_upstream):
    conversation, answer = cut_answer
    fake_upstream.behaviour.reply = "four five six"

    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/continue/", {"turn_id": answer.pk})

    assert response.status_code == 200, response.content
    body = response.json()["assistant_turn"]
    assert (body["id"], body["content"], body["status"], body["finish_reason"]) == (
        answer.pk, "one two three four five six", "complete", "stop")
    assert response.json()["user_turn"] is None
    [request] = fake_upstream.chat_requests
    assert request.messages[-3:] == [
        {"role": "user", "content": "Count to six"},
        {"role": "assistant", "content": "one two three "},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]
    assert Turn.objects.filter(conversation=conversation).count() == 2  # no new turn: the answer grew
    assert Conversation.objects.get(pk=conversation.pk).current_turn_id == answer.pk


def test_continue_adds_only_the_new_tokens_to_the_ledger_and_the_answers_usage(key_client, cut_answer, fake_upstream):
    conversation, answer = cut_answer
    before = DailyUsage.objects.get()
    fake_upstream.behaviour.reply = "four five six"

    post(key_client, f"/api/v1/conversations/{conversation.pk}/continue/", {"turn_id": answer.pk})

    stored = Turn.objects.get(pk=answer.pk)
    after = DailyUsage.objects.get()
    added = (after.prompt_tokens - before.prompt_tokens, after.completion_tokens - before.completion_tokens)
    assert added[1] > 0
    assert (stored.prompt_tokens, stored.completion_tokens) == (
        answer.prompt_tokens + added[0], answer.completion_tokens + added[1])


def test_a_stopped_answer_can_be_continued(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    answer = answering.answer(conversation=conversation, user=user, content="Tell a story").assistant_turn
    Turn.objects.filter(pk=answer.pk).update(status=Turn.Status.CANCELLED, finish_reason="cancelled",
                                             content="Once upon")
    fake_upstream.behaviour.reply = " a time."

    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/continue/", {"turn_id": answer.pk})

    assert response.status_code == 200, response.content
    assert response.json()["assistant_turn"]["content"] == "Once upon a time."


async def test_a_continued_answer_streams_only_its_new_text(api_key, cut_answer, fake_upstream):
    conversation, answer = cut_answer
    fake_upstream.behaviour.reply = "four five six"

    response = await AsyncClient().post(
        f"/api/v1/conversations/{conversation.pk}/continue/", json.dumps({"turn_id": answer.pk, "stream": True}),
        content_type="application/json", headers={"Authorization": f"Bearer {api_key}"},
    )

    assert response.status_code == 200
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    blocks = [dict(line.split(": ", 1) for line in block.split("\n")) for block in raw.split("\n\n") if block]
    deltas = [json.loads(block["data"])["text"] for block in blocks if block.get("event") == "delta"]
    assert "".join(deltas) == "four five six"
    stored = await Turn.objects.aget(pk=answer.pk)
    assert stored.content == "one two three four five six"


def test_a_complete_answer_or_a_question_cannot_be_continued(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    run = answering.answer(conversation=conversation, user=user, content="question")
    fake_upstream.requests.clear()
    for turn in (run.assistant_turn, run.user_turn):
        response = post(key_client, f"/api/v1/conversations/{conversation.pk}/continue/", {"turn_id": turn.pk})
        assert_error_shape(response, 409)
        assert response.json()["error"]["code"] == "nothing_to_continue"
    assert fake_upstream.chat_requests == []
    assert Turn.objects.get(pk=run.assistant_turn.pk).status == Turn.Status.COMPLETE
