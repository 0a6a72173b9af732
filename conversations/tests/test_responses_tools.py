"""The Responses API's function tools, input items, `store: false`, `include` and `text.format`, through the
official openai client against a live server (the fake upstream calls the first tool it is given)."""

import json

import openai
import pytest
from pydantic import BaseModel

from accounts.models import ApiKey
from conversations import selectors
from conversations.models import Conversation, Turn
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "The weather in a city.", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city", "unit"], "additionalProperties": False},
}


def stored(conversation: Conversation) -> list[tuple[str, str]]:
    return list(conversation.turns.order_by("position").values_list("role", "content"))


def test_a_function_call_and_its_output(client, user, fake_upstream):  # noqa: F811
    """The call comes back as a function_call item; its output, sent with previous_response_id, gets the answer."""
    response = client.responses.create(model="fake-model", input="Weather in Paris?", tools=[WEATHER_TOOL])
    sent = fake_upstream.chat_requests[-1].body
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city.", "parameters": WEATHER_TOOL["parameters"],
        "strict": True,
    }}]
    turn = Turn.objects.get(role="assistant")
    [call] = response.output
    assert (call.type, call.id, call.name, call.arguments, call.status) == (
        "function_call", f"fc_{turn.pk}_0", "get_weather", fake_upstream.behaviour.tool_arguments, "completed",
    )
    assert call.call_id == turn.tool_calls[0]["id"] and response.output_text == ""
    assert [tool.name for tool in response.tools] == ["get_weather"]

    answer = client.responses.create(model="fake-model", previous_response_id=response.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 degrees"},
    ])
    assert answer.output_text == fake_upstream.behaviour.reply
    assert fake_upstream.chat_requests[-1].messages[-1] == {
        "role": "tool", "tool_call_id": call.call_id, "content": "18 degrees",
    }
    assert stored(Conversation.objects.get(owner=user)) == [
        ("user", "Weather in Paris?"), ("assistant", ""), ("tool", "18 degrees"),
        ("assistant", fake_upstream.behaviour.reply),
    ]
    with pytest.raises(openai.BadRequestError) as caught:  # the outputs must answer that response's calls
        client.responses.create(model="fake-model", previous_response_id=response.id, input=[
            {"type": "function_call_output", "call_id": "call_other", "output": "x"},
        ])
    assert caught.value.body["param"] == "input"


