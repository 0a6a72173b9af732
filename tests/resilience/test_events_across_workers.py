"""The per-user event stream across server processes, through Redis: a rename made on worker A reaches a window
listening on worker B, only its owner's window hears of it, and a window that reconnects elsewhere gets the rest."""

import json
import subprocess
import sys
from datetime import timedelta

import httpx2 as httpx
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey
from conversations.models import Conversation
from conversations.services import conversation_create
from tests.servers import ROOT, upstream_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_workers(uvicorn_server, fake_upstream, redis_url):
    from tests.support import requires_postgresql

    requires_postgresql("server processes sharing the test database")
    url, prefix = redis_url
    env = {**upstream_env(fake_upstream.base_url), "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix}
    servers = [uvicorn_server(env=env, wait=False), uvicorn_server(env=env, wait=False)]
    return [server.wait_ready() for server in servers]


def session_cookies(user) -> dict[str, str]:
    """A signed-in browser's cookie (the session is stored in the shared database)."""
    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


class Window:
    """An open page's EventSource, read line by line: `listen()` returns once the server listens."""

    def __init__(self, client: httpx.Client, headers: dict[str, str] | None = None):
        self._response = client.send(client.build_request("GET", "/c/events/", headers=headers), stream=True)
        assert self._response.status_code == 200, self._response.read()
        assert self._response.headers["content-type"].startswith("text/event-stream")
        self._lines = self._response.iter_lines()

    def next_event(self) -> tuple[str, str, dict]:
        """(id, name, data) of the next event (comments skipped); fails when two keep-alives come first (no event for
        about 30 s: the keep-alives would keep the read from ever timing out)."""
        event_id = name = ""
        keep_alives = 0
        for line in self._lines:
            if line.startswith(":"):
                keep_alives += 1
                assert keep_alives < 2, "no event came"
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                return event_id, name, json.loads(line[6:])
        raise AssertionError("the stream ended")

    def listen(self) -> "Window":
        assert self.next_event()[1] == "listening"
        return self

    def close(self) -> None:
        self._response.close()


def test_a_rename_on_worker_a_reaches_its_owner_on_worker_b_only(two_workers, user, other_user, api_key):
    worker_a, worker_b = two_workers
    conversation = conversation_create(owner=user, title="Before")
    theirs_chat = conversation_create(owner=other_user, title="Theirs")
    with httpx.Client(base_url=worker_b.base_url, cookies=session_cookies(user), timeout=30) as mine_client, \
            httpx.Client(base_url=worker_b.base_url, cookies=session_cookies(other_user), timeout=30) as their_client, \
            httpx.Client(base_url=worker_a.base_url, headers={"Authorization": f"Bearer {api_key}"},
                         timeout=30) as api:
        mine, theirs = Window(mine_client).listen(), Window(their_client).listen()
        response = api.patch(f"/api/v1/conversations/{conversation.pk}/", json={"title": "After"})
        assert response.status_code == 200, response.text

        event_id, name, data = mine.next_event()
        assert name == data["type"] == "conversation.updated"
        assert data["conversation"]["id"] == str(conversation.pk)
        assert data["conversation"]["title"] == "After"

        # The other user's window heard nothing of it: the first event it gets is about their own chat.
        _, their_key = ApiKey.generate(user=other_user, name="tests")
        archived = api.patch(
            f"/api/v1/conversations/{theirs_chat.pk}/", json={"archived": True},
            headers={"Authorization": f"Bearer {their_key}"},
        )
        assert archived.status_code == 200, archived.text
        _id, name, data = theirs.next_event()
        assert (name, data["conversation"]["id"], data["conversation"]["archived"]) == (
            "conversation.updated", str(theirs_chat.pk), True,
        )
        mine.close()
        theirs.close()

        # Reconnected to worker A with the last id it saw: it gets what happened meanwhile, and nothing twice.
        for title in ("Later", "Latest"):
            assert api.patch(f"/api/v1/conversations/{conversation.pk}/", json={"title": title}).status_code == 200
        with httpx.Client(base_url=worker_a.base_url, cookies=session_cookies(user), timeout=30) as again_client:
            again = Window(again_client, headers={"Last-Event-ID": event_id})
            titles = [again.next_event()[2]["conversation"]["title"] for _ in range(2)]
            assert titles == ["Later", "Latest"]
            assert again.next_event()[1] == "listening"
            again.close()


def test_the_stream_wants_a_signed_in_user(two_workers):
    with httpx.Client(base_url=two_workers[0].base_url, timeout=30) as client:
        response = client.get("/c/events/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_projects_and_the_housekeeping_sweep_reach_a_window_in_another_process(two_workers, user, api_key):
    """A project made and deleted through worker A, and a temporary chat swept away by `manage.py housekeeping` (a
    process of its own, as `manage.py serve` runs it), reach the owner's window on worker B."""
    worker_a, worker_b = two_workers
    now = timezone.now()
    expired = Conversation.objects.create(owner=user, title="temporary", delete_after=now - timedelta(minutes=1))
    with httpx.Client(base_url=worker_b.base_url, cookies=session_cookies(user), timeout=30) as window_client, \
            httpx.Client(base_url=worker_a.base_url, headers={"Authorization": f"Bearer {api_key}"},
                         timeout=30) as api:
        window = Window(window_client).listen()
        made = api.post("/api/v1/projects/", json={"name": "Launch"})
        assert made.status_code == 201, made.text
        project_id = made.json()["id"]
        _id, name, data = window.next_event()
        assert name == "project.created"
        assert data == {"type": "project.created", "project": {"id": project_id, "name": "Launch"}}
        assert api.delete(f"/api/v1/projects/{project_id}/").status_code == 204
        _id, name, data = window.next_event()
        assert name == "project.deleted"
        assert data == {"type": "project.deleted", "project_id": project_id, "chats_deleted": False}

        swept = subprocess.run(  # noqa: S603 (our own interpreter and command)
            [sys.executable, "manage.py", "housekeeping"], cwd=ROOT, env=worker_a.env, capture_output=True, text=True,
            timeout=120,
        )
        assert swept.returncode == 0, swept.stderr
        _id, name, data = window.next_event()
        assert name == "conversation.deleted"
        assert data == {"type": "conversation.deleted", "conversation_id": str(expired.pk), "reason": "expired"}
        window.close()
