"""A tool call waiting for approval, across server processes: the answer runs (and waits) on worker A, the user's
decision arrives on worker B, and A runs the call. Real uvicorn workers on PostgreSQL, sharing Redis; the MCP
server is conversations/tests/mcp_server.py over stdio, started by worker A."""

import json
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from conversations.models import Turn
from conversations.services import conversation_create
from tests.servers import upstream_env

pytestmark = pytest.mark.django_db(transaction=True)

MCP_SERVER = Path(__file__).resolve().parents[2] / "conversations/tests/mcp_server.py"


@pytest.fixture
def two_workers(uvicorn_server, fake_upstream, redis_url):
    from tests.support import requires_postgresql

    requires_postgresql("server processes sharing the test database")
    url, prefix = redis_url
    env = {**upstream_env(fake_upstream.base_url), "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix,
           "CHAT_TOOL_MODELS": "fake-model", "CHAT_SERVER_TOOLS": "",
           "CHAT_MCP_SERVERS": json.dumps([{"name": "notes", "command": sys.executable, "args": [str(MCP_SERVER)],
                                            "tools": {"delete_note": {"approval": True}}}])}
    servers = [uvicorn_server(env=env, wait=False), uvicorn_server(env=env, wait=False)]
    return [server.wait_ready() for server in servers]


@pytest.mark.parametrize("allow", [True, False])
def test_a_decision_sent_to_another_worker_reaches_the_waiting_answer(two_workers, fake_upstream, user, api_key,
                                                                       allow):
    worker_a, worker_b = two_workers
    fake_upstream.behaviour.tool_script = [("notes__delete_note", json.dumps({"title": "groceries"}))]
    fake_upstream.behaviour.reply = "Understood."
    conversation = conversation_create(owner=user, mcp_tools=["notes__delete_note"])
    headers = {"Authorization": f"Bearer {api_key}"}
    decisions, names = [], []
    with httpx.Client(base_url=worker_a.base_url, headers=headers, timeout=60) as client, client.stream(
        "POST", f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "Delete it.", "stream": True}
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                names.append(line.removeprefix("event: "))
            elif line.startswith("data: ") and names[-1] == "tool_approval":
                data = json.loads(line.removeprefix("data: "))
                with httpx.Client(base_url=worker_b.base_url, headers=headers, timeout=30) as on_b:
                    decisions.append(on_b.post(data["approval_url"], json={"allow": allow}))

    assert [d.status_code for d in decisions] == [200]
    assert names[:2] == ["turn", "tool_approval"] and names[-1] == "done"
    result = Turn.objects.get(conversation=conversation, role=Turn.Role.TOOL).content
    assert result == ("Deleted the note 'groceries'." if allow else
                      "Error: the user refused this call; it was not made.")
