"""LangChain's ChatOpenAI against a live chatsite: plain and streamed answers, tool calls and their results,
structured output by function calling and by JSON schema, and sampling parameters reaching the model."""

import functools
import json
import operator

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from conversations.models import Conversation
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)
from tests.clients.helpers import stored_conversations

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat_model(live_asgi, raw_key, fake_upstream):  # noqa: F811
    return ChatOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, model="fake-model", max_retries=0, timeout=20)


class Weather(BaseModel):
    """The weather report asked for."""

    city: str = Field(description="The city")
    unit: str = Field(description="celsius or fahrenheit")


@tool
def get_weather(city: str, unit: str) -> str:
    """The weather in a city."""
    return f"18 degrees {unit} and sunny in {city}"


def test_invoke(chat_model, user, fake_upstream):
    answer = chat_model.invoke("What is 2+2?")
    assert isinstance(answer, AIMessage) and answer.text == fake_upstream.behaviour.reply
    assert answer.response_metadata["finish_reason"] == "stop"
    assert answer.usage_metadata["output_tokens"] > 0
    assert Conversation.objects.get(owner=user).source == Conversation.Source.OPENAI_API
    assert stored_conversations(user) == [[("user", "What is 2+2?"), ("assistant", fake_upstream.behaviour.reply)]]


def test_stream(chat_model, user, fake_upstream):
    chunks = list(chat_model.stream("What is 2+2?"))
    assert len(chunks) > 2  # streamed piece by piece, not in one block
    assert "".join(chunk.text for chunk in chunks) == fake_upstream.behaviour.reply
    assert stored_conversations(user) == [[("user", "What is 2+2?"), ("assistant", fake_upstream.behaviour.reply)]]


async def test_async_invoke_and_stream(chat_model, fake_upstream):
    answer = await chat_model.ainvoke("What is 2+2?")
    assert answer.text == fake_upstream.behaviour.reply
    chunks = [chunk async for chunk in chat_model.astream("What is 2+2?")]
    assert "".join(chunk.text for chunk in chunks) == fake_upstream.behaviour.reply


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_a_tool_round_trip(chat_model, user, fake_upstream, stream):
    """bind_tools: the model's call comes back parsed; the tool's result sent back gets the final answer, and the
    resent history continues the same stored conversation (ChatOpenAI resends the call's arguments as json.dumps
    writes them, not as the model wrote them)."""
    fake_upstream.behaviour.tool_arguments = '{"city":"Paris","unit":"celsius"}'  # compact, as OpenAI writes them
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
    assert fake_upstream.chat_requests[-1].body["tools"][0]["function"]["name"] == "get_weather"

    tool_message = get_weather.invoke(call_message.tool_calls[0])
    assert isinstance(tool_message, ToolMessage)
    messages += [call_message, tool_message]
    answer = ask(messages)
    assert answer.text == fake_upstream.behaviour.reply and not answer.tool_calls
    assert fake_upstream.chat_requests[-1].messages[-1] == {
        "role": "tool", "tool_call_id": call_message.tool_calls[0]["id"], "content": tool_message.content,
    }
    assert stored_conversations(user) == [[
        ("user", "Weather in Paris?"), ("assistant", ""), ("tool", tool_message.content),
        ("assistant", fake_upstream.behaviour.reply),
    ]]


def test_structured_output_by_function_calling(chat_model, fake_upstream):
    structured = chat_model.with_structured_output(Weather, method="function_calling")
    weather = structured.invoke("Weather in Paris?")
    assert weather == Weather.model_validate_json(fake_upstream.behaviour.tool_arguments)
    sent = fake_upstream.chat_requests[-1].body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}


def test_structured_output_by_json_schema(chat_model, user, fake_upstream):
    fake_upstream.behaviour.reply = json.dumps({"city": "Oslo", "unit": "celsius"})
    structured = chat_model.with_structured_output(Weather, method="json_schema")
    weather = structured.invoke("Weather in Oslo?")
    assert weather == Weather(city="Oslo", unit="celsius")
    response_format = fake_upstream.chat_requests[-1].body["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["name"] == "Weather"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {"city", "unit"}
    assert stored_conversations(user) == [[("user", "Weather in Oslo?"), ("assistant", fake_upstream.behaviour.reply)]]


SAMPLING = {"temperature": 0.3, "top_p": 0.5, "stop": ["END"], "seed": 7, "presence_penalty": 0.5,
            "frequency_penalty": -0.5}


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_sampling_parameters_reach_the_model(live_asgi, raw_key, fake_upstream, stream):  # noqa: F811
    chat_model = ChatOpenAI(
        base_url=f"{live_asgi}/v1", api_key=raw_key, model="fake-model", max_retries=0, timeout=20,
        max_tokens=50, **SAMPLING,
    )
    if stream:
        assert "".join(chunk.text for chunk in chat_model.stream("hi")) == fake_upstream.behaviour.reply
    else:
        assert chat_model.invoke("hi").text == fake_upstream.behaviour.reply
    sent = fake_upstream.chat_requests[-1].body
    assert {name: sent.get(name) for name in SAMPLING} == SAMPLING
    # ChatOpenAI sends its max_tokens under OpenAI's current name.
    assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent


def test_its_default_retries_make_one_conversation_and_a_large_max_tokens_is_capped(
    live_asgi, raw_key, user, fake_upstream, settings,  # noqa: F811
):
    """ChatOpenAI retries twice by default; Open WebUI-style generous limits (max_tokens=1000) are capped."""
    retrying = ChatOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, model="fake-model", timeout=20,
                          max_tokens=1000)
    fake_upstream.behaviour.fail_status = 500
    with pytest.raises(openai.InternalServerError, match="earlier attempt failed"):
        retrying.invoke("What is 2+2?")
    assert Conversation.objects.filter(owner=user).count() == 1
    assert len(fake_upstream.chat_requests) == settings.OPENAI_MAX_RETRIES + 1

    fake_upstream.behaviour.fail_status = None
    settings.CHAT_MAX_ANSWER_TOKENS = 3
    answer = retrying.invoke("Tell me more.")
    assert answer.response_metadata["finish_reason"] == "length" and len(answer.text.split()) == 3
    assert fake_upstream.chat_requests[-1].body["max_completion_tokens"] == 3  # its name for max_tokens
