"""Features a group may not use are refused on their routes: share links, file uploads, temporary chats, API key
creation, and server tools (none offered to the model)."""

import io
import json

import openai
import pytest
from django.test import Client

from accounts.models import ApiKey
from conversations import answering
from conversations.models import Attachment, Conversation, ShareLink
from conversations.services import conversation_create
from conversations.tests.api_helpers import assert_error, session_client
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(user):
    page = Client()  # (`client` here is the openai one)
    page.force_login(user)
    return page


def post_json(page, url, body):
    return page.post(url, data=json.dumps(body), content_type="application/json")


def test_share_links_refused_to_a_group_without_them(page, user, make_group, fake_upstream):
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="hi")
    make_group("no-sharing", members=[user], share_links=False)
    assert_error(post_json(page, f"/c/{conversation.pk}/share/", {}), 403, "feature_disabled")
    assert not ShareLink.objects.exists()


def test_share_links_allowed_by_another_group(page, user, make_group, fake_upstream):
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="hi")
    make_group("no-sharing", members=[user], share_links=False)
    make_group("sharing", members=[user], share_links=True)
    assert post_json(page, f"/c/{conversation.pk}/share/", {}).status_code == 201


def upload(api, name: str, data: bytes):
    file = io.BytesIO(data)
    file.name = name
    return api.post("/api/v1/attachments/", {"file": file}, format="multipart")


def test_uploads_refused_to_a_group_without_them(api_client, user, make_group):
    assert upload(api_client, "notes.txt", b"allowed").status_code == 201
    make_group("no-files", members=[user], file_uploads=False)
    api_client.force_authenticate(user=type(user).objects.get(pk=user.pk))  # a new request's user: no cached policy
    assert_error(upload(api_client, "notes.txt", b"refused"), 403, "feature_disabled")
    assert Attachment.objects.count() == 1


def test_files_inside_a_chat_completion_are_refused_too(client, user, make_group, fake_upstream):  # noqa: F811
    make_group("no-files", members=[user], file_uploads=False)
    content = [{"type": "text", "text": "read this"},
               {"type": "file", "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGVsbG8="}}]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": content}])
    assert refused.value.body["code"] == "feature_disabled"
    assert not Attachment.objects.exists() and not Conversation.objects.exists() and not fake_upstream.chat_requests


def test_temporary_chats_refused_on_the_page_and_with_store_false(page, client, user, make_group,  # noqa: F811
                                                                  fake_upstream):
    make_group("keep-everything", members=[user], temporary_chats=False)
    assert_error(post_json(page, "/c/start/", {"temporary": True}), 403, "feature_disabled")
    assert post_json(page, "/c/start/", {}).status_code == 201
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hi"}], store=False)
    assert refused.value.body["code"] == "feature_disabled"
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="fake-model", input="hi", store=False)
    assert not Conversation.objects.filter(delete_after__isnull=False).exists() and not fake_upstream.chat_requests


def test_api_keys_refused_to_a_group_without_them(user, password, make_group):
    make_group("no-keys", members=[user], api_keys=False)
    before = ApiKey.objects.count()
    api = session_client(user.username, password)
    assert_error(api.post("/api/v1/keys/", {"name": "script"}, format="json"), 403, "feature_disabled")
    page = Client()
    page.force_login(user)
    assert 'id="keys-not-allowed"' in page.get("/accounts/profile/").content.decode()
    page.post("/accounts/keys/", {"name": "script"})
    assert ApiKey.objects.count() == before


@pytest.fixture
def tool_model(settings, fake_upstream):
    settings.CHAT_TOOL_MODELS = ["fake-model"]
    settings.CHAT_SERVER_TOOLS = ["calculator", "current_time"]
    return fake_upstream


def test_no_server_tools_offered_to_a_group_without_them(user, other_user, make_group, tool_model):
    make_group("plain-answers", members=[user], server_tools=False)
    answering.answer(conversation=conversation_create(owner=user), user=user, content="hi")
    restricted = list(tool_model.chat_requests)
    answering.answer(conversation=conversation_create(owner=other_user), user=other_user, content="hi")
    free = tool_model.chat_requests[len(restricted):]
    assert restricted and all("tools" not in request.body for request in restricted)
    assert {tool["function"]["name"] for tool in free[0].body["tools"]} == {"calculator", "current_time"}


def test_web_search_and_mcp_tools_are_refused_and_hidden_for_a_group_without_server_tools(
    page, api_client, user, make_group, settings
):
    settings.CHAT_SEARCH_URL = "http://127.0.0.1:9/search"  # configured (never reached here)
    conversation = conversation_create(owner=user)
    assert 'id="setting-web-search"' in page.get(conversation.get_absolute_url()).content.decode()

    make_group("plain-answers", members=[user], server_tools=False)
    fresh = Client()
    fresh.force_login(user)
    assert 'id="setting-web-search"' not in fresh.get(conversation.get_absolute_url()).content.decode()
    url = f"/api/v1/conversations/{conversation.pk}/"
    assert_error(api_client.patch(url, {"web_search": True}, format="json"), 403, "feature_disabled")
    assert_error(api_client.post("/api/v1/conversations/", {"web_search": True}, format="json"), 403,
                 "feature_disabled")
    assert_error(post_json(fresh, "/c/start/", {"web_search": True}), 403, "feature_disabled")
    conversation.refresh_from_db()
    assert conversation.web_search is False and Conversation.objects.count() == 1
    assert api_client.patch(url, {"web_search": False}, format="json").status_code == 200  # turning off: fine
