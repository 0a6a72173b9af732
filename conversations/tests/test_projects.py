"""Projects: a group of chats with its own instructions (in the system prompt, in the documented order) and default
model; chats moved in and out, listed inside it rather than in the main list; deleted with or without its chats. The
REST API and the page's own writes, against the fake upstream over real HTTP for what the model receives."""

import json
import re

import pytest
from django.test import Client

from conversations import answering
from conversations.models import Conversation, Project, Turn
from conversations.organizing import project_create
from conversations.selectors import models_offered, project_for_conversation
from conversations.services import conversation_create
from conversations.tests.factories import add_turns
from personal import services as personal_services


def history_ids(html: str) -> list[str]:
    return re.findall(r'class="history-item" data-id="([0-9a-f-]+)"', html)


@pytest.mark.django_db(transaction=True)
def test_a_chat_in_a_project_sends_its_instructions_between_the_chats_prompt_and_the_personal_ones(
    fake_upstream, user
):
    personal_services.personalization_update(user=user, about_me="I teach physics.")
    project = project_create(owner=user, name="Lectures", instructions="  Answer as a lecture outline.  ")
    conversation = conversation_create(owner=user, system_prompt="You are terse.", project=project)
    assert project_for_conversation(conversation) == project

    answering.answer(conversation=conversation, user=user, content="Hello")

    [request] = fake_upstream.chat_requests
    assert request.messages[0] == {"role": "system", "content": (
        "You are terse.\n\n"
        'Instructions for the project "Lectures" this chat belongs to:\nAnswer as a lecture outline.\n\n'
        "What the user says about themselves:\nI teach physics."
    )}


@pytest.mark.django_db(transaction=True)
def test_out_of_the_project_its_instructions_stop(fake_upstream, user, settings):
    project = project_create(owner=user, name="P", instructions="Only in P.")
    conversation = conversation_create(owner=user, project=project, personal=False)
    Conversation.objects.filter(pk=conversation.pk).update(project=None)
    conversation.refresh_from_db()
    answering.answer(conversation=conversation, user=user, content="Hello")
    assert fake_upstream.chat_requests[0].messages[0]["content"] == settings.CHAT_DEFAULT_SYSTEM_PROMPT


@pytest.mark.django_db
def test_the_projects_api_creates_lists_changes_and_keeps_them_private(key_client, user, other_user):
    created = key_client.post("/api/v1/projects/", {"name": " Garden  plans ", "instructions": "Metric units.",
                                                    "model": ""}, format="json")
    assert created.status_code == 201, created.content
    project = created.json()
    assert project["name"] == "Garden plans" and project["conversation_count"] == 0
    assert key_client.post("/api/v1/projects/", {"name": "Garden plans"}, format="json").status_code == 400
    assert key_client.post("/api/v1/projects/", {"name": ""}, format="json").status_code == 400
    assert key_client.post("/api/v1/projects/", {"name": "x", "model": "no-such-model"},
                           format="json").status_code == 400

    chat = key_client.post("/api/v1/conversations/", {"title": "Beds", "project": project["id"]}, format="json")
    assert chat.status_code == 201 and chat.json()["project"] == project["id"]
    listed = key_client.get("/api/v1/projects/").json()
    assert [(p["name"], p["conversation_count"]) for p in listed["results"]] == [("Garden plans", 1)]

    changed = key_client.patch(f"/api/v1/projects/{project['id']}/", {"instructions": "Imperial units."},
                               format="json")
    assert changed.json()["instructions"] == "Imperial units." and changed.json()["name"] == "Garden plans"

    # Out and in again through the chat's PATCH; another user's project is a 404 everywhere.
    chat_url = f"/api/v1/conversations/{chat.json()['id']}/"
    assert key_client.patch(chat_url, {"project": None}, format="json").json()["project"] is None
    assert key_client.patch(chat_url, {"project": project["id"]}, format="json").json()["project"] == project["id"]
    bobs = project_create(owner=other_user, name="bob's")
    assert key_client.patch(chat_url, {"project": bobs.pk}, format="json").status_code == 404
    assert key_client.post("/api/v1/conversations/", {"project": bobs.pk}, format="json").status_code == 404
    assert key_client.get(f"/api/v1/projects/{bobs.pk}/").status_code == 404
    assert key_client.delete(f"/api/v1/projects/{bobs.pk}/").status_code == 404
    assert Project.objects.filter(pk=bobs.pk).exists()
    assert key_client.delete(f"/api/v1/projects/{project['id']}/?delete_chats=maybe").status_code == 400


