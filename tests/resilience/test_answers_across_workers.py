"""Answers across server processes, through Redis: a client on worker B follows an answer generated on
worker A, and an answer whose worker is killed is failed within the heartbeat's grace, not left "writing"."""

import json
import os
import signal
import threading
import time

import httpx2 as httpx
import pytest

from conversations.models import Turn
from conversations.services import conversation_create
from tests.servers import upstream_env

pytestmark = pytest.mark.django_db(transaction=True)


def read_events(response) -> list[tuple[int, str | None, dict]]:
    events, seq, name = [], 0, None
    for line in response.iter_lines():
        if line.startswith("id: "):
            seq = int(line[4:])
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((seq, name, json.loads(line[6:])))
    return events


def wait_until_the_answer_runs(conversation) -> None:
    deadline = time.monotonic() + 10
    while not Turn.objects.filter(conversation=conversation, status="pending").exists():
        assert time.monotonic() < deadline, "the answer did not start"
        time.sleep(0.02)


def text_of(events) -> str:
    return "".join(data["text"] for _, name, data in events if name == "delta")


@pytest.fixture
def two_workers(uvicorn_server, fake_upstream, redis_url):
    from tests.support import requires_postgresql

    requires_postgresql("server processes sharing the test database")
    url, prefix = redis_url
    env = {**upstream_env(fake_upstream.base_url), "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix,
           "CHAT_MAX_ANSWER_TOKENS": "4000",
           "CHAT_ANSWER_HEARTBEAT_SECONDS": "4"}
    servers = [uvicorn_server(env=env, wait=False), uvicorn_server(env=env, wait=False)]
    return [server.wait_ready() for server in servers]


def test_a_client_on_another_worker_follows_the_answer_live_and_resumes(two_workers, fake_upstream, user, api_key):
    worker_a, worker_b = two_workers
    fake_upstream.behaviour.tokens = 60
    fake_upstream.behaviour.token_delay = 0.03
    conversation = conversation_create(owner=user)
    headers = {"Authorization": f"Bearer {api_key}"}
    results = {}

    def start_on_a():
        with httpx.Client(base_url=worker_a.base_url, headers=headers, timeout=30) as client, client.stream(
            "POST", f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "story", "stream": True}
        ) as response:
            results["a"] = read_events(response)

    starter = threading.Thread(target=start_on_a)
    starter.start()
    wait_until_the_answer_runs(conversation)
    time.sleep(0.3)  # a few events are written already: B must replay them, then follow live
    url = f"/api/v1/conversations/{conversation.pk}/stream/"
    with httpx.Client(base_url=worker_b.base_url, headers=headers, timeout=30) as client:
        with client.stream("GET", url) as response:
            assert response.status_code == 200
            on_b = read_events(response)
        with client.stream("GET", url, headers={"Last-Event-ID": "10"}) as response:
            resumed = read_events(response) if response.status_code == 200 else []
    starter.join(30)

    on_a = results["a"]
    assert [seq for seq, _, _ in on_b] == [seq for seq, _, _ in on_a] == list(range(1, len(on_a) + 1))
    assert text_of(on_b) == text_of(on_a) and len(text_of(on_a).split()) == 60
    assert on_b[-1][1] == "done" and on_b[-1][2]["assistant_turn"]["status"] == "complete"
    # A late follower that saw events 1..10 gets exactly the rest (the answer may have ended meanwhile:
    # then there is nothing running and the stored answer is the rest).
    if resumed:
        assert [seq for seq, _, _ in resumed] == list(range(11, len(on_a) + 1))
    assert len(fake_upstream.chat_requests) == 1


def test_a_worker_killed_mid_answer_leaves_a_failed_answer_and_a_free_chat(two_workers, fake_upstream, user, api_key):
    worker_a, worker_b = two_workers
    fake_upstream.behaviour.tokens = 2000
    fake_upstream.behaviour.token_delay = 0.02
    conversation = conversation_create(owner=user)
    headers = {"Authorization": f"Bearer {api_key}"}

    def start_on_a():
        try:
            with httpx.Client(base_url=worker_a.base_url, headers=headers, timeout=30) as client:
                client.post(f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "long", "stream": True})
        except httpx.HTTPError:
            pass  # its server is killed

    threading.Thread(target=start_on_a, daemon=True).start()
    wait_until_the_answer_runs(conversation)
    time.sleep(0.5)
    os.kill(worker_a.process.pid, signal.SIGKILL)  # the worker dies mid-answer
    killed_at = time.monotonic()

    with httpx.Client(base_url=worker_b.base_url, headers=headers, timeout=30) as client:
        # Until the heartbeat lapses (4 s here), B follows from Redis and gets no end; then the answer is failed.
        outcome = None
        while time.monotonic() - killed_at < 20:
            with client.stream("GET", f"/api/v1/conversations/{conversation.pk}/stream/") as response:
                events = read_events(response) if response.status_code == 200 else []
            if events and events[-1][1] == "error":
                outcome = events[-1][2]
                break
            time.sleep(0.5)
        assert outcome is not None, "the abandoned answer was never failed"
        assert outcome["assistant_turn"]["status"] == "failed"
        assert time.monotonic() - killed_at < 4 + 2 + 6  # heartbeat + grace + a follow's Redis block
        # The chat is free again: the next message is answered (on B).
        fake_upstream.behaviour.tokens = 5
        fake_upstream.behaviour.token_delay = 0
        answer = client.post(f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "again"})
        assert answer.status_code == 201, answer.text
    answers = Turn.objects.filter(conversation=conversation, role="assistant").order_by("id")
    assert [t.status for t in answers] == ["failed", "complete"]


