"""The production ASGI application (chatsite.asgi) runs Django's own middleware, under every standard setting."""

import asyncio
import re
import threading

import httpx2
import pytest
from asgiref import sync as asgiref_sync

from chatsite.asgi import ChatsiteASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


def _request_all(app, requests):
    async def go():
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.request(method, url, **kwargs) for method, url, kwargs in requests]

    return asyncio.run(go())


def _count_thread_hops(app, monkeypatch, requests):
    hops = []
    original = asgiref_sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref_sync.SyncToAsync, "__call__", counting)
    responses = _request_all(app, requests)
    monkeypatch.undo()
    return responses, hops


SESSION_ENGINES = [
    f"django.contrib.sessions.backends.{name}" for name in ("db", "cache", "cached_db", "signed_cookies")
]


# Every engine with and without CSRF_USE_SESSIONS, except the pair Django does not support (CSRF in a
# session that is itself a cookie).
@pytest.mark.parametrize(("csrf_use_sessions", "session_engine"), [
    (csrf_use_sessions, engine) for engine in SESSION_ENGINES for csrf_use_sessions in (False, True)
    if not (csrf_use_sessions and engine.endswith("signed_cookies"))
])
def test_login_csrf_and_pages_work_under_the_standard_session_and_csrf_settings(
    user, password, settings, csrf_use_sessions, session_engine
):
    """CSRF_USE_SESSIONS=True once made a logged-in GET /accounts/profile/ a 500 here (SynchronousOnlyOperation
    from middleware hooks run on the event loop), and 200 under Django's own handler."""
    settings.CSRF_USE_SESSIONS = csrf_use_sessions
    settings.SESSION_ENGINE = session_engine
    settings.CSRF_COOKIE_HTTPONLY = True
    app = ChatsiteASGIHandler()
    async def go():
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            login_page = await client.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
            refused = await client.post("/accounts/login/", data={"username": user.username, "password": password})
            login = await client.post("/accounts/login/", data={
                "username": user.username, "password": password, "csrfmiddlewaretoken": token})
            profile = await client.get("/accounts/profile/")
            # A logged-in browser's form POST without its token: the 403 page, never a 500.
            forged = await client.post("/accounts/logout/", data={})
            keys = await client.post("/accounts/keys/", data={"name": "x"})
            return login_page, refused, login, profile, forged, keys

    login_page, refused, login, profile, forged, keys = asyncio.run(go())
    assert login_page.status_code == 200
    assert refused.status_code == 403
    assert login.status_code == 302, login.text[:300]
    assert profile.status_code == 200 and user.username in profile.text
    assert forged.status_code == 403 and keys.status_code == 403
    assert 'class="error-page"' in forged.text


def test_django_middleware_behaves_under_asgi(user, password):
    app = ChatsiteASGIHandler()
    login_page, = _request_all(app, [("GET", "/accounts/login/", {})])
    assert login_page.status_code == 200
    assert login_page.headers["x-frame-options"] == "DENY"
    assert login_page.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in login_page.headers["content-security-policy"]
    token = login_page.cookies["csrftoken"]

    async def login_then_profile(with_token):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.cookies.set("csrftoken", token)
            data = {"username": user.username, "password": password}
            if with_token:
                data["csrfmiddlewaretoken"] = token
            login = await client.post("/accounts/login/", data=data)
            profile = await client.get("/accounts/profile/")
            return login, profile

    refused, _ = asyncio.run(login_then_profile(with_token=False))
    assert refused.status_code == 403
    login, profile = asyncio.run(login_then_profile(with_token=True))
    assert login.status_code == 302
    assert profile.status_code == 200 and user.username in profile.text


def test_no_middleware_is_adapted_under_asgi(settings, caplog):
    """Django logs "... handler adapted for middleware ..." (with DEBUG on) for any middleware that forces a
    sync/async switch around the views; under ASGI there must be none, so streaming views run natively."""
    settings.DEBUG = True
    with caplog.at_level("DEBUG", logger="django.request"):
        ChatsiteASGIHandler()
    adapted = [record.getMessage() for record in caplog.records if "adapted for" in record.getMessage()]
    middleware_adapted = [message for message in adapted if "middleware" in message]
    assert middleware_adapted == []


class SyncOnlyMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


def test_the_adaptation_check_notices_a_sync_only_middleware(settings, caplog):
    settings.DEBUG = True
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.SyncOnlyMiddleware"]
    with caplog.at_level("DEBUG", logger="django.request"):
        ChatsiteASGIHandler()
    assert any("adapted for middleware" in record.getMessage() for record in caplog.records)


