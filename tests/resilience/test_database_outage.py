"""The database unavailable: a clear 503 (JSON under /api/ and /v1/, the site's page elsewhere), never a 500
with a traceback; and a brief outage while an answer is written loses nothing the server accepted."""

import threading
import time

import httpx2 as httpx
import pytest
from django.db import connection

from conversations.models import Turn
from conversations.services import conversation_create
from tests.servers import SERVER_APPLICATION_NAME, TcpProxy, database_url, upstream_env
from tests.support import assert_error_shape, requires_postgresql

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_DATABASE = "postgres://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1: connection refused


def test_requests_while_the_database_is_down_get_503(uvicorn_server, fake_upstream):
    server = uvicorn_server(database_url=DEAD_DATABASE, ready_status=503,
                            env={**upstream_env(fake_upstream.base_url), "DB_POOL_TIMEOUT": "1"})
    conversation = "0b5cbbe8-2e8e-4f6e-9b38-4a4c1d7d7e11"
    bearer = {"Authorization": "Bearer cs_00000000_notarealkeybutlookedupinthedatabase"}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        responses = {
            "api list": client.get("/api/v1/conversations/", headers=bearer),
            "api turn": client.post(f"/api/v1/conversations/{conversation}/turns/", json={"content": "hi"},
                                    headers=bearer),
            "api stream": client.post(f"/api/v1/conversations/{conversation}/turns/",
                                      json={"content": "hi", "stream": True}, headers=bearer),
            "prototype chat": client.post("/api/chat", json={"messages": [{"role": "user", "content": "hi"}]},
                                     headers=bearer),
            "v1": client.post("/v1/chat/completions", headers=bearer,
                              json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}),
        }
        for name, response in responses.items():
            error = assert_error_shape(response, 503, "database_unavailable")
            assert response.headers.get("Retry-After"), name
            assert "Traceback" not in response.text and "psycopg" not in error["message"], name

        # Pages: a logged-in visitor's session lives in the database.
        page = client.get("/c/history/", cookies={"sessionid": "x" * 32})
        assert page.status_code == 503, page.status_code
        assert page.headers["content-type"].startswith("text/html")
        assert 'class="error-page"' in page.text
        assert "Traceback" not in page.text and "OperationalError" not in page.text
        assert client.get("/healthz").status_code == 503
    assert fake_upstream.chat_requests == []  # (/healthz probes /v1/models for the model state)


@pytest.fixture
def proxied_server(uvicorn_server, fake_upstream):
    """Start a uvicorn worker whose every database connection goes through a proxy the test can cut."""
    requires_postgresql("a TCP proxy in front of the PostgreSQL server")
    proxies = []

    def start(**env):
        settings_dict = connection.settings_dict
        proxy = TcpProxy(settings_dict.get("HOST") or "127.0.0.1", int(settings_dict.get("PORT") or 5432))
        proxies.append(proxy)
        url = database_url({**settings_dict, "HOST": "127.0.0.1", "PORT": proxy.port})
        return uvicorn_server(database_url=url, env={**upstream_env(fake_upstream.base_url), **env}), proxy

    yield start
    for proxy in proxies:
        proxy.close()


def cut_while_the_model_answers(fake_upstream, proxy, outage_seconds: float):
    """Cut the database when the upstream gets the request (the user's turn is stored by then)."""

    def on_request(_recorded):
        proxy.cut()
        threading.Timer(outage_seconds, proxy.restore).start()

    fake_upstream.on_request = on_request


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_brief_outage_while_the_model_answers_loses_nothing(proxied_server, fake_upstream, user, api_key, stream):
    """Every pooled connection dies; the pool (checked on borrow, default timeout) reconnects in time."""
    server, proxy = proxied_server()
    conversation = conversation_create(owner=user)
    fake_upstream.behaviour.ttft = 0.5
    cut_while_the_model_answers(fake_upstream, proxy, 1.0)  # back within the pool's timeout (10 s)
    with httpx.Client(base_url=server.base_url, timeout=30, headers={"Authorization": f"Bearer {api_key}"}) as c:
        response = c.post(f"/api/v1/conversations/{conversation.pk}/turns/", json={"content": "hi", "stream": stream})
    assert response.status_code in (200, 201), response.text
    if stream:
        assert "event: done" in response.text, response.text
    turns = list(Turn.objects.filter(conversation=conversation).order_by("position").values_list(
        "position", "role", "status", "content"))
    assert turns == [(1, "user", "complete", "hi"), (2, "assistant", "complete", fake_upstream.behaviour.reply)]
    assert "Traceback" not in server.log()


