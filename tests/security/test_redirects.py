"""No open redirects: the `next` of log-in, log-out and the language switch never leaves the site."""

from urllib.parse import urlsplit

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

HOSTILE_NEXT = ["http://evil.example/", "https://evil.example/x", "//evil.example/", "/\\evil.example/",
                "\\\\evil.example", "javascript:alert(1)", "http:evil.example", " //evil.example",
                "https://testserver@evil.example/", "/%2F%2Fevil.example", "data:text/html,<script>1</script>"]


def assert_stays_on_site(response):
    location = response.get("Location", "")
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 302:
        parts = urlsplit(location)
        # A path on this site (a browser never turns %2F into a host): no scheme, no host, no // or /\.
        assert not parts.scheme and not parts.netloc, location
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_login_next(user, password, target):
    client = Client()
    response = client.post(f"/accounts/login/?next={target}", {"username": "alice", "password": password,
                                                                "next": target})
    assert "_auth_user_id" in client.session
    assert_stays_on_site(response)


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_logout_and_language_next(authenticated_client, target):
    assert_stays_on_site(authenticated_client.post("/i18n/setlang/", {"language": "ko", "next": target}))
    assert_stays_on_site(authenticated_client.post("/i18n/setlang/", {"language": "en"}, HTTP_REFERER=target))
    assert_stays_on_site(authenticated_client.post(f"/accounts/logout/?next={target}", {"next": target}))


def test_a_logged_in_user_visiting_login_is_sent_home_not_away(authenticated_client):
    assert_stays_on_site(authenticated_client.get("/accounts/login/?next=//evil.example/"))
