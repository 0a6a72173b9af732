"""LangChain's ChatOpenAI on the Responses API (`use_responses_api=True`) against a live chatsite: tool calls and
their results, and structured output by JSON schema and by function calling."""

import functools
import json
import operator

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)
from tests.clients.helpers import stored_conversations
from tests.clients.test_langchain import Weather, get_weather

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat_model(live_asgi, raw_key, fake_upstream):  # noqa: F811
    return ChatOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, model="fake-model", max_retries=0, timeout=20,
                      use_responses_api=True)


def test_invoke_and_stream(chat_model, user, fake_upstream):
    reply = fake_upstream.behaviour.reply
    assert chat_model.invoke("What is 2+2?").text == reply
    chunks = list(chat_model.stream("And 3+3?"))
    assert len(chunks) > 2 and "".join(chunk.text for chunk in chunks) == reply
    assert stored_conversations(user) == [
        [("user", "What is 2+2?"), ("assistant", reply)], [("user", "And 3+3?"), ("assistant", reply)],
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_a_tool_round_trip(chat_model, user, fake_upstream, stream):
    """bind_tools: the model's call comes back as a function_call item; the tool's result, sent back with the
    history, gets the final answer in the same stored conversation."""
    fake_upstream.behaviour.tool_arguments = '{"city":"Paris","unit":"celsius"}'
    with_tools = chat_model.bind_tools([get_weather])

    def ask(messages):
        if stream:
            return functools.reduce(operator.add, with_tools.stream(messages))
        return with_tools.invoke(messages)

    messages = [HumanMessage("Weather in Paris?")]
    call_message = ask(messages)
    assert [(call["name"], call["args"]) for call in call_message.tool_calls] == [
        ("get_weather", json.loads(fake_upstream.behaviour.tool_arguments)),
    ]
    tool = fake_upstream.chat_requests[-1].body["tools"][0]
    assert tool["type"] == "function" and tool["function"]["name"] == "get_weather"

    tool_message = get_weather.invoke(call_message.tool_calls[0])
    assert isinstance(tool_message, ToolMessage)
    answer = ask([*messages, call_message, tool_message])
    assert answer.text == fake_upstream.behaviour.reply and not answer.tool_calls
    assert fake_upstream.chat_requests[-1].messages[-1] == {
        "role": "tool", "tool_call_id": call_message.tool_calls[0]["id"], "content": tool_message.content,
    }
    assert stored_conversations(user) == [[
        ("user", "Weather in Paris?"), ("assistant", ""), ("tool", tool_message.content),
        ("assistant", fake_upstream.behaviour.reply),
    ]]


def test_structured_output_by_json_schema(chat_model, user, fake_upstream):
    fake_upstream.behaviour.reply = json.dumps({"city": "Oslo", "unit": "celsius"})
    weather = chat_model.with_structured_output(Weather, method="json_schema").invoke("Weather in Oslo?")
    assert weather == Weather(city="Oslo", unit="celsius")
    response_format = fake_upstream.chat_requests[-1].body["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["name"] == "Weather"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {"city", "unit"}
    assert stored_conversations(user) == [[("user", "Weather in Oslo?"), ("assistant", fake_upstream.behaviour.reply)]]


def test_structured_output_by_function_calling(chat_model, fake_upstream):
    weather = chat_model.with_structured_output(Weather, method="function_calling").invoke("Weather in Paris?")
    assert weather == Weather.model_validate_json(fake_upstream.behaviour.tool_arguments)
    assert fake_upstream.chat_requests[-1].body["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