def test_backends_terminated_mid_request_lose_nothing(uvicorn_server, fake_upstream, user, api_key):
    """pg_terminate_backend on every connection to the database while the model answers (as a failover or
    an administrator would): the pool notices on the next borrow and the answer is stored."""
    requires_postgresql("pg_terminate_backend")
    import psycopg

    server = uvicorn_server(env=upstream_env(fake_upstream.base_url))
    conversation = conversation_create(owner=user)
    name = connection.settings_dict["NAME"]
    admin_url = database_url({**connection.settings_dict, "NAME": "postgres"}).replace("postgres://", "postgresql://")
    terminated = []

    def terminate(_recorded):
        with psycopg.connect(admin_url, autocommit=True) as admin:
            terminated.extend(admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid() AND application_name = %s", [name, SERVER_APPLICATION_NAME]).fetchall())

    fake_upstream.behaviour.ttft = 0.3
    fake_upstream.on_request = terminate
    with httpx.Client(base_url=server.base_url, timeout=30, headers={"Authorization": f"Bearer {api_key}"}) as c:
        for stream in (False, True):
            response = c.post(f"/api/v1/conversations/{conversation.pk}/turns/",
                              json={"content": f"stream={stream}", "stream": stream})
            assert response.status_code in (200, 201), response.text
            assert not stream or "event: done" in response.text, response.text
    # The server's pooled connections were really killed (only the server's: killing this test process's
    # own would break the tests that run after it).
    assert terminated
    turns = list(Turn.objects.filter(conversation=conversation).order_by("position").values_list("role", "status"))
    assert turns == [("user", "complete"), ("assistant", "complete")] * 2
    assert "Traceback" not in server.log()


def terminate_server_backends() -> int:
    """pg_terminate_backend on every connection the test servers hold (never this test process's own)."""
    import psycopg

    admin_url = database_url({**connection.settings_dict, "NAME": "postgres"}).replace("postgres://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        return len(admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
            "pg_backend_pid() AND application_name = %s",
            [connection.settings_dict["NAME"], SERVER_APPLICATION_NAME],
        ).fetchall())


def test_a_full_pool_of_dead_connections_is_replaced_at_once(uvicorn_server, fake_upstream, user, api_key):
    """Item 14: with 8 pooled connections killed between requests (a database restart, a failover), the next
    requests are served, and an answer streaming across the kill is stored. Before, each dead connection
    made the pool wait longer before its next try (0, 1, 2, 4 s...): past 3 dead connections a request
    outwaited DB_POOL_TIMEOUT (2 s here) and failed with 503, and so did the answer's store."""
    requires_postgresql("pg_terminate_backend")
    server = uvicorn_server(env={**upstream_env(fake_upstream.base_url), "DB_POOL_MIN_SIZE": "8",
                                 "DB_POOL_TIMEOUT": "2"})
    conversation = conversation_create(owner=user)
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=server.base_url, timeout=30, headers=headers) as client:
        assert client.get("/api/v1/conversations/").status_code == 200
        wait_for_pool(8)
        assert terminate_server_backends() >= 8
        for _ in range(3):
            response = client.get("/api/v1/conversations/")
            assert response.status_code == 200, response.text

        # Again while an answer streams: the kill comes when the model is asked, with a full pool.
        wait_for_pool(8)
        fake_upstream.behaviour.ttft = 0.3
        fake_upstream.on_request = lambda _recorded: terminate_server_backends()
        response = client.post(f"/api/v1/conversations/{conversation.pk}/turns/",
                               json={"content": "hi", "stream": True})
        fake_upstream.on_request = None
    assert response.status_code == 200 and "event: done" in response.text, response.text
    answer = Turn.objects.get(conversation=conversation, role="assistant")
    assert answer.status == "complete" and answer.content == fake_upstream.behaviour.reply
    assert "Traceback" not in server.log()


