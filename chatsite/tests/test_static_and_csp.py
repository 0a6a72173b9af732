"""Static files in production mode (ServeStatic, hashed and compressed after collectstatic) and the
Content-Security-Policy (django-csp), through the production ASGI application."""

import asyncio
import re

import httpx2
import pytest
from django.core.management import call_command

from chatsite.asgi import ChatsiteASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


def _get_all(app, requests):
    async def go():
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get(url, headers=headers) for url, headers in requests]

    return asyncio.run(go())


@pytest.fixture
def collected(settings, tmp_path):
    """collectstatic into a fresh STATIC_ROOT with the production storage (manifest + compression)."""
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "chatsite.storage.StaticFilesStorage"}}
    settings.SERVESTATIC_USE_FINDERS = False
    call_command("collectstatic", interactive=False, verbosity=0)
    return settings.STATIC_ROOT


def test_hashed_static_files_are_served_compressed_and_cached_for_good(collected):
    app = ChatsiteASGIHandler()
    login, = _get_all(app, [("/accounts/login/", {})])
    assert login.status_code == 200
    stylesheet = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', login.text)
    assert stylesheet, "the page links a hashed stylesheet"
    css, compressed, missing = _get_all(app, [
        (stylesheet.group(1), {"Accept-Encoding": "identity"}),
        (stylesheet.group(1), {"Accept-Encoding": "gzip"}),
        ("/static/css/no-such-file.css", {}),
    ])
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    assert compressed.status_code == 200 and compressed.headers.get("content-encoding") in ("gzip", "br")
    assert compressed.text == css.text
    assert missing.status_code == 404


def test_pages_carry_the_strict_policy_and_the_api_docs_only_their_exception():
    app = ChatsiteASGIHandler()
    login, docs = _get_all(app, [("/accounts/login/", {}), ("/api/docs/", {})])
    policy = dict(part.strip().split(" ", 1) for part in login.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["img-src"] == "'self' data:" and policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'" and policy["default-src"] == "'self'"
    docs_policy = docs.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline'" in docs_policy
    assert "frame-ancestors 'none'" in docs_policy
