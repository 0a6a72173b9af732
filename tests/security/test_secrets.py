"""Secrets never leak: OPENAI_API_KEY and personal API keys appear in no page, response, error, export or log.

One sweep drives pages, API endpoints (JSON and streams), exports, the admin and every upstream
failure with all loggers at DEBUG, then greps everything that came out: response bodies and headers,
log records (caplog), the process's stdout/stderr (capfd) and the stored error texts.
"""

import logging

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey
from conversations.models import Conversation, Turn
from conversations.services import conversation_create
from tests.support import UPSTREAM_SECRET

pytestmark = pytest.mark.django_db(transaction=True)

FAILURES = [
    {"fail_status": 401, "fail_count": 1},
    {"fail_status": 403, "fail_count": 1},
    {"fail_status": 429, "fail_count": 1, "retry_after": "7"},
    {"fail_status": 500, "fail_count": 1},
    {"fail_status": 503, "fail_count": 1},
    {"drop_after": 2},
    {"malformed_after": 2},
]


class Outputs:
    """Everything the site sent or logged during the sweep, labelled for the failure message."""

    def __init__(self):
        self.items: list[tuple[str, str]] = []

    def add(self, label: str, response):
        body = b"".join(response) if getattr(response, "streaming", False) else response.content
        headers = "\n".join(f"{k}: {v}" for k, v in response.items())
        self.items.append((label, headers + "\n\n" + body.decode(errors="replace")))
        return response

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        return [f"{name} in {label}" for label, text in self.items for name, secret in secrets.items()
                if secret in text]


def key_secret_part(raw: str) -> str:
    """The part of a raw key that is secret (the visible prefix, cs_xxxxxxxx_, is shown on purpose).

    Split after the prefix, not at the last "_": the secret itself may contain "_" (token_urlsafe), and its
    tail after one could be a few characters that every page contains.
    """
    return raw.split("_", 2)[2]


