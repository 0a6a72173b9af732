"""The OpenAI Agents SDK (`openai-agents`) against a live chatsite, on its default model class (the Responses
API): an agent with one function tool, run plain and streamed, on the SDK's default model and settings, and
chaining responses by id. The SDK runs the tool the model called and sends its result back (with the whole run
so far, or after the id of the response that called it); chatsite continues the same stored conversation."""

import asyncio
import json

import httpx
import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIProvider,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
)
from agents.items import ToolCallItem, ToolCallOutputItem
from agents.models import get_default_model
from openai import AsyncOpenAI

from conversations.models import Conversation
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)
from tests.clients.helpers import stored_conversations

pytestmark = pytest.mark.django_db(transaction=True)

INSTRUCTIONS = "You report the weather."
NO_TRACING = RunConfig(tracing_disabled=True)  # traces would go to OpenAI's own servers


@function_tool
def get_weather(city: str, unit: str) -> str:
    """The weather in a city."""
    return f"18 degrees {unit} and sunny in {city}"


@pytest.fixture
def agent(live_asgi, raw_key, fake_upstream):  # noqa: F811
    openai_client = AsyncOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, max_retries=0, timeout=20)
    model = OpenAIResponsesModel(model="fake-model", openai_client=openai_client)
    return Agent(name="Weather", instructions=INSTRUCTIONS, tools=[get_weather], model=model)


def test_an_agent_without_tools_answers(agent, user, fake_upstream):
    plain = agent.clone(tools=[])
    result = Runner.run_sync(plain, "Say hello.", run_config=NO_TRACING)
    assert result.final_output == fake_upstream.behaviour.reply
    assert "tools" not in fake_upstream.chat_requests[-1].body
    assert stored_conversations(user) == [[("user", "Say hello."), ("assistant", fake_upstream.behaviour.reply)]]


def test_an_agent_on_the_sdks_default_model_and_settings(live_asgi, raw_key, user, settings, fake_upstream):  # noqa: F811
    """An Agent given no model: the SDK's default model name, with the default settings it has for that model
    (reasoning effort and text verbosity), through its default provider's Responses model."""
    default_model = get_default_model()
    settings.CHAT_MODELS = [default_model]
    openai_client = AsyncOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, max_retries=0, timeout=20)
    run_config = RunConfig(tracing_disabled=True, model_provider=OpenAIProvider(openai_client=openai_client))
    agent = Agent(name="Weather", instructions=INSTRUCTIONS, tools=[get_weather])
    assert agent.model_settings.reasoning is not None  # the defaults this test is about

    result = Runner.run_sync(agent, "Weather in Paris?", run_config=run_config)
    assert result.final_output == fake_upstream.behaviour.reply
    sent = fake_upstream.chat_requests[-1].body
    assert sent["model"] == default_model
    assert sent["reasoning_effort"] == agent.model_settings.reasoning.effort
    assert sent["verbosity"] == agent.model_settings.verbosity
    assert [role for role, _ in stored_conversations(user)[0]] == ["user", "assistant", "tool", "assistant"]


