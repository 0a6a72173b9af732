"""LiteLLM's OpenAI-compatible provider (`openai/<model>` with chatsite's `api_base`) against a live chatsite:
completion, stream, a tool round trip, and its Responses API (`litellm.responses`)."""

import json
import os

import pytest

# Its model-price map from the package, not fetched from the internet at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402 (after the setting above)

from conversations.tests.test_api_live import live_asgi, raw_key  # noqa: E402, F401 (fixtures)
from tests.clients.helpers import stored_conversations  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city", "unit"]},
}}


@pytest.fixture
def chatsite(live_asgi, raw_key, fake_upstream):  # noqa: F811
    """What every LiteLLM call here takes to reach chatsite."""
    return {"model": "openai/fake-model", "api_base": f"{live_asgi}/v1", "api_key": raw_key, "num_retries": 0}


def test_completion(chatsite, user, fake_upstream):
    response = litellm.completion(messages=[{"role": "user", "content": "Hi"}], **chatsite)
    reply = fake_upstream.behaviour.reply
    assert response.choices[0].message.content == reply and response.usage.completion_tokens > 0
    assert stored_conversations(user) == [[("user", "Hi"), ("assistant", reply)]]


def test_stream(chatsite, user, fake_upstream):
    chunks = list(litellm.completion(messages=[{"role": "user", "content": "Hi"}], stream=True, **chatsite))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == fake_upstream.behaviour.reply and len(chunks) > 2
    assert stored_conversations(user) == [[("user", "Hi"), ("assistant", fake_upstream.behaviour.reply)]]


def test_a_tool_round_trip(chatsite, user, fake_upstream):
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = litellm.completion(messages=messages, tools=[WEATHER_TOOL], **chatsite)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]
    second = litellm.completion(messages=messages, tools=[WEATHER_TOOL], **chatsite)
    assert second.choices[0].message.content == fake_upstream.behaviour.reply
    assert stored_conversations(user) == [[
        ("user", "Weather in Paris?"), ("assistant", ""), ("tool", "18 degrees and sunny"),
        ("assistant", fake_upstream.behaviour.reply),
    ]]


def test_responses(chatsite, user, fake_upstream):
    first = litellm.responses(input="Hi", **chatsite)
    reply = fake_upstream.behaviour.reply
    assert first.output[0].content[0].text == reply and first.status == "completed"
    second = litellm.responses(input="Again", previous_response_id=first.id, **chatsite)
    assert second.output[0].content[0].text == reply
    assert stored_conversations(user) == [[("user", "Hi"), ("assistant", reply), ("user", "Again"),
                                           ("assistant", reply)]]