@pytest.fixture
def debug_logs(caplog):
    for name in ("", "django", "django.request", "django.db.backends", "openai", "httpx", "httpx2", "httpcore",
                 "axes", "conversations", "accounts", "chatsite", "asyncio", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_no_secret_in_any_output(fake_upstream, debug_logs, capfd, settings, user, make_user, password,
                                 api_key, key_client):
    out = Outputs()
    admin = make_user("root", is_staff=True, is_superuser=True)
    session = Client()
    session.force_login(user)
    admin_client = Client()
    admin_client.force_login(admin)

    # A key made on the profile page is shown exactly once: that page is the one place it may appear.
    response = session.post("/accounts/keys/", {"name": "from the profile"}, follow=True)
    profile_key = ApiKey.objects.get(name="from the profile")
    shown_once = response.content.decode()
    revoked_key, revoked_raw = ApiKey.generate(user=user, name="to revoke")
    secrets = {"OPENAI_API_KEY": UPSTREAM_SECRET, "api key": key_secret_part(api_key),
               "revoked key": key_secret_part(revoked_raw)}
    secrets.update({f"hash of {k.name}": k.key_hash for k in ApiKey.objects.all()})
    assert profile_key.prefix in shown_once
    out.add("profile again", session.get("/accounts/profile/"))

    # Chats through the API, the JSON and the streaming way, and the OpenAI-compatible endpoint.
    created = key_client.post("/api/v1/conversations/", {"title": "chat"}, format="json")
    conversation_id = created.json()["id"]
    c = f"/api/v1/conversations/{conversation_id}"
    out.add("turn", key_client.post(f"{c}/turns/", {"content": "hello"}, format="json"))
    out.add("stream", key_client.post(f"{c}/turns/", {"content": "again", "stream": True}, format="json"))
    out.add("regenerate", key_client.post(f"{c}/regenerate/", {}, format="json"))
    out.add("v1", key_client.post("/v1/chat/completions", {
        "model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}, format="json"))
    out.add("v1 stream", key_client.post("/v1/chat/completions", {
        "model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]}, format="json"))
    out.add("prototype chat", key_client.post("/api/chat", {"messages": [{"role": "user", "content": "hi"}]},
                                         format="json"))

    # The upstream did get the key (that is its one legitimate use), so there was a secret to leak.
    assert fake_upstream.chat_requests
    assert {r.headers.get("Authorization") for r in fake_upstream.chat_requests} == {f"Bearer {UPSTREAM_SECRET}"}

    # Every upstream failure, JSON and streamed.
    failing = conversation_create(owner=user, title="failing")
    for i, fault in enumerate(FAILURES):
        for stream in (False, True):
            fake_upstream.reset()
            for name, value in fault.items():
                setattr(fake_upstream.behaviour, name, value)
            out.add(f"fault {fault} stream={stream}", key_client.post(
                f"/api/v1/conversations/{failing.pk}/turns/", {"content": f"try {i}", "stream": stream},
                format="json"))
    fake_upstream.reset()
    settings.OPENAI_TIMEOUT = 0.3
    fake_upstream.behaviour.hang = True
    out.add("timeout", key_client.post(f"/api/v1/conversations/{failing.pk}/turns/", {"content": "slow"},
                                       format="json"))
    fake_upstream.reset()
    settings.OPENAI_BASE_URL = "http://127.0.0.1:1/v1"  # nothing listens there
    out.add("refused", key_client.post(f"/api/v1/conversations/{failing.pk}/turns/", {"content": "down"},
                                       format="json"))
    settings.OPENAI_BASE_URL = fake_upstream.base_url

    # Reads: API, exports, schema, pages.
    for url in ["/api/v1/conversations/", f"{c}/", f"{c}/turns/", f"{c}/export/?format=md",
                f"{c}/export/?format=json", f"/api/v1/conversations/{failing.pk}/",
                f"/api/v1/conversations/{failing.pk}/export/?format=json", "/api/v1/usage/", "/api/v1/keys/",
                f"/api/v1/keys/{profile_key.pk}/", "/v1/models", "/api/schema/", "/healthz"]:
        out.add(url, key_client.get(url))
    out.add("docs", session.get("/api/docs/"))
    for url in ["/", f"/c/{conversation_id}/", f"/c/{failing.pk}/", "/c/history/", "/accounts/profile/",
                "/no-such-page/"]:
        out.add(url, session.get(url))
    turn = Turn.objects.filter(conversation_id=failing.pk).last()
    out.add("turn fragment", session.get(f"/c/{failing.pk}/turns/{turn.pk}/"))

    # Keys that must not work: revoked, altered, in the query string; each a 401 that repeats nothing.
    out.add("revoke", key_client.delete(f"/api/v1/keys/{revoked_key.pk}/"))
    for label, header in [("revoked", f"Bearer {revoked_raw}"), ("altered", f"Bearer {api_key[:-3]}xyz"),
                          ("basic", f"Basic {api_key}"), ("no scheme", api_key)]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = out.add(f"bad key {label}", client.get("/api/v1/conversations/"))
        assert response.status_code == 401, label
    response = out.add("key in query", APIClient().get(f"/api/v1/conversations/?api_key={api_key}&key={api_key}"))
    assert response.status_code == 401

    # The admin, with everything above in the database.
    admin_urls = ["/admin/", "/admin/conversations/conversation/",
                  f"/admin/conversations/conversation/{failing.pk}/change/",
                  f"/admin/conversations/conversation/{conversation_id}/change/", "/admin/conversations/turn/",
                  f"/admin/conversations/turn/{turn.pk}/change/", "/admin/accounts/apikey/",
                  f"/admin/accounts/apikey/{profile_key.pk}/change/", f"/admin/accounts/user/{user.pk}/change/",
                  "/admin/usage/", "/admin/conversations/feedback/", "/admin/axes/accessattempt/"]
    for url in admin_urls:
        response = out.add(url, admin_client.get(url))
        assert response.status_code == 200, (url, response.status_code)
    for action in ("export_json", "export_csv"):
        out.add(f"admin {action}", admin_client.post("/admin/conversations/conversation/", {
            "action": action,
            "_selected_action": [str(pk) for pk in Conversation.objects.values_list("pk", flat=True)],
        }))

    # The sweep really exercised failures and answers (so the grep below had something to read).
    statuses = {turn.status for turn in Turn.objects.filter(role="assistant")}
    assert {"complete", "failed"} <= statuses

    logs = "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in debug_logs.records)
    captured = capfd.readouterr()
    out.items += [("log records", logs), ("stdout", captured.out), ("stderr", captured.err)]
    stored = "\n".join(str(row) for row in Turn.objects.values_list("content", "error"))
    out.items.append(("stored turns", stored))
    assert len(debug_logs.records) > 20
    assert "upstream error" in logs  # the failures were logged, just without secrets

    assert out.leaks(secrets) == []
    # Upstream error bodies are never passed through (a provider may echo part of a key in them).
    assert [label for label, text in out.items if "fake failure" in text and label not in ("log records",)] == []
