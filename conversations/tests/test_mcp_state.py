"""What a worker knows of its MCP servers, shown without waiting for them: the chat page renders at once (a server
not started yet is started in the background, and the page asks again for the list), and a server that is down
says why, on the page (in the user's language) and in the REST API's listing, and is tried again."""

import socket
import subprocess
import sys
import time

import pytest
from django.test import Client
from django.urls import reverse

from conversations.answering import mcp
from conversations.services import conversation_create
from conversations.tests import test_mcp
from conversations.tests.test_mcp import SERVER_SCRIPT, stdio_server
from teams.models import GroupPolicy

pytestmark = pytest.mark.django_db(transaction=True)
mcp_site = test_mcp.mcp_site  # the site's one stdio server; every server process ended after each test

# A stdio "server" that starts and never answers: the worker waits up to mcp.CONNECT_SECONDS for its tool list.
SILENT_SERVER = {"name": "notes", "command": sys.executable, "args": ["-c", "import time; time.sleep(120)"]}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def down_server(settings, name="wiki") -> tuple[dict, int]:
    """An HTTP server the operator allowed, on a port nothing listens on."""
    port = closed_port()
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    return {"name": name, "url": f"http://127.0.0.1:{port}/mcp"}, port


def state_of(name: str, *, until, seconds: float = 30) -> mcp.ServerStatus:
    """The server's status once `until(status)` holds (the worker starts and retries servers in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        status = next(s for s in mcp.statuses() if s.name == name)
        if until(status):
            return status
        assert time.monotonic() < deadline, f"{name} stayed {status}"
        time.sleep(0.05)


def page_of(client, conversation=None) -> str:
    url = conversation.get_absolute_url() if conversation else reverse("conversations:home")
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def count_requests(monkeypatch):
    """Every MCP request the worker makes for a caller (a tool list waited for, a call), counted."""
    made = []
    request = mcp.Connection.request

    async def counted(self, operation):
        made.append(self.config.name)
        return await request(self, operation)

    monkeypatch.setattr(mcp.Connection, "request", counted)
    return made


def test_the_first_page_does_not_wait_for_a_server_being_started(mcp_site, settings, authenticated_client,
                                                                  count_requests):
    settings.CHAT_MCP_SERVERS = [SILENT_SERVER]
    page = page_of(authenticated_client)
    # Rendered while the server is still silent: it says so, lists nothing yet, and asks again in a second.
    assert "notes: starting…" in page and 'name="mcp_tool"' not in page
    assert 'data-poll-seconds="1"' in page
    assert count_requests == []  # the page made no MCP request and waited for none
    assert state_of("notes", until=lambda s: True).state == mcp.State.STARTING


def test_the_list_fills_in_once_the_server_is_listed(mcp_site, user, authenticated_client, count_requests):
    conversation = conversation_create(owner=user)
    conversation.mcp_tools = ["notes__add"]
    conversation.save()
    page = page_of(authenticated_client, conversation)
    assert "notes: starting…" in page and 'name="mcp_tool"' not in page
    # The chat's tools travel with the page, for the boxes that appear later.
    assert '<script id="mcp-enabled" type="application/json">["notes__add"]</script>' in page
    assert count_requests == []

    state_of("notes", until=lambda s: s.state == mcp.State.READY)
    # What the page asks for again: the list alone, all tools, nothing more to wait for.
    fragment = authenticated_client.get(reverse("conversations:mcp-servers")).content.decode()
    assert 'value="notes__add"' in fragment and 'value="notes__whoami"' in fragment
    assert "starting" not in fragment and "data-poll-seconds" not in fragment
    # The next page shows the cached list, the chat's tool ticked, without a request either.
    page = page_of(authenticated_client, conversation)
    assert 'name="mcp_tool" value="notes__add" checked' in page and "data-poll-seconds" not in page
    assert count_requests == []


def test_a_down_server_says_why_on_the_page_and_in_the_api(mcp_site, settings, user, authenticated_client,
                                                          key_client):
    wiki, _ = down_server(settings)
    settings.CHAT_MCP_SERVERS = [stdio_server(), wiki]
    assert "wiki: starting…" in page_of(authenticated_client)
    status = state_of("wiki", until=lambda s: s.state == mcp.State.UNAVAILABLE)
    assert status.reason == mcp.Reason.CONNECTION_REFUSED and status.tools == ()
    state_of("notes", until=lambda s: s.state == mcp.State.READY)

    page = page_of(authenticated_client)
    assert "wiki: unavailable (connection refused), retrying" in page
    assert 'value="notes__add"' in page and "wiki__" not in page  # the other server's tools are there
    assert 'data-poll-seconds="' in page  # the page asks again after the next try

    korean = Client()
    korean.force_login(user)
    korean.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"
    assert "wiki: 사용할 수 없음(연결 거부됨), 다시 시도하는 중" in page_of(korean)

    listing = key_client.get(reverse("api:mcp-server-list"))
    assert listing.status_code == 200
    servers = {server["name"]: server for server in listing.json()["servers"]}
    assert servers["wiki"]["state"] == "unavailable" and servers["wiki"]["reason"] == "connection_refused"
    assert servers["wiki"]["detail"] == "connection refused" and servers["wiki"]["tools"] == []
    assert 0 <= servers["wiki"]["retry_in_seconds"] <= max(mcp.RETRY_SECONDS)
    assert servers["notes"]["state"] == "ready" and servers["notes"]["reason"] is None
    add = next(tool for tool in servers["notes"]["tools"] if tool["name"] == "notes__add")
    assert add["tool"] == "add" and add["description"] == "Add two numbers." and add["approval"] is False
    assert set(add["input_schema"]["properties"]) == {"a", "b"}


def test_a_server_whose_command_cannot_run_says_so(mcp_site, settings):
    settings.CHAT_MCP_SERVERS = [{"name": "notes", "command": "/nonexistent/notes-mcp"}]
    status = state_of("notes", until=lambda s: s.state == mcp.State.UNAVAILABLE)
    assert status.reason == mcp.Reason.COMMAND_NOT_FOUND
    # An answer does not wait for it either: it is offered no tool of the server.
    assert mcp.list_tools_sync() == {}


def test_a_down_server_is_tried_again_and_listed_once_it_is_up(mcp_site, settings):
    wiki, port = down_server(settings)
    settings.CHAT_MCP_SERVERS = [wiki]
    state_of("wiki", until=lambda s: s.state == mcp.State.UNAVAILABLE)
    process = subprocess.Popen([sys.executable, SERVER_SCRIPT, "--http", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status = state_of("wiki", until=lambda s: s.state == mcp.State.READY, seconds=60)
        assert "add" in {tool.name for tool in status.tools} and status.reason is None
        assert "wiki__add" in mcp.list_tools_sync()
    finally:
        process.terminate()
        process.wait(10)


def test_the_listing_needs_server_tools(mcp_site, user, key_client, authenticated_client):
    assert key_client.get(reverse("api:mcp-server-list")).status_code == 200
    GroupPolicy.objects.create(group=user.groups.create(name="plain-answers"), server_tools=False)
    refused = key_client.get(reverse("api:mcp-server-list"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "feature_disabled"
    assert authenticated_client.get(reverse("conversations:mcp-servers")).status_code == 404
    assert 'id="mcp-tools"' not in page_of(authenticated_client)
