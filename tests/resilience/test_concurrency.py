"""Concurrency on PostgreSQL through real uvicorn processes: simultaneous appends to one conversation, and
throttles and quotas shared by several workers through Redis and the database."""

import threading

import httpx2 as httpx
import pytest

from conversations.models import Conversation, Turn
from conversations.services import conversation_create
from tests.servers import upstream_env
from tests.support import assert_error_shape, requires_postgresql

pytestmark = pytest.mark.django_db(transaction=True)


def post_all_at_once(requests: list[tuple[str, str, dict]], headers: dict) -> list[httpx.Response]:
    """Send every (base_url, path, json) request from its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def send(i, base_url, path, body):
        with httpx.Client(base_url=base_url, timeout=60, headers=headers) as client:
            barrier.wait()
            try:
                responses[i] = client.post(path, json=body)
            except httpx.HTTPError as exc:
                responses[i] = exc

    threads = [threading.Thread(target=send, args=(i, *request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return responses


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_twenty_simultaneous_appends_through_the_api(uvicorn_server, fake_upstream, user, api_key, stream):
    requires_postgresql("row locks between server processes")
    fake_upstream.behaviour.ttft = 0.5  # answers overlap
    server = uvicorn_server(workers=2, env={**upstream_env(fake_upstream.base_url), "CHAT_THROTTLE_RATE": "1000/min"})
    conversation = conversation_create(owner=user)
    path = f"/api/v1/conversations/{conversation.pk}/turns/"
    responses = post_all_at_once(
        [(server.base_url, path, {"content": f"message {i}", "stream": stream}) for i in range(20)],
        {"Authorization": f"Bearer {api_key}"},
    )

    assert not [r for r in responses if not isinstance(r, httpx.Response)], responses
    statuses = sorted(r.status_code for r in responses)
    winners = [r for r in responses if r.status_code in (200, 201)]
    for loser in (r for r in responses if r.status_code not in (200, 201)):
        assert_error_shape(loser, 409, "busy")
    assert winners, statuses
    if stream:
        assert all("event: done" in r.text for r in winners)
    turns = list(Turn.objects.filter(conversation=conversation).order_by("position").values_list(
        "position", "role", "status"))
    positions = [t[0] for t in turns]
    assert positions == list(range(1, 2 * len(winners) + 1)), turns  # unique and gapless
    assert [t[1] for t in turns] == ["user", "assistant"] * len(winners)
    assert {t[2] for t in turns} == {"complete"}
    assert Conversation.objects.get(pk=conversation.pk).turn_count == len(positions)
    assert len(fake_upstream.chat_requests) == len(winners)
    assert "Traceback" not in server.log()


def test_throttle_is_shared_by_workers_through_redis(uvicorn_server, fake_upstream, user, api_key, redis_url):
    """Two server processes (and a two-worker one) with one Redis: the per-user rate holds across them all."""
    requires_postgresql("server processes sharing the test database")
    url, prefix = redis_url
    env = {**upstream_env(fake_upstream.base_url), "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix,
           "CHAT_THROTTLE_RATE": "6/min"}
    servers = [uvicorn_server(env=env, wait=False), uvicorn_server(env=env, wait=False),
               uvicorn_server(workers=2, env=env, wait=False)]
    for server in servers:
        server.wait_ready()
    conversations = [conversation_create(owner=user) for _ in range(12)]
    headers = {"Authorization": f"Bearer {api_key}"}
    responses = []
    for i, conversation in enumerate(conversations):  # round robin over the processes
        server = servers[i % len(servers)]
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            responses.append(client.post(f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "hi"}))

    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 6, statuses
    for refused in (r for r in responses if r.status_code != 201):
        assert_error_shape(refused, 429)
        assert int(refused.headers["Retry-After"]) > 0
    assert len(fake_upstream.chat_requests) == 6
    assert Turn.objects.filter(role="user").count() == 6  # a throttled message is not stored


def test_daily_quota_is_shared_by_workers(uvicorn_server, fake_upstream, user, api_key, redis_url):
    requires_postgresql("server processes sharing the test database")
    url, prefix = redis_url
    env = {**upstream_env(fake_upstream.base_url), "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix,
           "CHAT_DAILY_TOKEN_QUOTA": "5", "CHAT_THROTTLE_RATE": "1000/min"}
    first, second = uvicorn_server(env=env, wait=False), uvicorn_server(workers=2, env=env, wait=False)
    first.wait_ready(), second.wait_ready()
    headers = {"Authorization": f"Bearer {api_key}"}
    conversation = conversation_create(owner=user)
    path = f"/api/v1/conversations/{conversation.pk}/turns/"
    with httpx.Client(base_url=first.base_url, headers=headers, timeout=30) as client:
        assert client.post(path, json={"content": "use up the quota"}).status_code == 201
    for server in (second, first):
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            refused = client.post(path, json={"content": "one more"})
            assert_error_shape(refused, 429, "quota_exceeded")
            assert int(refused.headers["Retry-After"]) > 0
            usage = client.get("/api/v1/usage/").json()
            assert usage["quota"] == 5 and usage["quota_left"] == 0
    assert len(fake_upstream.chat_requests) == 1
    assert Turn.objects.filter(conversation=conversation).count() == 2


def test_the_chat_throttle_holds_under_parallel_requests_across_workers(
    uvicorn_server, fake_upstream, user, api_key, redis_url
):
    """40 requests at once over two workers sharing Redis, with 10/min: exactly 10 get through (DRF's own
    throttle, a non-atomic read and write of its history, let more through)."""
    from concurrent.futures import ThreadPoolExecutor

    requires_postgresql("server processes sharing the test database")
    url, prefix = redis_url
    env = {**upstream_env(fake_upstream.base_url), "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix,
           "CHAT_THROTTLE_RATE": "10/min", "DB_POOL_MAX_SIZE": "40"}
    server = uvicorn_server(workers=2, env=env)
    conversations = [conversation_create(owner=user) for _ in range(40)]
    headers = {"Authorization": f"Bearer {api_key}"}

    def send(conversation):
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            response = client.post(f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "hi"})
            return response.status_code if response.status_code != 503 else response.text

    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(send, conversations))
    assert statuses.count(201) == 10, statuses
    assert set(statuses) == {201, 429}
    assert len(fake_upstream.chat_requests) == 10


def test_the_daily_quota_holds_under_parallel_requests_across_workers(
    uvicorn_server, fake_upstream, user, api_key, redis_url
):
    """20 messages at once over two workers with a 200-token quota (item 9). Before, all 20 were admitted (540
    tokens): the check read stored usage, and nothing was stored yet. Now each running answer holds tokens
    under a lock on the user's usage row: what was admitted can spend at most the quota (plus the one answer
    whose prompt was longer than estimated)."""
    requires_postgresql("server processes sharing the test database")
    url, prefix = redis_url
    fake_upstream.behaviour.ttft = 2.0  # the answers overlap: all 20 are admitted (or refused) before any ends
    env = {**upstream_env(fake_upstream.base_url), "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix,
           "CHAT_DAILY_TOKEN_QUOTA": "200", "CHAT_MAX_ANSWER_TOKENS": "40", "CHAT_THROTTLE_RATE": "1000/min"}
    server = uvicorn_server(workers=2, env=env)
    conversations = [conversation_create(owner=user) for _ in range(20)]
    responses = post_all_at_once(
        [(server.base_url, f"/api/v1/conversations/{c.pk}/turns/", {"content": "hi"}) for c in conversations],
        {"Authorization": f"Bearer {api_key}"},
    )

    admitted = [r for r in responses if r.status_code == 201]
    for refused in (r for r in responses if r.status_code != 201):
        assert_error_shape(refused, 429, "quota_exceeded")
    # 40 tokens held per answer (the new message and a whole answer): 200 admits 5 at once.
    assert len(admitted) == 5, sorted(r.status_code for r in responses)
    assert len(fake_upstream.chat_requests) == 5
    answers = [r.json()["assistant_turn"] for r in admitted]
    spent = sum(answer["prompt_tokens"] + answer["completion_tokens"] for answer in answers)
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {api_key}"}) as client:
        usage = client.get("/api/v1/usage/").json()
    assert usage["tokens_today"] == spent <= 200
    assert Turn.objects.filter(role="user").count() == 5  # a refused message is not stored


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_forty_chats_at_once_on_one_worker_fit_a_pool_of_ten(uvicorn_server, fake_upstream, user, api_key, stream):
    """More chats at once than the PostgreSQL pool has connections: no request holds a connection while its
    answer is written, so every chat is answered and stored."""
    requires_postgresql("the connection pool")
    fake_upstream.behaviour.ttft = 0.5
    server = uvicorn_server(env={**upstream_env(fake_upstream.base_url), "CHAT_THROTTLE_RATE": "1000/min",
                                 "DB_POOL_MAX_SIZE": "10", "DB_POOL_TIMEOUT": "5"})
    conversations = [conversation_create(owner=user) for _ in range(40)]
    responses = post_all_at_once(
        [(server.base_url, f"/api/v1/conversations/{c.pk}/turns/", {"content": "hi", "stream": stream})
         for c in conversations],
        {"Authorization": f"Bearer {api_key}"},
    )
    statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in responses]
    assert statuses == [200 if stream else 201] * 40, statuses
    assert Turn.objects.filter(role="assistant", status="complete").count() == 40
    assert "Traceback" not in server.log()