def test_requests_reuse_threads_and_each_keeps_one_thread_for_its_sync_code(monkeypatch):
    """Django starts (and then joins from another new thread) one thread per request; chatsite lends
    reusable ones. Within a request, every thread-sensitive call still runs on that request's one thread."""
    app = ChatsiteASGIHandler()
    seen: list[tuple[int, str]] = []
    original = asgiref_sync.SyncToAsync.__call__

    async def recording(self, *args, **kwargs):
        if self._thread_sensitive:
            func = self.func

            def record_then_call(*a, **kw):
                seen.append((threading.get_ident(), getattr(func, "__qualname__", repr(func))))
                return func(*a, **kw)

            self = asgiref_sync.SyncToAsync(record_then_call, thread_sensitive=True)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref_sync.SyncToAsync, "__call__", recording)

    async def sequential_then_concurrent():
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            sequential = [await client.get("/accounts/login/") for _ in range(5)]
            concurrent = await asyncio.gather(*(client.get("/accounts/login/") for _ in range(3)))
            return sequential + list(concurrent)

    responses = asyncio.run(sequential_then_concurrent())
    monkeypatch.undo()
    assert [r.status_code for r in responses] == [200] * 8
    # Five requests one after another share one thread; three at once need three.
    assert app.request_threads.created == 3
    assert len({ident for ident, _ in seen}) == 3
    assert len(app.request_threads.idle) == 3


def test_idle_request_threads_above_the_limit_are_shut_down():
    from chatsite.asgi import RequestThreads

    pool = RequestThreads(keep=1)
    first, second = pool.borrow(), pool.borrow()
    pool.give_back(first)
    pool.give_back(second)
    assert pool.idle == [first] and pool.created == 2
    assert second._shutdown
    assert pool.borrow() is first


def _django_hop(name: str) -> bool:
    """A thread trip Django makes for its own stock middleware, signals and responses (not chatsite's code)."""
    return bool(re.fullmatch(r"\w+Middleware\.process_(request|view|response)", name)) or name in {
        "Signal.asend.<locals>.sync_send", "SimpleTemplateResponse.render", "HttpResponseBase.close",
    }


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_answering_request_costs_one_thread_trip_of_its_own(
    fake_upstream, user, api_key, monkeypatch, stream
):
    """Authentication, throttle, validation, quota admission and the begin transaction are one trip (the DRF
    view); the answer is awaited on the event loop. Django's own middleware hops as Django does; the answer's
    store (one trip of its own) runs where the answer runs: this loop, or the engine's when an earlier test
    left that running."""
    from conversations.models import Turn
    from conversations.services import conversation_create

    conversation = conversation_create(owner=user)
    request = ("POST", f"/api/v1/conversations/{conversation.pk}/turns/",
               {"json": {"content": "hi", "stream": stream}, "headers": {"Authorization": f"Bearer {api_key}"}})
    hops: list[str] = []
    original = asgiref_sync.SyncToAsync.__call__
    loops: list[asyncio.AbstractEventLoop] = []

    async def counting(self, *args, **kwargs):
        # Only this request's loop (the server's, where its answer runs too): answers of earlier tests may still
        # run on the engine's own thread.
        if loops and asyncio.get_running_loop() is loops[0]:
            hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    async def go():
        loops.append(asyncio.get_running_loop())
        transport = httpx2.ASGITransport(app=ChatsiteASGIHandler())
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            method, url, kwargs = request
            response = await client.request(method, url, **kwargs)
            await client.aclose()
            return response

    monkeypatch.setattr(asgiref_sync.SyncToAsync, "__call__", counting)
    response = asyncio.run(go())
    monkeypatch.undo()
    assert response.status_code == (200 if stream else 201)
    # The answers' watcher (heartbeats, stop requests) runs beside them once a second, not per request.
    background = {"BaseCache.get_many", "vouch", "db.<locals>.run_and_release"}
    ours = [name for name in hops if not _django_hop(name) and name not in background]
    assert ours == ["View.as_view.<locals>.view"], hops
    assert hops.count("db.<locals>.run_and_release") <= 1
    assert Turn.objects.get(conversation=conversation, role="assistant").status == "complete"


def test_the_server_closes_its_model_connections_when_it_stops(fake_upstream, user, api_key):
    from conversations import llm

    app = ChatsiteASGIHandler()

    async def go():
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
        sent = []

        async def receive():
            return next(messages)

        async def send(message):
            sent.append(message["type"])

        backend = llm.get_backend()
        async for _ in backend.stream([{"role": "user", "content": "hi"}], model="fake-model", max_tokens=5):
            pass
        session = backend._session()  # this loop's pool, with the connection just used
        assert not session.closed
        await app({"type": "lifespan"}, receive, send)
        return sent, session.closed

    sent, closed = asyncio.run(go())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"] and closed
