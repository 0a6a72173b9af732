"""The tool loop the server runs: server tools called by the model, run here, stored as turns, and the model
asked again; against the fake upstream over real HTTP (it calls the tools it is offered)."""

import asyncio
import json

import pytest

from conversations import answering
from conversations.answering import tools
from conversations.answering.events import ToolStep
from conversations.models import Conversation, Turn
from conversations.selectors import turn_path
from conversations.services import conversation_create
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tool_model(settings, fake_upstream):
    settings.CHAT_TOOL_MODELS = ["fake-model"]
    settings.CHAT_SERVER_TOOLS = ["calculator", "current_time"]
    settings.CHAT_TOOL_ROUNDS = 5
    return fake_upstream


def calc(expression: str) -> tuple[str, str]:
    return "calculator", json.dumps({"expression": expression})


def collect(conversation, user, content):
    async def go():
        answer = await answering.start(conversation=conversation, user=user, content=content)
        return [entry async for entry in answer.follow()]

    return asyncio.run(go())


def test_two_calculator_rounds_then_an_answer_are_stored_in_order(tool_model, user):
    tool_model.behaviour.tool_rounds = 2
    tool_model.behaviour.tool_script = [calc("6 * 7"), calc("2 ** 10")]
    tool_model.behaviour.reply = "Both are done."
    conversation = conversation_create(owner=user)
    entries = collect(conversation, user, "What are 6*7 and 2**10?")

    conversation.refresh_from_db()
    branch = turn_path(conversation)
    assert [(t.role, bool(t.tool_calls)) for t in branch] == [
        ("user", False), ("assistant", True), ("tool", False), ("assistant", True), ("tool", False),
        ("assistant", False),
    ]
    assert [t.content for t in branch if t.role == "tool"] == ["42", "1024"]
    assert branch[-1].content == "Both are done." and branch[-1].status == Turn.Status.COMPLETE
    assert [t.position for t in branch] == [1, 2, 3, 4, 5, 6]
    assert branch[2].tool_call_id == branch[1].tool_calls[0]["id"]
    assert conversation.turn_count == 6 and conversation.current_turn_id == branch[-1].pk
    # The answer kept its id from start to end: what followers and Stop know it by.
    assert entries[0].event.assistant_turn.pk == branch[-1].pk

    steps = [e.event for e in entries if isinstance(e.event, ToolStep)]
    assert [(s.call["function"]["name"], s.result, s.is_error) for s in steps] == [
        ("calculator", "42", False), ("calculator", "1024", False)
    ]
    assert [e.name for e in entries] == ["turn", "tool_result", "tool_result", "delta", "delta", "delta", "done"]
    # The model was asked three times, the last with both results in its history.
    requests = tool_model.chat_requests
    assert len(requests) == 3
    assert [m["role"] for m in requests[2].messages] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    last_call = branch[3].tool_calls[0]["id"]
    assert requests[2].messages[-1] == {"role": "tool", "content": "1024", "tool_call_id": last_call}
    assert {t["function"]["name"] for t in requests[0].body["tools"]} == {"calculator", "current_time"}
    # Each step carries its own usage; the ledger has all three calls.
    assert all(t.prompt_tokens > 0 for t in branch if t.role == "assistant")


def test_a_failing_tool_and_a_slow_one_answer_the_model_with_errors(tool_model, user, settings, monkeypatch):
    class Sleepy(tools.ServerTool):
        name = "sleepy"
        description = "Takes its time."
        parameters = {"type": "object", "properties": {}}
        timeout = 0.2

        async def call(self, arguments):
            await asyncio.sleep(5)
            return "never"

    monkeypatch.setitem(tools.REGISTRY, "sleepy", Sleepy())
    settings.CHAT_SERVER_TOOLS = ["calculator", "sleepy"]
    tool_model.behaviour.tool_rounds = 3
    tool_model.behaviour.tool_script = [calc("1 / 0"), ("sleepy", "{}"), ("no_such_tool", "{}")]
    conversation = conversation_create(owner=user)
    entries = collect(conversation, user, "Break things")
    steps = [e.event for e in entries if isinstance(e.event, ToolStep)]
    assert [s.is_error for s in steps] == [True, True, True]
    assert "division by zero" in steps[0].result
    assert "took longer than 0.2 s" in steps[1].result and steps[1].seconds < 2
    assert "no tool named 'no_such_tool'" in steps[2].result
    final = Turn.objects.get(conversation=conversation, status=Turn.Status.COMPLETE, tool_calls__isnull=True,
                             role="assistant")
    assert final.content == tool_model.behaviour.reply
    assert entries[-1].name == "done"