def wait_for_pool(size: int, timeout: float = 10.0) -> None:
    """Until the server holds `size` connections (the pool fills up to its minimum in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            # This test database only: another pytest-xdist worker's servers use the same application name.
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
                           [SERVER_APPLICATION_NAME, connection.settings_dict["NAME"]])
            if cursor.fetchone()[0] >= size:
                return
        time.sleep(0.1)
    raise AssertionError(f"the server's pool never held {size} connections")


OUTLASTING_OUTAGE_SECONDS = 9.0


def outage_outlasting_the_answer(proxied_server, fake_upstream, user, api_key, *, stream: bool):
    """Cut the database from the model call until well after the answer: longer than the pool waits (1 s) and
    than the answer engine keeps retrying to store the answer (about 6.6 s here), so the answer is lost."""
    server, proxy = proxied_server(DB_POOL_TIMEOUT="1")
    conversation = conversation_create(owner=user)
    fake_upstream.behaviour.ttft = 0.2
    cut_while_the_model_answers(fake_upstream, proxy, OUTLASTING_OUTAGE_SECONDS)
    client = httpx.Client(base_url=server.base_url, timeout=60, headers={"Authorization": f"Bearer {api_key}"})
    try:
        response = client.post(f"/api/v1/conversations/{conversation.pk}/turns/",
                               json={"content": "hi", "stream": stream})
        body = response.text
    except httpx.RemoteProtocolError as exc:  # the stream was cut off without a final event
        response, body = None, repr(exc)
    time.sleep(OUTLASTING_OUTAGE_SECONDS + 0.5 - fake_upstream.behaviour.ttft)  # the database is back
    fake_upstream.on_request = None
    return client, conversation, response, body


def test_an_outage_outlasting_the_answer_is_a_clear_503_and_keeps_the_message(
    proxied_server, fake_upstream, user, api_key
):
    client, conversation, response, _ = outage_outlasting_the_answer(
        proxied_server, fake_upstream, user, api_key, stream=False)
    client.close()
    assert_error_shape(response, 503, "database_unavailable")
    assert "Traceback" not in response.text
    assert list(Turn.objects.filter(conversation=conversation, role="user").values_list("content", flat=True)) == [
        "hi"]


def test_an_outage_outlasting_a_streamed_answer_ends_with_an_error_event(proxied_server, fake_upstream, user, api_key):
    client, conversation, response, body = outage_outlasting_the_answer(
        proxied_server, fake_upstream, user, api_key, stream=True)
    client.close()
    assert response is not None and response.status_code == 200, body
    assert "event: error" in body, body
    assert "database_unavailable" in body


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_after_an_outage_outlasting_the_answer_the_chat_is_not_stuck(proxied_server, fake_upstream, user, api_key,
                                                                      stream):
    client, conversation, _, _ = outage_outlasting_the_answer(
        proxied_server, fake_upstream, user, api_key, stream=stream)
    try:
        retry = client.post(f"/api/v1/conversations/{conversation.pk}/regenerate/", json={})
    finally:
        client.close()
    assert retry.status_code == 200, retry.text
    # The interrupted answer stays as a failed version; the new version is complete.
    statuses = Turn.objects.filter(conversation=conversation, role="assistant").order_by("id")
    assert list(statuses.values_list("status", flat=True)) == ["failed", "complete"]
    assert not Turn.objects.filter(status=Turn.Status.PENDING).exists()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_outage_longer_than_the_pool_wait_is_outlasted_by_the_answer_store(
    proxied_server, fake_upstream, user, api_key, stream
):
    """A 3 s outage outlasts the pool's wait (1 s) but not the engine's retries: the answer is stored."""
    server, proxy = proxied_server(DB_POOL_TIMEOUT="1")
    conversation = conversation_create(owner=user)
    fake_upstream.behaviour.ttft = 0.2
    cut_while_the_model_answers(fake_upstream, proxy, 3.0)
    with httpx.Client(base_url=server.base_url, timeout=60, headers={"Authorization": f"Bearer {api_key}"}) as client:
        response = client.post(f"/api/v1/conversations/{conversation.pk}/turns/",
                               json={"content": "hi", "stream": stream})
    fake_upstream.on_request = None
    assert response.status_code == (200 if stream else 201), response.text
    if stream:
        assert "event: done" in response.text
    answer = Turn.objects.get(conversation=conversation, role="assistant")
    assert answer.status == "complete" and answer.content == fake_upstream.behaviour.reply
