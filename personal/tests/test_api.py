"""The personalization REST API: owner only, errors in the one shape."""

import pytest

from conversations.models import Conversation
from personal import services
from personal.models import Memory, Personalization
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db


def test_instructions_read_defaults_then_change(api_client, user):
    assert api_client.get("/api/v1/personalization/").json() == {
        "about_me": "", "answer_style": "", "memory_enabled": True, "updated_at": None,
    }
    response = api_client.patch("/api/v1/personalization/", {"about_me": "I teach.", "memory_enabled": False},
                                format="json")
    assert response.status_code == 200, response.content
    stored = Personalization.objects.get(user=user)
    assert (stored.about_me, stored.answer_style, stored.memory_enabled) == ("I teach.", "", False)


@pytest.mark.parametrize("body", [{"memory_enabled": "yes"}, {"about_me": 12}, {"answer_style": "x" * 1501}])
def test_bad_instructions_are_400_in_the_error_shape(api_client, body):
    assert_error_shape(api_client.patch("/api/v1/personalization/", body, format="json"), 400)
    assert not Personalization.objects.exists()


def test_memories_add_list_change_delete(api_client, user, other_user):
    services.memory_create(owner=other_user, content="Bob's fact.")
    created = api_client.post("/api/v1/memories/", {"content": "Likes tea."}, format="json")
    assert created.status_code == 201, created.content
    memory_id = created.json()["id"]
    assert [m["content"] for m in api_client.get("/api/v1/memories/").json()["results"]] == ["Likes tea."]

    changed = api_client.patch(f"/api/v1/memories/{memory_id}/", {"content": "Likes green tea."}, format="json")
    assert changed.json()["content"] == "Likes green tea."
    assert api_client.delete(f"/api/v1/memories/{memory_id}/").status_code == 204
    assert list(Memory.objects.values_list("content", flat=True)) == ["Bob's fact."]


@pytest.mark.parametrize("content", ["", "   ", "x" * 501])
def test_empty_or_long_memories_are_400(api_client, content):
    assert_error_shape(api_client.post("/api/v1/memories/", {"content": content}, format="json"), 400)
    assert not Memory.objects.exists()


def test_another_users_memory_is_404_and_unchanged(api_client, other_user):
    theirs = services.memory_create(owner=other_user, content="Bob's fact.")
    for method in ("get", "patch", "delete"):
        response = getattr(api_client, method)(f"/api/v1/memories/{theirs.pk}/", {"content": "mine"}, format="json")
        assert_error_shape(response, 404)
    assert Memory.objects.get().content == "Bob's fact."


def test_anonymous_is_401(client):
    assert_error_shape(client.get("/api/v1/memories/"), 401)
    assert_error_shape(client.get("/api/v1/personalization/"), 401)


def test_a_chat_can_turn_personalization_off(api_client):
    created = api_client.post("/api/v1/conversations/", {}, format="json").json()
    assert created["personal"] is True
    response = api_client.patch(f"/api/v1/conversations/{created['id']}/", {"personal": False}, format="json")
    assert response.json()["personal"] is False


def test_a_chat_can_start_with_personalization_off(api_client, authenticated_client):
    created = api_client.post("/api/v1/conversations/", {"personal": False}, format="json").json()
    assert created["personal"] is False
    started = authenticated_client.post("/c/start/", {"personal": False}, content_type="application/json")
    assert started.status_code == 201, started.content
    assert Conversation.objects.get(pk=started.json()["id"]).personal is False
