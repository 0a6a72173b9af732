"""Custom 400/403/404/500 pages, and every error under /api/ and /v1/ in the one JSON error shape."""

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.test import Client
from django.urls import path

from chatsite import urls as project_urls
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db


def _boom(request):
    raise RuntimeError("internal detail that must not leak: sk-test-SECRET-upstream-key-0123456789")


def _forbidden(request):
    raise PermissionDenied("internal reason")


def _suspicious(request):
    raise SuspiciousOperation("internal reason")


# The project's URLs and error handlers, plus views that fail in each way, under / and under /api/.
urlpatterns = [
    *(path(f"{prefix}test-failures/{name}/", view)
      for prefix in ("", "api/", "v1/")
      for name, view in (("boom", _boom), ("forbidden", _forbidden), ("suspicious", _suspicious))),
    *project_urls.urlpatterns,
]
handler400 = project_urls.handler400
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500

LEAKS = (b"Traceback", b"RuntimeError", b"internal detail", b"internal reason", b"sk-test-SECRET", b"DEBUG = True")


@pytest.fixture
def failing_urls(settings):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False


def assert_html_page(response, status, heading: bytes):
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert heading in response.content, response.content[:500]
    assert b'class="error-page"' in response.content  # the site's page, not Django's plain default
    for leak in LEAKS:
        assert leak not in response.content


@pytest.mark.parametrize(("name", "status", "heading"), [
    ("boom", 500, b"Something went wrong"),
    ("forbidden", 403, b"Forbidden"),
    ("suspicious", 400, b"Bad request"),
])
def test_html_error_pages(failing_urls, user, name, status, heading):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    assert_html_page(client.get(f"/test-failures/{name}/"), status, heading)


def test_html_404_page(authenticated_client):
    assert_html_page(authenticated_client.get("/no-such-page/"), 404, b"Page not found")


def test_html_404_for_anonymous_visitors(client):
    response = client.get("/no-such-page/")
    assert response.status_code in (302, 404)
    if response.status_code == 404:
        assert_html_page(response, 404, b"Page not found")


@pytest.mark.parametrize("prefix", ["/api/", "/v1/"])
@pytest.mark.parametrize(("name", "status"), [("boom", 500), ("forbidden", 403), ("suspicious", 400)])
def test_api_errors_are_json(failing_urls, user, prefix, name, status):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.get(f"{prefix}test-failures/{name}/")
    assert_error_shape(response, status)
    for leak in LEAKS:
        assert leak not in response.content


@pytest.mark.parametrize("url", [
    "/api/", "/api/nope", "/api/v1/nope/", "/api/v1/conversations/not-a-uuid/", "/api/v2/conversations/",
    "/v1/", "/v1/nope", "/v1/chat/nope", "/v1/models/../../etc/passwd",
])
@pytest.mark.parametrize("auth", ["anonymous", "session"])
def test_unknown_api_urls_are_json_404(client, user, url, auth):
    if auth == "session":
        client.force_login(user)
    assert_error_shape(client.get(url), 404)
    assert_error_shape(client.post(url, data="{}", content_type="application/json"), (403, 404))


def test_disallowed_host_is_a_400(settings, client):
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    html = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert_html_page(html, 400, b"Bad request")
    assert_error_shape(client.get("/api/v1/conversations/", HTTP_HOST="evil.example"), 400)


def test_csrf_failure_on_a_form_is_the_site_403_page(user, password):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": password})
    assert_html_page(response, 403, b"Forbidden")
    assert "_auth_user_id" not in client.session
