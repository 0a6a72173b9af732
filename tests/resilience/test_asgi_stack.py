"""The same guarantees through the production stack: uvicorn running chatsite.asgi (whose middleware can
differ from the test client's), over real HTTP: security headers, CSRF, login lockout, ownership, the
error shape."""

import httpx2 as httpx
import pytest
from django.conf import settings

from conversations import answering
from conversations.models import Turn
from conversations.services import conversation_create
from tests.servers import upstream_env
from tests.support import assert_error_shape, requires_postgresql

pytestmark = pytest.mark.django_db(transaction=True)

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


def assert_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name, response.headers.get(name))
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "img-src 'self' data:" in csp, csp


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    client.get("/accounts/login/")
    return client.post("/accounts/login/", data={
        "username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]})


@pytest.fixture
def asgi_server(uvicorn_server, fake_upstream):
    requires_postgresql("a uvicorn process sharing the test database")
    return uvicorn_server(env=upstream_env(fake_upstream.base_url))


def test_headers_csrf_ownership_and_errors_over_asgi(asgi_server, fake_upstream, user, other_user, password):
    conversation = conversation_create(owner=user, title="alice's")
    answering.answer(conversation=conversation, user=user, content="alice's question")
    fake_upstream.requests.clear()
    with httpx.Client(base_url=asgi_server.base_url, timeout=30) as alice, \
            httpx.Client(base_url=asgi_server.base_url, timeout=30) as bob:
        login_page = alice.get("/accounts/login/")
        assert login_page.status_code == 200
        assert_security_headers(login_page)

        # The login form without its token is refused; with it, alice is in.
        refused = alice.post("/accounts/login/", data={"username": "alice", "password": password})
        assert refused.status_code == 403 and 'class="error-page"' in refused.text
        assert log_in(alice, "alice", password).status_code == 302
        page = alice.get(f"/c/{conversation.pk}/")
        assert page.status_code == 200 and "alice&#x27;s question" in page.text
        assert_security_headers(page)

        # Session writes to the API need the CSRF header.
        turns = f"/api/v1/conversations/{conversation.pk}/turns/"
        assert_error_shape(alice.post(turns, json={"content": "no token"}), 403)
        assert_error_shape(alice.post(turns, json={"content": "no token", "stream": True}), 403)
        assert fake_upstream.chat_requests == []
        token = {"X-CSRFToken": alice.cookies["csrftoken"]}
        accepted = alice.post(turns, json={"content": "with token"}, headers=token)
        assert accepted.status_code == 201, accepted.text
        assert_security_headers(accepted)

        # Bob sees none of it.
        assert log_in(bob, "bob", password).status_code == 302
        token = {"X-CSRFToken": bob.cookies["csrftoken"]}
        assert bob.get(f"/c/{conversation.pk}/").status_code == 404
        assert_error_shape(bob.get(f"/api/v1/conversations/{conversation.pk}/"), 404)
        assert_error_shape(bob.post(turns, json={"content": "bob", "stream": True}, headers=token), 404)
        assert_error_shape(bob.post(f"/api/v1/conversations/{conversation.pk}/regenerate/", json={}, headers=token),
                           404)

        # Anonymous, unknown URLs and wrong methods: the error shape, with the headers.
        anonymous = httpx.get(f"{asgi_server.base_url}/api/v1/conversations/")
        assert_error_shape(anonymous, 401)
        assert_security_headers(anonymous)
        assert_error_shape(alice.get("/api/v1/nothing-here/"), 404)
        assert_error_shape(alice.get("/v1/nothing-here"), 404)
        assert_error_shape(alice.put(f"/api/v1/conversations/{conversation.pk}/", json={}), (403, 405))
        not_found = alice.get("/no-such-page/")
        assert not_found.status_code == 404 and 'class="error-page"' in not_found.text
        assert_security_headers(not_found)

    assert list(Turn.objects.filter(conversation=conversation).values_list("content", flat=True)) == [
        "alice's question", fake_upstream.behaviour.reply, "with token", fake_upstream.behaviour.reply]
    assert len(fake_upstream.chat_requests) == 1
    assert "Traceback" not in asgi_server.log()


def test_login_lockout_over_asgi(asgi_server, user, password):
    with httpx.Client(base_url=asgi_server.base_url, timeout=30) as client:
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            assert log_in(client, "alice", "wrong").status_code == 200
        assert log_in(client, "alice", "wrong").status_code == 429  # the failure that reaches the limit
        locked = log_in(client, "alice", password)
    assert locked.status_code == 429
    assert "Too many attempts" in locked.text
    assert_security_headers(locked)


@pytest.mark.parametrize("path", ["/api/v1/conversations/{id}/turns/", "/v1/chat/completions", "/api/chat"])
def test_a_chunked_body_over_the_limit_is_refused_over_asgi(asgi_server, fake_upstream, user, api_key, path):
    """No Content-Length (chunked transfer): refused with 411 in the shape, nothing stored, no model call.

    (DRF reads no body without a Content-Length, so chunked bodies are refused as a whole. Django's ASGI
    handler still spools the body to a temporary file before any view runs: the reverse proxy's body
    limit, e.g. nginx client_max_body_size, is what bounds that.)"""
    conversation = conversation_create(owner=user)
    chunk = b'{"content": "' + b"x" * 65536
    chunks_needed = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 65536 + 2

    def body():
        for i in range(chunks_needed):
            yield chunk if i == 0 else b"x" * 65536
        yield b'"}'

    with httpx.Client(base_url=asgi_server.base_url, timeout=60) as client:
        response = client.post(path.format(id=conversation.pk), content=body(), headers={
            "Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
    assert_error_shape(response, 411)
    assert fake_upstream.chat_requests == []
    assert Turn.objects.count() == 0


def test_a_small_chunked_patch_is_refused_not_silently_ignored(asgi_server, user, api_key):
    conversation = conversation_create(owner=user, title="before")
    with httpx.Client(base_url=asgi_server.base_url, timeout=30) as client:
        response = client.patch(f"/api/v1/conversations/{conversation.pk}/", content=iter([b'{"title": "after"}']),
                                headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
    assert_error_shape(response, 411)
    conversation.refresh_from_db()
    assert conversation.title == "before"
