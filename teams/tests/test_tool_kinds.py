"""The two kinds of server tool a group may be refused on their own, with server tools still allowed: web search and
MCP tools. Each is refused on the REST API and the page, hidden on the page, and not offered at answer time (to a
chat that had it on before), over real HTTP: the fake upstream, a fake SearXNG, the test MCP server."""

import asyncio
import json

import pytest
from django.test import Client
from django.urls import reverse

from conversations import answering
from conversations.answering import mcp
from conversations.models import Conversation
from conversations.services import conversation_create
from conversations.tests.api_helpers import assert_error
from conversations.tests.test_mcp import mcp_site, tool_results  # noqa: F401 (fixture)
from conversations.tests.test_web_search import search_site, searxng  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mcp_listed(settings):
    """An MCP server the site lists (on a port nothing listens on: never reached here)."""
    settings.CHAT_MCP_SERVERS = [{"name": "notes", "url": "http://127.0.0.1:9/mcp"}]
    yield
    mcp.close_all_sync()


def ask(conversation, user, content):
    """An answer as a new request makes it: for a fresh user object (the policy is read once per user object)."""
    fresh = type(user).objects.get(pk=user.pk)

    async def go():
        answer = await answering.start(conversation=conversation, user=fresh, content=content)
        return [entry async for entry in answer.follow()]

    return asyncio.run(go())


def page_of(user, conversation) -> str:
    page = Client()
    page.force_login(user)
    response = page.get(conversation.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def start(user, body):
    page = Client()
    page.force_login(user)
    return page.post("/c/start/", data=json.dumps(body), content_type="application/json")


def offered_names(request) -> set[str]:
    return {tool["function"]["name"] for tool in request.body.get("tools", [])}


def test_web_search_refused_and_hidden_but_other_server_tools_kept(
    search_site, searxng, mcp_listed, user, key_client, make_group  # noqa: F811
):
    searching = conversation_create(owner=user, web_search=True)  # turned on while the groups allowed it
    assert 'id="setting-web-search"' in page_of(user, searching)
    ask(searching, user, "Do otters hold hands?")
    assert searxng.queries == ["do otters hold hands"]
    assert offered_names(search_site.chat_requests[0]) == {"calculator", "web_search"}

    make_group("no-web", members=[user], web_search=False)
    page = page_of(user, searching)
    assert 'id="setting-web-search"' not in page and 'id="mcp-tools"' in page  # MCP tools are still allowed
    url = f"/api/v1/conversations/{searching.pk}/"
    assert_error(key_client.patch(url, {"web_search": True}, format="json"), 403, "feature_disabled")
    assert_error(key_client.post("/api/v1/conversations/", {"web_search": True}, format="json"), 403,
                 "feature_disabled")
    assert_error(start(user, {"web_search": True}), 403, "feature_disabled")
    assert Conversation.objects.count() == 1
    # MCP tools may still be turned on.
    assert key_client.patch(url, {"mcp_tools": ["notes__add"]}, format="json").status_code == 200
    key_client.patch(url, {"mcp_tools": []}, format="json")

    # The chat still has its switch on; at answer time the policy counts: web search is not offered, and the
    # model's call of it (the fake's script) is an unknown tool's error: no search made.
    asked, steps = len(search_site.chat_requests), len(tool_results(searching))
    ask(searching, user, "And sea otters?")
    searching.refresh_from_db()
    assert searching.web_search is True
    assert offered_names(search_site.chat_requests[asked]) == {"calculator"}
    assert tool_results(searching)[steps:] == ["Error: there is no tool named 'web_search'."]
    assert searxng.queries == ["do otters hold hands"]

    make_group("researchers", members=[user], web_search=True)  # another group allows it: the most generous
    assert 'id="setting-web-search"' in page_of(user, searching)
    asked = len(search_site.chat_requests)
    ask(searching, user, "Otters again?")
    assert "web_search" in offered_names(search_site.chat_requests[asked])


def test_mcp_tools_refused_and_hidden_but_other_server_tools_kept(
    mcp_site, user, key_client, make_group, settings, authenticated_client  # noqa: F811
):
    settings.CHAT_SERVER_TOOLS = ["calculator"]
    settings.CHAT_SEARCH_URL = "http://127.0.0.1:9/search"  # configured (never reached here)
    mcp_site.behaviour.tool_script = [("notes__add", json.dumps({"a": 2, "b": 3}))]
    listing, page_listing = reverse("api:mcp-server-list"), reverse("conversations:mcp-servers")
    enabled = conversation_create(owner=user, mcp_tools=["notes__add"])  # enabled while the groups allowed it
    assert key_client.get(listing).status_code == 200 and authenticated_client.get(page_listing).status_code == 200
    assert 'id="mcp-tools"' in page_of(user, enabled)
    ask(enabled, user, "What is 2 + 3?")
    assert offered_names(mcp_site.chat_requests[0]) == {"calculator", "notes__add"}

    make_group("no-mcp", members=[user], mcp_tools=False)
    assert_error(key_client.get(listing), 403, "feature_disabled")
    fresh = Client()
    fresh.force_login(user)
    assert fresh.get(page_listing).status_code == 404
    page = page_of(user, enabled)
    assert 'id="mcp-tools"' not in page and 'id="setting-web-search"' in page  # web search is still allowed
    url = f"/api/v1/conversations/{enabled.pk}/"
    assert_error(key_client.patch(url, {"mcp_tools": ["notes__add"]}, format="json"), 403, "feature_disabled")
    assert_error(key_client.post("/api/v1/conversations/", {"mcp_tools": ["notes__add"]}, format="json"), 403,
                 "feature_disabled")
    assert_error(start(user, {"mcp_tools": ["notes__add"]}), 403, "feature_disabled")
    assert Conversation.objects.count() == 1
    assert key_client.patch(url, {"web_search": True}, format="json").status_code == 200  # web search: allowed
    key_client.patch(url, {"web_search": False}, format="json")

    # At answer time: the chat's MCP tool is not offered (the calculator is), and the model's call of it (the fake's
    # script) is an unknown tool's error: the MCP server is not called.
    assert tool_results(enabled) == ["2 + 3 = 5"]
    asked = len(mcp_site.chat_requests)
    ask(enabled, user, "What is 2 + 3 now?")
    enabled.refresh_from_db()
    assert enabled.mcp_tools == ["notes__add"]
    assert offered_names(mcp_site.chat_requests[asked]) == {"calculator"}
    assert tool_results(enabled) == ["2 + 3 = 5", "Error: there is no tool named 'notes__add'."]


def test_server_tools_off_refuses_both_kinds_whatever_their_switches(user, key_client, make_group, settings,
                                                                     mcp_listed):
    settings.CHAT_SEARCH_URL = "http://127.0.0.1:9/search"
    conversation = conversation_create(owner=user)
    make_group("plain-answers", members=[user], server_tools=False, web_search=True, mcp_tools=True)
    url = f"/api/v1/conversations/{conversation.pk}/"
    assert_error(key_client.patch(url, {"web_search": True}, format="json"), 403, "feature_disabled")
    assert_error(key_client.patch(url, {"mcp_tools": ["notes__add"]}, format="json"), 403, "feature_disabled")
    assert_error(key_client.get(reverse("api:mcp-server-list")), 403, "feature_disabled")
    page = page_of(user, conversation)
    assert 'id="setting-web-search"' not in page and 'id="mcp-tools"' not in page
