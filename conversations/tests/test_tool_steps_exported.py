"""A conversation's server tool steps outside the chat page: the Markdown and JSON exports and the admin review
show each call (tool, input) and its result (with its time)."""

import asyncio
import json

import pytest
from django.urls import reverse

from conversations import answering
from conversations.selectors import turn_path
from conversations.services import conversation_create
from conversations.tests.admin_support import make_reviewer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat_with_a_step(settings, fake_upstream, user):
    settings.CHAT_TOOL_MODELS = ["fake-model"]
    settings.CHAT_SERVER_TOOLS = ["calculator"]
    fake_upstream.behaviour.tool_script = [("calculator", json.dumps({"expression": "6 * 7"}))]
    fake_upstream.behaviour.reply = "It is 42."
    conversation = conversation_create(owner=user, title="Sums")

    async def go():
        answer = await answering.start(conversation=conversation, user=user, content="What is 6 * 7?")
        await answer.stored()

    asyncio.run(go())
    conversation.refresh_from_db()
    return conversation


def test_the_exports_carry_each_call_and_its_result(chat_with_a_step, authenticated_client):
    _, step, result, _ = turn_path(chat_with_a_step)
    call_id = step.tool_calls[0]["id"]
    url = reverse("api:conversation-export", args=[chat_with_a_step.pk])

    document = authenticated_client.get(url + "?format=json").json()
    turns = {turn["id"]: turn for turn in document["turns"]}
    assert turns[step.pk]["tool_calls"] == [
        {"id": call_id, "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "6 * 7"}'}}
    ]
    assert turns[result.pk]["role"] == "tool" and turns[result.pk]["content"] == "42"
    assert turns[result.pk]["tool_call_id"] == call_id and turns[result.pk]["latency_ms"] is not None

    response = authenticated_client.get(url + "?format=md")
    markdown = (b"".join(response.streaming_content) if response.streaming else response.content).decode()
    assert f"Called the tool `calculator` ({call_id}) with:\n\n```json\n{{\"expression\": \"6 * 7\"}}\n```" in markdown
    assert f"## Tool result ({call_id}, {result.latency_ms} ms)\n\n```\n42\n```" in markdown
    assert markdown.index("Called the tool") < markdown.index("## Tool result") < markdown.index("It is 42.")


def test_the_admin_review_shows_each_call_and_its_result(chat_with_a_step, client, make_user):
    client.force_login(make_reviewer(make_user))
    _, step, result, _ = turn_path(chat_with_a_step)
    call_id = step.tool_calls[0]["id"]
    html = client.get(reverse("admin:conversations_conversation_change", args=[chat_with_a_step.pk])).content.decode()
    assert (f'<div class="review-tool-call">tool call <code>calculator</code> ({call_id}): '
            "{&quot;expression&quot;: &quot;6 * 7&quot;}</div>") in html
    assert f'<div class="review-tool-call">result of <code>{call_id}</code></div>' in html