@pytest.mark.django_db
def test_a_new_chat_in_a_project_starts_with_its_model(key_client, user, authenticated_client):
    model = models_offered(user)[0]
    project = project_create(owner=user, name="P", model=model)
    assert conversation_create(owner=user, project=project).model == model
    started = authenticated_client.post("/c/start/", json.dumps({"project": project.pk}),
                                        content_type="application/json")
    assert started.status_code == 201
    assert Conversation.objects.get(pk=started.json()["id"]).project == project
    assert Conversation.objects.get(pk=started.json()["id"]).model == model


@pytest.mark.django_db
@pytest.mark.parametrize("delete_chats", [False, True])
def test_deleting_a_project_keeps_or_deletes_its_chats(key_client, user, delete_chats):
    project = project_create(owner=user, name="P")
    inside = conversation_create(owner=user, project=project, title="inside")
    add_turns(inside, ("user", "q"), ("assistant", "a"))
    outside = conversation_create(owner=user, title="outside")
    response = key_client.delete(f"/api/v1/projects/{project.pk}/?delete_chats={str(delete_chats).lower()}")
    assert response.status_code == 204
    assert not Project.objects.exists()
    assert Conversation.objects.filter(pk=outside.pk).exists()
    assert Conversation.objects.filter(pk=inside.pk).exists() is not delete_chats
    assert Turn.objects.filter(conversation_id=inside.pk).exists() is not delete_chats


@pytest.mark.django_db
def test_a_projects_chats_live_inside_it_in_the_sidebar_not_in_the_main_list(authenticated_client, user):
    project = project_create(owner=user, name="Lectures")
    inside = conversation_create(owner=user, project=project, title="inside")
    outside = conversation_create(owner=user, title="outside")
    page = authenticated_client.get(outside.get_absolute_url()).content.decode()
    assert history_ids(page) == [str(outside.pk)]
    assert f'data-folder-id="{project.pk}"' in page and ">Lectures<" in page
    in_project = authenticated_client.get("/c/history/", {"folder": project.pk}).content.decode()
    assert history_ids(in_project) == [str(inside.pk)]
    # A search still finds it, wherever it lives.
    assert str(inside.pk) in history_ids(authenticated_client.get("/c/history/", {"q": "inside"}).content.decode())
    # Deleting from the page asks: keep (the default) or delete its chats.
    client = Client()
    client.force_login(user)
    assert client.post(f"/folders/{project.pk}/delete/", json.dumps({"delete_chats": "yes"}),
                       content_type="application/json").status_code == 400
    assert client.post(f"/folders/{project.pk}/delete/", json.dumps({"delete_chats": True}),
                       content_type="application/json").status_code == 200
    assert not Conversation.objects.filter(pk=inside.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("projects", [1, 30])
def test_the_projects_list_costs_the_same_for_few_and_many(key_client, user, projects, django_assert_num_queries):
    for number in range(projects):
        conversation_create(owner=user, project=project_create(owner=user, name=f"p{number}"))
    key_client.get("/api/v1/projects/")
    # 1 the API key (with its user), 2 the count, 3 the page with each project's number of chats.
    with django_assert_num_queries(3):
        assert len(key_client.get("/api/v1/projects/").json()["results"]) == projects