def test_streamed_function_call_events(client, fake_upstream):  # noqa: F811
    with client.responses.stream(model="fake-model", input="Weather?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()  # the SDK rebuilds the response from the events, by output index
    kinds = [event.type for event in events]
    arguments = fake_upstream.behaviour.tool_arguments
    assert kinds == [
        "response.created", "response.in_progress", "response.output_item.added",
        *["response.function_call_arguments.delta"] * 3, "response.function_call_arguments.done",
        "response.output_item.done", "response.completed",
    ]
    added, done = events[2], events[-2]
    assert added.item.type == "function_call" and added.item.status == "in_progress" and added.item.arguments == ""
    assert "".join(event.delta for event in events if event.type.endswith("arguments.delta")) == arguments
    assert {event.item_id for event in events[3:7]} == {added.item.id} and events[6].arguments == arguments
    assert done.item.arguments == arguments and done.item.call_id == added.item.call_id
    assert [event.sequence_number for event in events] == list(range(len(events)))
    [call] = final.output
    assert (call.type, call.name, call.arguments) == ("function_call", "get_weather", arguments)


def test_resent_items_continue_the_conversation(client, user, fake_upstream):  # noqa: F811
    """function_call items resent in full, or as item_reference to chatsite's own ids, are the stored answer."""
    first = client.responses.create(model="fake-model", input="Weather?", tools=[WEATHER_TOOL])
    call = first.output[0]
    for resent in ({"type": "item_reference", "id": call.id}, call.model_dump(exclude_none=True)):
        client.responses.create(model="fake-model", tools=[WEATHER_TOOL], input=[
            {"role": "user", "content": "Weather?"}, resent,
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ])
    conversation = Conversation.objects.get(owner=user)  # both went on in the one conversation
    answers = conversation.turns.filter(role="tool").values_list("children__content", flat=True)
    assert list(answers) == [fake_upstream.behaviour.reply] * 2

    answer = Turn.objects.filter(role="assistant", content=fake_upstream.behaviour.reply).first()
    client.responses.create(model="fake-model", input=[
        {"role": "user", "content": "Weather?"}, {"type": "item_reference", "id": call.id},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        {"type": "item_reference", "id": f"msg_{answer.pk}"}, {"role": "user", "content": "Thanks!"},
    ])
    assert [(m["role"], m["content"]) for m in fake_upstream.chat_requests[-1].messages[-3:]] == [
        ("tool", "sunny"), ("assistant", fake_upstream.behaviour.reply), ("user", "Thanks!"),
    ]
    assert Conversation.objects.filter(owner=user).count() == 1


def test_item_references_are_only_to_your_own_items(client, live_asgi, other_user, fake_upstream):  # noqa: F811
    mine = client.responses.create(model="fake-model", input="mine")
    bob = openai.OpenAI(base_url=f"{live_asgi}/v1", api_key=ApiKey.generate(user=other_user, name="b")[1],
                        max_retries=0)
    turn_id = mine.id.removeprefix("resp_")
    for item_id in (mine.output[0].id, f"fc_{turn_id}_0", "msg_999999", "rs_1"):
        with pytest.raises(openai.NotFoundError) as caught:
            bob.responses.create(model="fake-model", input=[
                {"type": "item_reference", "id": item_id}, {"role": "user", "content": "x"},
            ])
        assert item_id in caught.value.body["message"]
    with pytest.raises(openai.NotFoundError):  # an answer without tool calls has no fc_ item
        client.responses.create(model="fake-model", input=[
            {"type": "item_reference", "id": f"fc_{turn_id}_0"}, {"role": "user", "content": "x"},
        ])
    assert not Conversation.objects.filter(owner=other_user).exists()


def test_store_false_is_a_temporary_chat(client, user, fake_upstream):  # noqa: F811
    kept = client.responses.create(model="fake-model", input="keep this")
    unkept = client.responses.create(model="fake-model", input="forget this", store=False)
    assert unkept.output_text == fake_upstream.behaviour.reply and unkept.store is False and kept.store is True
    temporary = Conversation.objects.get(turns__content="forget this")
    assert temporary.delete_after is not None
    assert list(selectors.conversation_list(user=user)) == [Conversation.objects.get(turns__content="keep this")]

    # Resending a stored chat's history with store: false answers in a temporary copy; the stored chat stays.
    client.responses.create(model="fake-model", store=False, input=[
        {"role": "user", "content": "keep this"}, {"type": "item_reference", "id": kept.output[0].id},
        {"role": "user", "content": "and this?"},
    ])
    stored_chat = Conversation.objects.get(delete_after=None)
    assert stored(stored_chat) == [("user", "keep this"), ("assistant", fake_upstream.behaviour.reply)]
    copy = Conversation.objects.exclude(pk__in=[stored_chat.pk, temporary.pk]).get()
    assert copy.delete_after is not None and stored(copy)[-2:] == [
        ("user", "and this?"), ("assistant", fake_upstream.behaviour.reply),
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fake-model", input="more", previous_response_id=kept.id, store=False)
    assert caught.value.body["param"] == "store"
    more = client.responses.create(model="fake-model", input="more", previous_response_id=unkept.id, store=False)
    assert more.store is False and Conversation.objects.count() == 3


class Weather(BaseModel):
    city: str
    unit: str


def test_text_format_json_schema_is_the_models_response_format(client, fake_upstream):  # noqa: F811
    fake_upstream.behaviour.reply = json.dumps({"city": "Oslo", "unit": "celsius"})
    parsed = client.responses.parse(model="fake-model", input="Weather in Oslo?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Oslo", unit="celsius")
    response_format = fake_upstream.chat_requests[-1].body["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["name"] == "Weather"
    assert response_format["json_schema"]["strict"] is True
    client.responses.create(model="fake-model", input="any JSON", text={"format": {"type": "json_object"},
                                                                       "verbosity": "low"})
    sent = fake_upstream.chat_requests[-1].body
    assert sent["response_format"] == {"type": "json_object"} and sent["verbosity"] == "low"


def test_tool_choice_include_and_empty_tools(client, fake_upstream):  # noqa: F811
    other_tool = {**WEATHER_TOOL, "name": "get_time"}
    response = client.responses.create(
        model="fake-model", input="Time?", tools=[WEATHER_TOOL, other_tool],
        tool_choice={"type": "function", "name": "get_time"}, parallel_tool_calls=False,
        include=["reasoning.encrypted_content", "web_search_call.action.sources"],
    )
    sent = fake_upstream.chat_requests[-1].body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert sent["parallel_tool_calls"] is False and response.output[0].name == "get_time"
    assert response.tool_choice.name == "get_time" and response.parallel_tool_calls is False

    plain = client.responses.create(model="fake-model", input="Hi", tools=[], tool_choice="auto")
    assert plain.output_text == fake_upstream.behaviour.reply
    assert not {"tools", "tool_choice"} & set(fake_upstream.chat_requests[-1].body)


def test_server_tools_stay_on_the_server(client, settings, fake_upstream):  # noqa: F811
    """On a model with server tools, the server runs them: the client sees one response with the final text, no
    function_call item; a client's own tools replace them and go back to the client."""
    settings.CHAT_TOOL_MODELS = ["fake-model"]
    settings.CHAT_SERVER_TOOLS = ["calculator"]
    fake_upstream.behaviour.tool_script = [("calculator", json.dumps({"expression": "6 * 7"}))]
    events = list(client.responses.create(model="fake-model", input="6*7?", stream=True))
    assert not [event for event in events if "function_call" in event.type or (
        event.type == "response.output_item.added" and event.item.type == "function_call")]
    created, completed = events[0].response, events[-1].response
    assert completed.output_text == fake_upstream.behaviour.reply and created.id == completed.id
    assert [item.type for item in completed.output] == ["message"]
    assert Turn.objects.filter(role="tool", content="42").count() == 1

    fake_upstream.behaviour.tool_script = []  # the model calls the first tool it is offered
    response = client.responses.create(model="fake-model", input="Weather?", tools=[WEATHER_TOOL])
    assert [item.name for item in response.output] == ["get_weather"]
    assert [tool["function"]["name"] for tool in fake_upstream.chat_requests[-1].body["tools"]] == ["get_weather"]
