"""MCP servers as server tools, end to end: a local MCP server written with the official SDK (mcp_server.py),
over stdio (a process the server starts) and over streamable HTTP (a process the test starts on 127.0.0.1), the
fake upstream calling its tools over real HTTP. Also: tool calls that wait for the user's approval."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from conversations import answering
from conversations.answering import mcp, tools
from conversations.models import Turn
from conversations.selectors import turn_path
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db(transaction=True)

SERVER_SCRIPT = str(Path(__file__).with_name("mcp_server.py"))


def stdio_server(**extra):
    return {"name": "notes", "command": sys.executable, "args": [SERVER_SCRIPT], "timeout": 20,
            "tools": {"delete_note": {"approval": True}}, **extra}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def children() -> set[int]:
    """This process's child processes that are still running."""
    me = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def mcp_site(settings, fake_upstream):
    settings.CHAT_TOOL_MODELS = ["fake-model"]
    settings.CHAT_SERVER_TOOLS = []
    settings.CHAT_TOOL_ROUNDS = 5
    settings.CHAT_MCP_SERVERS = [stdio_server()]
    before = children()
    yield fake_upstream
    mcp.close_all_sync()
    # Every server process this test started has ended (none left behind, none a zombie).
    assert children() - before == set()


@pytest.fixture
def http_server(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, SERVER_SCRIPT, "--http", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "the MCP server did not start"
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(10)


def ask(conversation, user, content):
    async def go():
        answer = await answering.start(conversation=conversation, user=user, content=content)
        return [entry async for entry in answer.follow()]

    return asyncio.run(go())


def tool_results(conversation) -> list[str]:
    conversation.refresh_from_db()
    return [t.content for t in turn_path(conversation) if t.role == "tool"]


def chat_with(user, *names):
    conversation = conversation_create(owner=user)
    conversation.mcp_tools = list(names)
    conversation.save()
    return conversation


def test_a_stdio_servers_tools_are_listed_called_stored_and_shown(mcp_site, user, authenticated_client):
    mcp_site.behaviour.tool_script = [("notes__add", json.dumps({"a": 2, "b": 3}))]
    mcp_site.behaviour.reply = "It is 5."
    conversation = chat_with(user, "notes__add")

    # Once the worker has listed its server (an answer waits for that; the page does not: test_mcp_state.py), the
    # page lists every tool of the site's servers; the chat's own are ticked.
    assert "notes__add" in mcp.list_tools_sync()
    page = authenticated_client.get(reverse("conversations:detail", args=[conversation.pk])).content.decode()
    assert 'name="mcp_tool" value="notes__add" checked' in page
    assert 'name="mcp_tool" value="notes__whoami">' in page
    assert "asks you first" in page  # delete_note needs approval

    entries = ask(conversation, user, "What is 2 + 3?")
    assert tool_results(conversation) == ["2 + 3 = 5"]
    branch = turn_path(conversation)
    assert branch[-1].content == "It is 5." and branch[-1].status == Turn.Status.COMPLETE
    # Offered: only the tool this chat enabled, with the server's own description and schema.
    offered = mcp_site.chat_requests[0].body["tools"]
    assert [t["function"]["name"] for t in offered] == ["notes__add"]
    assert offered[0]["function"]["description"] == "Add two numbers."
    assert set(offered[0]["function"]["parameters"]["properties"]) == {"a", "b"}
    assert mcp_site.chat_requests[1].messages[-1]["content"] == "2 + 3 = 5"
    step = next(e for e in entries if e.name == "tool_result").data
    assert step["tool_call"]["function"]["name"] == "notes__add" and step["is_error"] is False

    # The step is shown in the thread after a reload: the call with its input, the result with its time.
    page = authenticated_client.get(reverse("conversations:detail", args=[conversation.pk])).content.decode()
    assert "<code>notes__add</code>" in page and "2 + 3 = 5" in page
    assert "Tool result" in page and " ms" in page


def test_a_chat_that_enabled_nothing_is_offered_no_mcp_tool(mcp_site, user):
    conversation = conversation_create(owner=user)
    assert tools.offered("fake-model", conversation) == {}
    conversation.mcp_tools = ["notes__whoami", "notes__gone", "elsewhere__add"]
    assert list(tools.offered("fake-model", conversation)) == ["notes__whoami"]


def test_a_tool_the_chat_did_not_enable_is_not_run(mcp_site, user):
    mcp_site.behaviour.tool_script = [("notes__whoami", "{}")]
    conversation = chat_with(user, "notes__add")
    ask(conversation, user, "Who are you?")
    assert tool_results(conversation) == ["Error: there is no tool named 'notes__whoami'."]
    assert mcp_site.chat_requests[0].body["tools"][0]["function"]["name"] == "notes__add"


def test_the_chats_tools_are_set_over_the_api_for_known_servers_only(mcp_site, user, key_client):
    conversation = conversation_create(owner=user)
    url = reverse("api:conversation-detail", args=[conversation.pk])
    response = key_client.patch(url, {"mcp_tools": ["notes__add", "notes__add", "notes__whoami"]}, format="json")
    assert response.status_code == 200 and response.json()["mcp_tools"] == ["notes__add", "notes__whoami"]
    conversation.refresh_from_db()
    assert conversation.mcp_tools == ["notes__add", "notes__whoami"]
    refused = key_client.patch(url, {"mcp_tools": ["other__add"]}, format="json")
    assert refused.status_code == 400 and "other__add" in refused.json()["error"]["fields"]["mcp_tools"][0]


def test_a_server_that_crashes_mid_call_gives_an_error_and_the_next_call_starts_it_again(mcp_site, user):
    mcp_site.behaviour.tool_rounds = 3
    mcp_site.behaviour.tool_script = [("notes__whoami", "{}"), ("notes__crash", "{}"), ("notes__whoami", "{}")]
    conversation = chat_with(user, "notes__whoami", "notes__crash")
    ask(conversation, user, "Crash it.")

    first, crashed, again = tool_results(conversation)
    assert crashed == "Error: the MCP server notes stopped during the call."
    first_pid, second_pid = int(first.removeprefix("pid ")), int(again.removeprefix("pid "))
    assert first_pid != second_pid and not alive(first_pid) and alive(second_pid)
    # The model read the error, and the answer completed.
    assert turn_path(conversation)[-1].status == Turn.Status.COMPLETE


def test_a_slow_call_times_out_and_the_model_is_told(mcp_site, user, settings):
    settings.CHAT_MCP_SERVERS = [stdio_server(tools={"slow": {"timeout": 1}})]
    mcp_site.behaviour.tool_script = [("notes__slow", json.dumps({"seconds": 30}))]
    conversation = chat_with(user, "notes__slow")
    ask(conversation, user, "Take your time.")
    assert tool_results(conversation) == ["Error: the tool notes__slow took longer than 1 s and was stopped."]


def test_a_long_result_is_cut(mcp_site, user, settings):
    settings.CHAT_MCP_SERVERS = [stdio_server(max_result_chars=8)]
    mcp_site.behaviour.tool_script = [("notes__add", json.dumps({"a": 20000, "b": 3}))]
    conversation = chat_with(user, "notes__add")
    ask(conversation, user, "Add.")
    assert tool_results(conversation) == ["20000 + \n[cut at 8 characters]"]  # of "20000 + 3 = 20003"


def test_an_http_server_goes_through_the_outbound_guard(mcp_site, user, settings, http_server):
    settings.CHAT_MCP_SERVERS = [{"name": "web", "url": f"http://127.0.0.1:{http_server}/mcp"}]
    conversation = chat_with(user, "web__add")
    # 127.0.0.1 is refused until the operator allow-lists the server: no tool is listed, none offered.
    assert mcp.list_tools_sync() == {}
    assert tools.offered("fake-model", conversation) == {}

    # The operator allow-lists it: a worker started with that setting reaches the server.
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{http_server}"]
    mcp.close_all_sync()
    mcp_site.behaviour.tool_script = [("web__add", json.dumps({"a": 40, "b": 2}))]
    ask(conversation, user, "40 + 2?")
    assert tool_results(conversation) == ["40 + 2 = 42"]


def test_the_guard_refuses_a_host_that_resolves_to_a_private_address(settings):
    with pytest.raises(mcp.outbound.AddressRefused):
        asyncio.run(mcp.outbound.check_mcp_url("http://localhost:9/mcp"))
    with pytest.raises(mcp.outbound.AddressRefused):
        asyncio.run(mcp.outbound.check_mcp_url("http://169.254.169.254/mcp"))
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = ["localhost:9"]
    asyncio.run(mcp.outbound.check_mcp_url("http://localhost:9/mcp"))


# --- Approval -------------------------------------------------------------------------------------------


def ask_and_answer(conversation, user, content, decide):
    """Run the answer; at its `tool_approval` event, `decide(data)` (sync: a request from the page or an API
    client) is called from a thread, as another request would be."""

    async def go():
        answer = await answering.start(conversation=conversation, user=user, content=content)
        entries = []
        async for entry in answer.follow():
            entries.append(entry)
            if entry.name == "tool_approval":
                await sync_to_async(decide, thread_sensitive=False)(entry.data)
        return entries

    return asyncio.run(go())


def owner_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_approval_required_call_waits_and_runs_once_allowed(mcp_site, user):
    mcp_site.behaviour.tool_script = [("notes__delete_note", json.dumps({"title": "groceries"}))]
    conversation = chat_with(user, "notes__delete_note")
    responses = []

    def allow(data):
        # Nothing ran while the answer waited.
        assert Turn.objects.filter(conversation=conversation, role=Turn.Role.TOOL).count() == 0
        responses.append(owner_client(user).post(data["approval_url"], {"allow": True},
                                                 content_type="application/json"))

    entries = ask_and_answer(conversation, user, "Delete my groceries note.", allow)
    assert [r.status_code for r in responses] == [200]
    assert responses[0].json() == {"tool_call_id": entries[1].data["tool_call"]["id"], "allow": True}
    names = [e.name for e in entries]
    assert names[:3] == ["turn", "tool_approval", "tool_result"] and names[-1] == "done"
    approval = entries[1].data
    assert approval["tool_call"]["function"] == {"name": "notes__delete_note", "arguments": '{"title": "groceries"}'}
    assert approval["timeout_seconds"] == 300
    assert approval["assistant_turn_id"] == entries[0].data["assistant_turn"]["id"]
    assert tool_results(conversation) == ["Deleted the note 'groceries'."]
    # Decided once: the same decision again finds nothing waiting.
    again = owner_client(user).post(approval["approval_url"], {"allow": False}, content_type="application/json")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


def test_a_refused_call_is_told_to_the_model_and_not_made(mcp_site, user, key_client):
    mcp_site.behaviour.tool_script = [("notes__delete_note", json.dumps({"title": "groceries"}))]
    mcp_site.behaviour.reply = "I did not delete it."
    conversation = chat_with(user, "notes__delete_note")

    def refuse(data):
        assert key_client.post(data["approval_url"], {"allow": False}, format="json").status_code == 200

    ask_and_answer(conversation, user, "Delete my groceries note.", refuse)
    refused = "Error: the user refused this call; it was not made."
    assert tool_results(conversation) == [refused]
    assert mcp_site.chat_requests[1].messages[-1]["content"] == refused
    assert turn_path(conversation)[-1].content == "I did not delete it."


def test_an_unanswered_call_is_refused_after_the_timeout(mcp_site, user, settings):
    settings.CHAT_TOOL_APPROVAL_SECONDS = 1
    mcp_site.behaviour.tool_script = [("notes__delete_note", json.dumps({"title": "groceries"}))]
    conversation = chat_with(user, "notes__delete_note")
    ask_and_answer(conversation, user, "Delete it.", lambda data: None)
    assert tool_results(conversation) == ["Error: the user did not answer within 1 s, so the call was not made."]


def test_stop_works_while_an_answer_waits_for_approval(mcp_site, user):
    mcp_site.behaviour.tool_script = [("notes__delete_note", json.dumps({"title": "groceries"}))]
    conversation = chat_with(user, "notes__delete_note")

    def stop(data):
        response = owner_client(user).post(reverse("api:conversation-stop", args=[conversation.pk]))
        assert response.status_code == 200 and response.json()["assistant_turn"]["status"] == "pending"

    entries = ask_and_answer(conversation, user, "Delete it.", stop)
    assert entries[-1].name == "done" and entries[-1].data["assistant_turn"]["status"] == "cancelled"
    assert tool_results(conversation) == []


@pytest.mark.parametrize("servers", [
    {"name": "notes"},  # neither a command nor a url
    [{"name": "bad name!", "command": "x"}],
    [{"name": "a", "command": "x"}, {"name": "a", "url": "http://x/mcp"}],
    [{"name": "a", "command": "x", "timeout": "soon"}],
])
def test_a_mistake_in_the_servers_setting_is_reported_at_startup(settings, servers):
    from conversations.checks import mcp_servers_check

    settings.CHAT_MCP_SERVERS = servers if isinstance(servers, list) else [servers]
    assert [error.id for error in mcp_servers_check(None)] == ["chatsite.E001"]
    settings.CHAT_MCP_SERVERS = [stdio_server()]
    assert mcp_servers_check(None) == []