def test_the_round_limit_holds_and_the_last_round_offers_no_tools(tool_model, user, settings):
    settings.CHAT_TOOL_ROUNDS = 2
    tool_model.behaviour.tool_rounds = 10  # the model would go on calling tools
    tool_model.behaviour.tool_script = [calc("1 + 1")] * 10
    conversation = conversation_create(owner=user)
    entries = collect(conversation, user, "Loop forever")
    assert sum(isinstance(e.event, ToolStep) for e in entries) == 2
    requests = tool_model.chat_requests
    assert len(requests) == 3 and "tools" in requests[1].body and "tools" not in requests[2].body
    assert entries[-1].name == "done" and entries[-1].event.assistant_turn.content == tool_model.behaviour.reply


def test_models_not_known_to_call_tools_are_offered_none(fake_upstream, user, settings):
    settings.CHAT_TOOL_MODELS = ["another-model"]
    answering.answer(conversation=conversation_create(owner=user), user=user, content="6*7?")
    assert "tools" not in fake_upstream.chat_requests[-1].body


def test_v1_streams_the_final_text_and_never_hands_a_server_tool_to_the_client(tool_model, client):  # noqa: F811
    tool_model.behaviour.tool_script = [calc("6 * 7")]
    stream = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "6*7?"}], stream=True
    )
    chunks = list(stream)
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == tool_model.behaviour.reply
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    reply = client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "again"}])
    assert reply.choices[0].message.tool_calls is None and reply.choices[0].finish_reason == "stop"
    assert Turn.objects.filter(role="tool", content="42").count() == 2


def test_tools_sent_by_a_v1_client_still_go_back_to_it(tool_model, client):  # noqa: F811
    weather = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    response = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "Weather?"}], tools=weather
    )
    assert response.choices[0].finish_reason == "tool_calls"
    assert response.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert tool_model.chat_requests[-1].body["tools"] == weather  # no server tools mixed in
    assert not Turn.objects.filter(role="tool").exists()
    assert Conversation.objects.count() == 1


@pytest.mark.parametrize(("expression", "result"), [
    ("(17.5 * 3) / 4", "13.125"), ("2 ^ 10", "1024"), ("sqrt(16) + abs(-2)", "6.0"), ("-(3 % 2)", "-1"),
    ("factorial(5)", "120"), ("round(pi, 3)", "3.142"),
])
def test_the_calculator_computes(expression, result):
    assert asyncio.run(tools.Calculator().call({"expression": expression})) == result


@pytest.mark.parametrize("expression", [
    "__import__('os').system('id')", "().__class__", "open('/etc/passwd')", "9 ** 9 ** 9", "factorial(100000)",
    "x + 1", "lambda: 1", "[1] * 10", "'a' * 3", "1" * 600,
])
def test_the_calculator_refuses_anything_but_arithmetic(expression):
    with pytest.raises(tools.ToolError):
        asyncio.run(tools.Calculator().call({"expression": expression}))


def test_current_time_in_a_time_zone_and_a_clear_error_for_an_unknown_one():
    assert "(Asia/Seoul, UTC+0900)" in asyncio.run(tools.CurrentTime().call({"timezone": "Asia/Seoul"}))
    with pytest.raises(tools.ToolError, match="unknown time zone"):
        asyncio.run(tools.CurrentTime().call({"timezone": "Mars/Olympus"}))


def test_regenerating_an_answer_with_tool_steps_redoes_the_whole_answer(tool_model, user):
    tool_model.behaviour.tool_script = [calc("6 * 7")]
    conversation = conversation_create(owner=user)
    first = answering.answer(conversation=conversation, user=user, content="6*7?").assistant_turn
    question = Turn.objects.get(conversation=conversation, role="user")
    again = answering.answer(conversation=conversation, user=user, regenerate=True, turn_id=first.pk)
    conversation.refresh_from_db()
    branch = turn_path(conversation)
    # A new version beside the first one's first step, under the question, with its own step.
    assert [t.role for t in branch] == ["user", "assistant", "tool", "assistant"]
    assert branch[1].parent_id == question.pk and branch[1].sibling_count == 2 and branch[1].sibling_index == 2
    assert branch[-1].pk == again.turn_id and branch[2].content == "42"
    assert len(tool_model.chat_requests) == 4


def test_regenerating_after_a_clients_own_tool_results_redoes_only_the_last_answer(fake_upstream, client):  # noqa: F811
    weather = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    first = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "Weather?"}], tools=weather
    )
    call = first.choices[0].message.tool_calls[0]
    client.chat.completions.create(model="fake-model", tools=weather, messages=[
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ])
    conversation = Conversation.objects.get()
    answer = Turn.objects.get(pk=conversation.current_turn_id)
    again = answering.answer(conversation=conversation, user=conversation.owner, regenerate=True)
    assert again.assistant_turn.parent_id == answer.parent_id  # beside the answer, after the client's result
