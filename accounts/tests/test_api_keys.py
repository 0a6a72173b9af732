"""Personal API keys through the API and the create_api_key command."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, hash_api_key
from conversations.tests.api_helpers import assert_error, session_client

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def test_create_list_use_and_revoke(user, password):
    session = session_client(user.username, password)
    created = session.post("/api/v1/keys/", {"name": "laptop script"}, format="json")
    assert created.status_code == 201
    body = created.json()
    raw = body["key"]
    assert raw.startswith("cs_" + body["prefix"]) and body["name"] == "laptop script" and body["is_active"]
    stored = ApiKey.objects.get(pk=body["id"])
    assert stored.key_hash == hash_api_key(raw) and raw not in str(ApiKey.objects.filter(pk=stored.pk).values().get())

    listed = session.get("/api/v1/keys/").json()
    assert listed["count"] == 1 and "key" not in listed["results"][0]
    assert raw not in session.get("/api/v1/keys/").content.decode()
    assert raw not in session.get(f"/api/v1/keys/{stored.pk}/").content.decode()

    assert bearer(raw).get("/api/v1/conversations/").status_code == 200
    stored.refresh_from_db()
    assert stored.last_used_at is not None

    assert session.delete(f"/api/v1/keys/{stored.pk}/").status_code == 204
    assert_error(bearer(raw).get("/api/v1/conversations/"), 401, "not_authenticated")
    assert session.get(f"/api/v1/keys/{stored.pk}/").json()["is_active"] is False
    assert session.delete(f"/api/v1/keys/{stored.pk}/").status_code == 204  # revoking twice is fine


def test_expiry(user, api_client):
    client = api_client  # keys are created from a session, never with a key
    soon = timezone.now() + timedelta(days=1)
    body = client.post("/api/v1/keys/", {"name": "temp", "expires_at": soon.isoformat()}, format="json").json()
    assert body["expires_at"] is not None
    ApiKey.objects.filter(pk=body["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(bearer(body["key"]).get("/api/v1/usage/"), 401)


@pytest.mark.parametrize("body", [
    {}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": "a\x00b"}, {"name": 5},
    {"name": "past", "expires_at": "2001-01-01T00:00:00Z"}, {"name": "bad", "expires_at": "tomorrow"},
])
def test_bad_key_requests_are_400(api_client, body):
    assert_error(api_client.post("/api/v1/keys/", body, format="json"), 400, "invalid")
    assert ApiKey.objects.count() == 0


def test_protected_fields_are_ignored(user, other_user, api_client):
    body = api_client.post("/api/v1/keys/", {"name": "n", "user": other_user.pk, "prefix": "aaaa",
                                             "revoked_at": None, "key_hash": "0" * 64}, format="json").json()
    key = ApiKey.objects.get(pk=body["id"])
    assert key.user == user and key.prefix != "aaaa" and key.key_hash != "0" * 64


def test_create_api_key_command(user):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", user.username, "--name", "cron job", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    key = ApiKey.objects.get(user=user, name="cron job")
    assert key.key_hash == hash_api_key(raw) and raw not in err.getvalue()
    assert bearer(raw).get("/api/v1/conversations/").status_code == 200
    with pytest.raises(CommandError):
        call_command("create_api_key", "nobody", "--name", "x", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_deactivated_users_key_is_401(user, api_key):
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_error(bearer(api_key).get("/api/v1/conversations/"), 401)


def test_a_key_is_found_by_its_hash_with_its_user_in_one_query(user, django_assert_num_queries):
    key, raw = ApiKey.generate(user=user, name="laptop", expires_at=timezone.now() + timedelta(days=3))
    with django_assert_num_queries(1):
        loaded = ApiKey.objects.for_api_key(raw)
        assert loaded.pk == key.pk and loaded.user.username == user.username
    assert ApiKey.objects.for_api_key(raw + "x") is None
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert ApiKey.objects.for_api_key(raw) is None  # expired
    ApiKey.objects.filter(pk=key.pk).update(expires_at=None, revoked_at=timezone.now())
    assert ApiKey.objects.for_api_key(raw) is None  # revoked


def test_the_setting_is_chosen_where_keys_are_managed(authenticated_client, user):
    response = authenticated_client.post("/accounts/keys/", {"name": "tasks", "keep_out_of_history": "on"})
    assert response.status_code == 302
    assert ApiKey.objects.get(user=user, name="tasks").store_chats is False
    authenticated_client.post("/accounts/keys/", {"name": "scripts"})
    assert ApiKey.objects.get(user=user, name="scripts").store_chats is True
    page = authenticated_client.get("/accounts/profile/").content.decode()
    assert "Keep its chats out of my history" in page and "Temporary (not listed)" in page and "In history" in page

    created = authenticated_client.post("/api/v1/keys/", {"name": "api", "store_chats": False},
                                        content_type="application/json")
    assert created.status_code == 201 and created.json()["store_chats"] is False
    assert authenticated_client.get(f"/api/v1/keys/{created.json()['id']}/").json()["store_chats"] is False