def test_a_stop_sent_to_another_worker_ends_the_answer_within_a_second(two_workers, fake_upstream, user, api_key):
    worker_a, worker_b = two_workers
    fake_upstream.behaviour.tokens = 1000
    fake_upstream.behaviour.token_delay = 0.02  # 20 s of answer
    conversation = conversation_create(owner=user)
    headers = {"Authorization": f"Bearer {api_key}"}
    results = {}

    def start_on_a():
        with httpx.Client(base_url=worker_a.base_url, headers=headers, timeout=30) as client, client.stream(
            "POST", f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "long", "stream": True}
        ) as response:
            results["a"] = read_events(response)
            results["ended"] = time.monotonic()

    starter = threading.Thread(target=start_on_a)
    starter.start()
    wait_until_the_answer_runs(conversation)
    time.sleep(0.5)
    with httpx.Client(base_url=worker_b.base_url, headers=headers, timeout=30) as client:
        stopped_at = time.monotonic()
        response = client.post(f"/api/v1/conversations/{conversation.pk}/stop/")
        assert response.status_code == 200 and response.json()["assistant_turn"]["status"] == "pending"
    starter.join(30)
    events = results["a"]
    assert events[-1][1] == "done" and events[-1][2]["assistant_turn"]["status"] == "cancelled"
    # The watcher on A reads stop requests once a second (plus the stream's own flush).
    assert results["ended"] - stopped_at < 1.0 + 0.5
    stored = Turn.objects.get(conversation=conversation, role="assistant")
    assert stored.status == "cancelled" and 0 < len(stored.content.split()) < 1000
    # The upstream request was closed. The fake server notices at its next write, in its own thread: poll for it.
    deadline = time.monotonic() + 5
    while not fake_upstream.chat_requests[-1].disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_upstream.chat_requests[-1].disconnected


def test_every_read_of_a_killed_workers_answer_agrees_it_failed(two_workers, fake_upstream, user, api_key):
    """No follower: the REST detail and the turn list alone fail the answer once its heartbeat lapses."""
    worker_a, worker_b = two_workers
    fake_upstream.behaviour.tokens = 2000
    fake_upstream.behaviour.token_delay = 0.02
    conversation = conversation_create(owner=user)
    headers = {"Authorization": f"Bearer {api_key}"}

    def start_on_a():
        try:
            with httpx.Client(base_url=worker_a.base_url, headers=headers, timeout=30) as client:
                client.post(f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "long", "stream": True})
        except httpx.HTTPError:
            pass  # its server is killed

    threading.Thread(target=start_on_a, daemon=True).start()
    wait_until_the_answer_runs(conversation)
    time.sleep(0.5)
    os.kill(worker_a.process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    with httpx.Client(base_url=worker_b.base_url, headers=headers, timeout=30) as client:
        status = "pending"
        while status == "pending" and time.monotonic() - killed_at < 20:
            detail = client.get(f"/api/v1/conversations/{conversation.pk}/").json()
            status = detail["turns"][-1]["status"]
            time.sleep(0.25)
        assert status == "failed"
        assert time.monotonic() - killed_at < 4 + 2 + 1  # heartbeat + grace, then the next read
        turns = client.get(f"/api/v1/conversations/{conversation.pk}/turns/").json()["results"]
        assert turns[-1]["status"] == "failed" and turns[-1]["error"] == "The answer was interrupted."


def test_a_continued_answer_is_followed_on_another_worker_as_its_new_run(two_workers, fake_upstream, user, api_key):
    """A continued answer runs again under the same turn id: a follower on another worker reads the new run's
    events, not those of the run before it (whose Redis stream, with its end marker, is kept a while)."""
    worker_a, worker_b = two_workers
    fake_upstream.behaviour.reply = "Once upon a time"
    conversation = conversation_create(owner=user)
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=worker_a.base_url, headers=headers, timeout=30) as client, client.stream(
        "POST", f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "story", "stream": True}
    ) as response:
        first_run = read_events(response)
    assert first_run[-1][1] == "done"
    answer_id = first_run[-1][2]["assistant_turn"]["id"]
    Turn.objects.filter(pk=answer_id).update(status="cancelled", finish_reason="cancelled")  # as if stopped
    fake_upstream.behaviour.reply = " there was a fox."
    fake_upstream.behaviour.tokens = 40
    fake_upstream.behaviour.token_delay = 0.03
    results = {}

    def continue_on_a():
        with httpx.Client(base_url=worker_a.base_url, headers=headers, timeout=30) as client, client.stream(
            "POST", f"/api/v1/conversations/{conversation.pk}/continue/", json={"turn_id": answer_id, "stream": True}
        ) as response:
            results["a"] = read_events(response)

    continuing = threading.Thread(target=continue_on_a)
    continuing.start()
    wait_until_the_answer_runs(conversation)
    time.sleep(0.3)
    with httpx.Client(base_url=worker_b.base_url, headers=headers, timeout=30) as client, client.stream(
        "GET", f"/api/v1/conversations/{conversation.pk}/stream/"
    ) as response:
        assert response.status_code == 200
        on_b = read_events(response)
    continuing.join(30)

    on_a = results["a"]
    assert [seq for seq, _, _ in on_b] == [seq for seq, _, _ in on_a] == list(range(1, len(on_a) + 1))
    # The new run's text only: the reply repeated to 40 tokens, none of the first run's.
    assert text_of(on_b) == text_of(on_a) and text_of(on_a).count("fox") > 1 and "Once" not in text_of(on_a)
    assert on_b[-1][1] == "done"
    assert on_b[-1][2]["assistant_turn"]["content"] == "Once upon a time" + text_of(on_a)
