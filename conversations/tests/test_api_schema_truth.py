"""The REST schema says what the server does: each server-sent event's data matches its published schema, key
creation lists only the session, /api/chat takes the text parts it advertises, `page` is checked, and the limits
the server enforces (files per message, leaf and after, a download's type, the Responses body) are the schema's."""

import json
import uuid

import httpx2 as httpx
import jsonschema
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from conversations.models import Conversation
from conversations.services import conversation_create
from conversations.tests.test_api_live import live_asgi, raw_key  # noqa: F401 (fixtures)
from conversations.tests.test_attachments import PNG

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def published():
    return json_schema(json.loads(Client().get("/api/schema/", HTTP_ACCEPT="application/json").content))


def json_schema(node):
    """OpenAPI 3.0's `nullable: true` in JSON Schema's terms (a "null" type), so jsonschema can check it."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        elif "$ref" in node:
            node = {"anyOf": [{"$ref": node.pop("$ref")}, {"type": "null"}], **node}
        if "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
    return node


def resolver_for(published):
    return jsonschema.RefResolver.from_schema(published)


def parse_sse(raw: str) -> list[tuple[str, str]]:
    """(event name, its data as sent: JSON text, or "[DONE]")."""
    events = []
    for block in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "data" in fields:
            events.append((fields.get("event", "message"), fields["data"]))
    return events


def post_stream(live_asgi, raw_key, path: str, body: dict) -> str:  # noqa: F811
    response = httpx.post(f"{live_asgi}{path}", json=body, headers={"Authorization": f"Bearer {raw_key}"}, timeout=20)
    assert response.status_code == 200, response.text
    return response.text


def test_every_answer_event_matches_its_schema(live_asgi, raw_key, user, fake_upstream, published):  # noqa: F811
    operation = published["paths"]["/api/v1/conversations/{conversation_id}/turns/"]["post"]
    declared = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]["x-sse-events"]
    conversation = conversation_create(owner=user)
    fake_upstream.behaviour.tokens = 5
    raw = post_stream(live_asgi, raw_key, f"/api/v1/conversations/{conversation.pk}/turns/",
                      {"content": "hi", "stream": True})
    events = parse_sse(raw)
    names = [name for name, _ in events]
    assert names[0] == "turn" and "delta" in names and "done" in names
    for name, data in events:
        assert name in declared, name
        jsonschema.validate(json.loads(data), declared[name], resolver=resolver_for(published))


def test_chat_completion_chunks_match_their_schema(live_asgi, raw_key, fake_upstream, published):  # noqa: F811
    operation = published["paths"]["/v1/chat/completions"]["post"]
    chunk_schema = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]["x-sse-events"]["message"]
    raw = post_stream(live_asgi, raw_key, "/v1/chat/completions", {
        "model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True,
        "stream_options": {"include_usage": True},
    })
    payloads = [data for _, data in parse_sse(raw)]
    assert payloads[-1] == "[DONE]"
    for data in payloads[:-1]:
        jsonschema.validate(json.loads(data), chunk_schema, resolver=resolver_for(published))


def test_key_creation_lists_only_the_session(published, key_client):
    assert published["paths"]["/api/v1/keys/"]["post"]["security"] == [{"cookieAuth": []}]
    response = key_client.post("/api/v1/keys/", {"name": "minted by a key"}, format="json")
    assert response.status_code == 403  # what the schema now says: a key is not accepted here


def test_api_chat_takes_text_parts_as_advertised(key_client, fake_upstream, published):
    schema = published["components"]["schemas"]["ChatMessageRequest"]["properties"]["content"]
    assert [option["type"] for option in schema["oneOf"]] == ["string", "array"]
    response = key_client.post("/api/chat", {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]},
    ]}, format="json")
    assert response.status_code == 200, response.content
    assert Conversation.objects.get().turns.get(position=1).content == "Hello there"


@pytest.mark.parametrize("query", ["page=", "page=abc", "page=1&page=2", "page=0", "page=-1", "page=²"])
def test_a_bad_page_is_a_400_naming_it(key_client, query):
    response = key_client.get(f"/api/v1/conversations/?{query}")
    assert response.status_code == 400, (query, response.content)
    assert "page" in response.json()["error"]["fields"]


def test_a_page_past_the_end_is_a_404(key_client):
    assert key_client.get("/api/v1/conversations/?page=1").status_code == 200
    assert key_client.get("/api/v1/conversations/?page=9").status_code == 404


def test_the_turn_request_allows_the_sites_number_of_files(published, key_client, user, settings):
    attachments = published["components"]["schemas"]["TurnCreateRequest"]["properties"]["attachments"]
    assert attachments["maxItems"] == settings.CHAT_ATTACHMENTS_PER_MESSAGE == 5
    conversation = conversation_create(owner=user)
    too_many = [str(uuid.uuid4()) for _ in range(attachments["maxItems"] + 1)]
    response = key_client.post(f"/api/v1/conversations/{conversation.pk}/turns/",
                               {"content": "files", "attachments": too_many}, format="json")
    assert response.status_code == 400 and "attachments" in response.json()["error"]["fields"]
    assert "At most 5 files" in response.json()["error"]["fields"]["attachments"][0]


@pytest.mark.parametrize(("name", "data"), [("dot.png", PNG), ("notes.txt", b"plain notes")])
def test_a_download_is_documented_as_the_files_own_type(published, key_client, name, data):
    documented = published["paths"]["/api/v1/attachments/{attachment_id}/content/"]["get"]["responses"]["200"]
    uploaded = key_client.post("/api/v1/attachments/", {"file": SimpleUploadedFile(name, data)}, format="multipart")
    response = key_client.get(f"/api/v1/attachments/{uploaded.json()['id']}/content/")
    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] in documented["content"]


@pytest.mark.parametrize(("path", "name"), [
    ("/api/v1/conversations/{conversation_id}/turns/", "leaf"),
    ("/api/v1/conversations/{conversation_id}/stream/", "after"),
])
def test_leaf_and_after_state_their_bounds_and_the_server_keeps_them(published, key_client, user, path, name):
    parameter = next(p for p in published["paths"][path]["get"]["parameters"] if p["name"] == name)
    low, high = parameter["schema"]["minimum"], parameter["schema"]["maximum"]
    url = path.format(conversation_id=conversation_create(owner=user).pk)
    for outside in (low - 1, high + 1):
        response = key_client.get(f"{url}?{name}={outside}")
        assert response.status_code == 400, (name, outside, response.content)


def test_the_responses_body_requires_a_model(published, key_client):
    operation = published["paths"]["/v1/responses"]["post"]
    assert operation["requestBody"]["required"] is True
    body = published["components"]["schemas"]["ResponseRequestRequest"]
    assert {"model", "input"} <= set(body["required"])
    response = key_client.post("/v1/responses", {"input": "no model"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"
