"""Login throttling (django-axes): lockout after AXES_FAILURE_LIMIT failures, for a cool-off, not forever."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from tests.support import ROOT

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def login(client, username, password, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def fail_until_locked(client, username, **extra):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = login(client, username, "wrong-password", **extra)
    return response


def assert_logged_in(response):
    assert response.status_code == 302, response.status_code
    assert response["Location"] == "/"


def assert_locked_out(response):
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert b"Traceback" not in response.content
    assert response["Content-Type"].startswith("text/html")


def test_lockout_settings_are_finite():
    assert 1 <= settings.AXES_FAILURE_LIMIT <= 10
    assert settings.AXES_COOLOFF_TIME  # a lockout that never ends is a denial of service
    assert 0 < float(settings.AXES_COOLOFF_TIME) <= 24
    assert "axes.backends.AxesStandaloneBackend" in settings.AUTHENTICATION_BACKENDS
    assert "axes.middleware.AxesMiddleware" in settings.MIDDLEWARE


def test_failures_below_the_limit_do_not_lock(user, password):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = login(client, "alice", "wrong-password")
        assert response.status_code == 200  # the form again, with an error
        assert b"Too many attempts" not in response.content
    assert_logged_in(login(client, "alice", password))


def test_locked_out_after_the_limit_even_with_the_right_password(user, password):
    client = Client()
    assert_locked_out(fail_until_locked(client, "alice"))
    assert_locked_out(login(client, "alice", password))
    assert "_auth_user_id" not in client.session


def test_lockout_ends_after_the_cool_off(user, password):
    client = Client()
    fail_until_locked(client, "alice")
    assert_locked_out(login(client, "alice", password))

    # Just inside the cool-off: still locked.
    cool_off = timedelta(hours=float(settings.AXES_COOLOFF_TIME))
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - cool_off
                                 + timedelta(minutes=1))
    assert_locked_out(login(client, "alice", password))

    # The cool-off has passed: the right password works again.
    attempt = AccessAttempt.objects.get()
    AccessAttempt.objects.update(attempt_time=attempt.attempt_time - cool_off - timedelta(minutes=1))
    assert_logged_in(login(client, "alice", password))


def test_lockout_is_per_username_and_address(user, make_user, password):
    """An attacker can't lock a user out from everywhere, nor lock every user from one address by one name."""
    make_user("carol")
    fail_until_locked(Client(), "alice", REMOTE_ADDR="203.0.113.9")
    assert_logged_in(login(Client(), "alice", password, REMOTE_ADDR="198.51.100.7"))
    assert_logged_in(login(Client(), "carol", password, REMOTE_ADDR="203.0.113.9"))


def test_a_forged_forwarded_for_header_does_not_reset_the_count(user, password):
    """With the default configuration (no proxy), X-Forwarded-For is the client's to forge: it is ignored."""
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(client, "alice", "wrong-password", HTTP_X_FORWARDED_FOR=f"192.0.2.{i + 1}")
    assert_locked_out(login(client, "alice", password, HTTP_X_FORWARDED_FOR="192.0.2.200"))


def test_behind_a_proxy_each_client_address_is_counted_separately(settings, user, password):
    """Behind one trusted proxy REMOTE_ADDR is the proxy: the client is the address the proxy appended."""
    settings.AXES_TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    # The attacker sends a forged X-Forwarded-For; the proxy appends the real address after it.
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(Client(), "alice", "wrong-password", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.9", **proxy)
    assert_locked_out(login(Client(), "alice", password, HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy))
    # Another client behind the same proxy is not locked out.
    assert_logged_in(login(Client(), "alice", password, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy))


def test_proxy_configuration_is_documented():
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    for text in (readme, example):
        assert "AXES_TRUSTED_PROXY_COUNT" in text
        assert "AXES_COOLOFF_HOURS" in text and "AXES_FAILURE_LIMIT" in text


def test_the_admin_login_is_throttled_too(make_user, password):
    make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post("/admin/login/", {"username": "root", "password": "wrong-password"})
    assert_locked_out(response)
    assert_locked_out(client.post("/admin/login/", {"username": "root", "password": password}))
    assert "_auth_user_id" not in client.session


def test_client_address_behind_proxies():
    """The address a lockout is keyed on, for 0, 1 and 2 trusted proxies and a short or forged chain."""
    from django.test import RequestFactory, override_settings

    from accounts.addresses import client_ip_address

    def address(proxies, forwarded=None):
        extra = {"REMOTE_ADDR": "10.0.0.2"}
        if forwarded is not None:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded
        with override_settings(AXES_TRUSTED_PROXY_COUNT=proxies):
            return client_ip_address(RequestFactory().get("/", **extra))

    assert address(0, "203.0.113.9") == "10.0.0.2"
    assert address(1, "6.6.6.6, 203.0.113.9") == "203.0.113.9"
    assert address(2, "6.6.6.6, 203.0.113.9, 10.0.0.1") == "203.0.113.9"
    assert address(2, "203.0.113.9") == "10.0.0.2"  # too short: not through both proxies
    assert address(1) == "10.0.0.2"