def _run_streamed(agent, prompt):
    async def run():
        result = Runner.run_streamed(agent, prompt, run_config=NO_TRACING)
        deltas = [event.data.delta async for event in result.stream_events()
                  if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"]
        return result, deltas

    return asyncio.run(run())


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
def test_a_one_tool_agent(agent, user, fake_upstream, stream):
    fake_upstream.behaviour.tool_arguments = '{"city":"Paris","unit":"celsius"}'
    if stream:
        result, deltas = _run_streamed(agent, "Weather in Paris?")
        assert "".join(deltas) == fake_upstream.behaviour.reply and len(deltas) > 1
    else:
        result = Runner.run_sync(agent, "Weather in Paris?", run_config=NO_TRACING)
    tool_output = "18 degrees celsius and sunny in Paris"
    assert result.final_output == fake_upstream.behaviour.reply
    calls = [item.raw_item for item in result.new_items if isinstance(item, ToolCallItem)]
    assert [(call.name, call.arguments) for call in calls] == [("get_weather", fake_upstream.behaviour.tool_arguments)]
    assert [item.output for item in result.new_items if isinstance(item, ToolCallOutputItem)] == [tool_output]

    first, second = fake_upstream.chat_requests
    assert first.body["tools"][0]["function"]["name"] == "get_weather"
    assert set(first.body["tools"][0]["function"]["parameters"]["properties"]) == {"city", "unit"}
    assert second.messages[-1] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": tool_output}
    assert stored_conversations(user) == [[
        ("user", "Weather in Paris?"), ("assistant", ""), ("tool", tool_output),
        ("assistant", fake_upstream.behaviour.reply),
    ]]
    assert Conversation.objects.get(owner=user).system_prompt == INSTRUCTIONS


def test_a_one_tool_agent_chaining_responses(live_asgi, raw_key, user, fake_upstream):  # noqa: F811
    """auto_previous_response_id: the SDK sends only the tool's output, with the id of the response that called
    it; then a second run goes on from the first one's last response."""
    sent = []

    async def record(request):
        sent.append(json.loads(request.content))

    # No kept-alive connections: each run_sync has an event loop of its own.
    http_client = httpx.AsyncClient(event_hooks={"request": [record]}, timeout=20,
                                    limits=httpx.Limits(max_keepalive_connections=0))
    openai_client = AsyncOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, max_retries=0, http_client=http_client)
    model = OpenAIResponsesModel(model="fake-model", openai_client=openai_client)
    agent = Agent(name="Weather", instructions=INSTRUCTIONS, tools=[get_weather], model=model)
    first = Runner.run_sync(agent, "Weather in Paris?", run_config=NO_TRACING, auto_previous_response_id=True)
    assert first.final_output == fake_upstream.behaviour.reply
    second = Runner.run_sync(agent.clone(tools=[]), "Thanks!", run_config=NO_TRACING,
                             previous_response_id=first.last_response_id)
    assert second.final_output == fake_upstream.behaviour.reply

    tool_output = "18 degrees celsius and sunny in Paris"
    assert [body.get("previous_response_id") is not None for body in sent] == [False, True, True]
    assert [item["type"] for item in sent[1]["input"]] == ["function_call_output"]
    assert sent[2]["previous_response_id"] == first.last_response_id
    assert stored_conversations(user) == [[
        ("user", "Weather in Paris?"), ("assistant", ""), ("tool", tool_output),
        ("assistant", fake_upstream.behaviour.reply), ("user", "Thanks!"), ("assistant", fake_upstream.behaviour.reply),
    ]]


def test_an_agent_run_in_a_conversation(live_asgi, raw_key, user, fake_upstream):  # noqa: F811
    """`Runner.run(conversation_id=...)`: the SDK sends each new input with the conversation, not the history;
    chatsite answers in that stored conversation (one started with the Conversations API)."""
    async def run():
        openai_client = AsyncOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, max_retries=0, timeout=20)
        model = OpenAIResponsesModel(model="fake-model", openai_client=openai_client)
        agent = Agent(name="Plain", instructions=INSTRUCTIONS, model=model)
        conversation = await openai_client.conversations.create()
        first = await Runner.run(agent, "Hi", conversation_id=conversation.id, run_config=NO_TRACING)
        second = await Runner.run(agent, "Again", conversation_id=conversation.id, run_config=NO_TRACING)
        return first, second

    first, second = asyncio.run(run())
    reply = fake_upstream.behaviour.reply
    assert first.final_output == second.final_output == reply
    assert stored_conversations(user) == [[("user", "Hi"), ("assistant", reply), ("user", "Again"),
                                           ("assistant", reply)]]
    assert Conversation.objects.get(owner=user).system_prompt == INSTRUCTIONS


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
def test_a_one_tool_agent_on_chat_completions(live_asgi, raw_key, user, fake_upstream, stream):  # noqa: F811
    """The SDK's Chat Completions model: it resends the whole run each time; chatsite keeps one conversation."""
    openai_client = AsyncOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, max_retries=0, timeout=20)
    model = OpenAIChatCompletionsModel(model="fake-model", openai_client=openai_client)
    agent = Agent(name="Weather", instructions=INSTRUCTIONS, tools=[get_weather], model=model)
    if stream:
        result, deltas = _run_streamed(agent, "Weather in Paris?")
        assert "".join(deltas) == fake_upstream.behaviour.reply
    else:
        result = Runner.run_sync(agent, "Weather in Paris?", run_config=NO_TRACING)
    tool_output = "18 degrees celsius and sunny in Paris"
    assert result.final_output == fake_upstream.behaviour.reply
    first, second = fake_upstream.chat_requests
    assert first.body["tools"][0]["function"]["name"] == "get_weather"
    assert second.messages[-1]["role"] == "tool" and second.messages[-1]["content"] == tool_output
    assert stored_conversations(user) == [[
        ("user", "Weather in Paris?"), ("assistant", ""), ("tool", tool_output),
        ("assistant", fake_upstream.behaviour.reply),
    ]]
