"""The personalization page: instructions, the memory switch, memories added, edited and deleted (owner only)."""

import pytest

from personal import services
from personal.models import Memory, Personalization

pytestmark = pytest.mark.django_db


def test_the_page_saves_instructions_and_the_memory_switch(authenticated_client, user):
    assert authenticated_client.get("/personal/").status_code == 200
    response = authenticated_client.post("/personal/", {"about_me": "I teach.", "answer_style": "Briefly."})
    assert response.status_code == 302
    stored = Personalization.objects.get(user=user)
    # An unticked checkbox is absent from the form: memory is switched off.
    assert (stored.about_me, stored.answer_style, stored.memory_enabled) == ("I teach.", "Briefly.", False)
    assert "I teach." in authenticated_client.get("/personal/").content.decode()


def test_memories_are_added_edited_and_deleted(authenticated_client, user):
    assert authenticated_client.post("/personal/memories/", {"content": " Likes tea. "}).status_code == 302
    memory = Memory.objects.get(owner=user)
    assert memory.content == "Likes tea."
    authenticated_client.post(f"/personal/memories/{memory.pk}/", {"content": "Likes green tea."})
    memory.refresh_from_db()
    assert memory.content == "Likes green tea."
    assert "Likes green tea." in authenticated_client.get("/personal/").content.decode()
    authenticated_client.post(f"/personal/memories/{memory.pk}/delete/")
    assert not Memory.objects.exists()


def test_an_empty_memory_is_refused_on_the_page(authenticated_client):
    response = authenticated_client.post("/personal/memories/", {"content": "   "})
    assert response.status_code == 400
    assert not Memory.objects.exists()


def test_another_users_memory_is_404_on_the_page(authenticated_client, other_user):
    theirs = services.memory_create(owner=other_user, content="Bob's fact.")
    assert authenticated_client.post(f"/personal/memories/{theirs.pk}/", {"content": "x"}).status_code == 404
    assert authenticated_client.post(f"/personal/memories/{theirs.pk}/delete/").status_code == 404
    assert Memory.objects.get().content == "Bob's fact."
    assert "Bob&#x27;s fact." not in authenticated_client.get("/personal/").content.decode()


def test_the_chat_settings_show_the_instructions_and_the_switch(authenticated_client, user):
    services.personalization_update(user=user, about_me="I teach physics.")
    html = authenticated_client.get("/").content.decode()
    assert 'name="personal" checked' in html and "I teach physics." in html
