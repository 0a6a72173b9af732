"""The Responses API (/v1/responses) through the official openai client against a live server."""

import openai
import pytest

from accounts.models import ApiKey
from conversations.models import Conversation, Turn
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_string_input_gives_a_stored_response(client, user, fake_upstream):  # noqa: F811
    response = client.responses.create(model="fake-model", input="Hello there")
    assert response.output_text == fake_upstream.behaviour.reply and response.status == "completed"
    assert response.id.startswith("resp_") and response.usage.output_tokens > 0
    conversation = Conversation.objects.get(owner=user)
    assert list(conversation.turns.order_by("position").values_list("role", "content")) == [
        ("user", "Hello there"), ("assistant", fake_upstream.behaviour.reply),
    ]
    assert client.responses.retrieve(response.id).output_text == response.output_text


def test_message_items_and_instructions_reach_the_model(client, fake_upstream):  # noqa: F811
    client.responses.create(model="fake-model", instructions="Answer in French.", input=[
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "un"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two"}]},
    ], temperature=0.4, max_output_tokens=50)
    sent = fake_upstream.chat_requests[-1]
    assert [(m["role"], m["content"]) for m in sent.messages] == [
        ("system", "Answer in French."), ("user", "one"), ("assistant", "un"), ("user", "two"),
    ]
    assert sent.body["temperature"] == 0.4 and sent.body["max_completion_tokens"] == 50


def test_streaming_events_end_with_the_stored_text(client, user, fake_upstream):  # noqa: F811
    events = list(client.responses.create(model="fake-model", input="stream it", stream=True))
    kinds = [event.type for event in events]
    assert events[0].sequence_number == 0
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == fake_upstream.behaviour.reply
    assert [event.sequence_number for event in events] == list(range(len(events)))
    completed = events[-1].response
    assert completed.output_text == Turn.objects.get(role="assistant").content
    assert completed.usage.total_tokens > 0


def test_previous_response_id_continues_the_stored_conversation(client, user, fake_upstream):  # noqa: F811
    first = client.responses.create(model="fake-model", input="first question")
    raw = client.responses.with_raw_response.create(
        model="fake-model", input="second question", previous_response_id=first.id, metadata={"app": "x"}
    )
    second = raw.parse()
    assert second.previous_response_id == first.id and second.metadata == {"app": "x"}
    retrieved = client.responses.with_raw_response.retrieve(second.id)
    assert retrieved.parse().previous_response_id == first.id
    assert retrieved.headers["X-Chatsite-Conversation"] == raw.headers["X-Chatsite-Conversation"]
    conversation = Conversation.objects.get(owner=user)
    assert conversation.turns.count() == 4
    assert [m["content"] for m in fake_upstream.chat_requests[-1].messages[1:]] == [
        "first question", fake_upstream.behaviour.reply, "second question",
    ]
    # Going on from the first response again branches beside the second, in the same conversation.
    client.responses.create(model="fake-model", input="another second", previous_response_id=first.id)
    assert Conversation.objects.count() == 1
    assert sorted(conversation.turns.filter(position=3).values_list("content", flat=True)) == [
        "another second", "second question",
    ]


def test_cut_answers_are_incomplete(client, fake_upstream):  # noqa: F811
    fake_upstream.behaviour.tokens = 30
    response = client.responses.create(model="fake-model", input="long please", max_output_tokens=16)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_a_limit_above_the_sites_is_capped_and_says_incomplete(client, fake_upstream, settings):  # noqa: F811
    settings.CHAT_MAX_ANSWER_TOKENS = 20
    fake_upstream.behaviour.tokens = 30
    response = client.responses.create(model="fake-model", input="long please", max_output_tokens=10**6)
    assert fake_upstream.chat_requests[-1].body["max_completion_tokens"] == 20
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.max_output_tokens == 20 and len(response.output_text.split()) == 20

    streamed = client.responses.create(model="fake-model", input="long again", max_output_tokens=10**6, stream=True)
    final = [event for event in streamed if event.type.startswith("response.")][-1]
    assert final.type == "response.incomplete" and final.response.incomplete_details.reason == "max_output_tokens"


def test_refusals_and_other_users(client, live_asgi, other_user, fake_upstream):  # noqa: F811
    mine = client.responses.create(model="fake-model", input="mine")
    refused = [
        ({"tools": [{"type": "web_search"}]}, "tools"), ({"tools": [{"type": "function"}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"), ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}},
         "tool_choice"),
        ({"text": {"format": {"type": "xml"}}}, "text"), ({"text": {"format": "json"}}, "text"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text"),
        ({"reasoning": {"summary": "auto"}}, "reasoning"), ({"reasoning": {"effort": "max"}}, "reasoning"),
        ({"include": ["everything"]}, "include"), ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input"),
        ({"input": [{"type": "function_call_output", "output": "no call id"}]}, "input"),
        ({"max_output_tokens": 15}, "max_output_tokens"),
        ({"colour": "red"}, "colour"), ({"instructions": "x" * 20_000}, "instructions"),
    ]
    for extra, param in refused:
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="fake-model", input="x", extra_body=extra)
        assert caught.value.body["param"] == param, caught.value.body
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-9", input="x")
    bob = openai.OpenAI(base_url=f"{live_asgi}/v1", api_key=ApiKey.generate(user=other_user, name="b")[1],
                        max_retries=0)
    for call in (lambda: bob.responses.retrieve(mine.id),
                 lambda: bob.responses.create(model="fake-model", input="x", previous_response_id=mine.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert not Conversation.objects.filter(owner=other_user).exists()


def test_with_previous_response_id_only_the_new_message_is_input(client, fake_upstream):  # noqa: F811
    first = client.responses.create(model="fake-model", input="first")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fake-model", previous_response_id=first.id, input=[
            {"role": "assistant", "content": "rewritten"}, {"role": "user", "content": "next"},
        ])
    assert caught.value.body["param"] == "input"


def test_a_failure_mid_stream_is_response_failed_with_its_code(client, fake_upstream):  # noqa: F811
    fake_upstream.behaviour.drop_after = 2
    events = list(client.responses.create(model="fake-model", input="break", stream=True))
    last = events[-1]
    assert last.type == "response.failed" and last.response.error.code == "upstream_stream_broken"
    done = [event for event in events if event.type == "response.output_item.done"][0]
    assert done.item.status == "incomplete"


def test_the_published_request_schema_requires_what_the_server_does(client, fake_upstream):  # noqa: F811
    import json

    from django.test import Client

    published = json.loads(Client().get("/api/schema/", HTTP_ACCEPT="application/json").content)
    body = published["paths"]["/v1/responses"]["post"]["requestBody"]
    schema = published["components"]["schemas"][body["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    assert body["required"] is True and sorted(schema["required"]) == ["input", "model"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/responses", cast_to=object, body={"input": "hi"})
    assert caught.value.body["param"] == "model"
