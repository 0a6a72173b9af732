"""The prompt library: saved prompts with {{blanks}}, private to their owner (API and page)."""

import pytest
from django.db import IntegrityError

from personal import services
from personal.models import Prompt
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db


def test_blanks_are_listed_once_in_order():
    prompt = Prompt(content="Translate {{text}} into {{ language }}, then {{text}} again. {{ 3x }} is not one.")
    assert prompt.variables == ["text", "language"]


def test_a_command_is_unique_per_user_only(user, other_user):
    services.prompt_create(owner=user, command="Summarize", title="Summary", content="Summarize {{text}}")
    with pytest.raises(services.PromptRefused):
        services.prompt_create(owner=user, command="summarize", title="Again", content="x")
    services.prompt_create(owner=other_user, command="summarize", title="Bob's", content="y")
    assert Prompt.objects.filter(command="summarize").count() == 2


def test_the_database_refuses_a_duplicate_command(user):
    Prompt.objects.create(owner=user, command="a", title="A", content="x")
    with pytest.raises(IntegrityError):
        Prompt.objects.create(owner=user, command="a", title="B", content="y")


def test_prompts_through_the_api(api_client, other_user):
    services.prompt_create(owner=other_user, command="bob", title="Bob's", content="Bob's prompt")
    created = api_client.post("/api/v1/prompts/", {"command": "tr", "title": "Translate",
                                                   "content": "Translate {{text}} into {{language}}"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["variables"] == ["text", "language"]
    prompt_id = created.json()["id"]
    assert [p["command"] for p in api_client.get("/api/v1/prompts/").json()["results"]] == ["tr"]

    changed = api_client.patch(f"/api/v1/prompts/{prompt_id}/", {"title": "Translation"}, format="json")
    assert changed.json()["title"] == "Translation"
    assert_error_shape(api_client.post("/api/v1/prompts/", {"command": "tr", "title": "x", "content": "y"},
                                       format="json"), 400)
    assert_error_shape(api_client.post("/api/v1/prompts/", {"command": "no spaces", "title": "x", "content": "y"},
                                       format="json"), 400)
    assert api_client.delete(f"/api/v1/prompts/{prompt_id}/").status_code == 204
    assert list(Prompt.objects.values_list("command", flat=True)) == ["bob"]


def test_another_users_prompt_is_404(api_client, authenticated_client, other_user):
    theirs = services.prompt_create(owner=other_user, command="bob", title="Bob's", content="Bob's prompt")
    for method in ("get", "patch", "delete"):
        response = getattr(api_client, method)(f"/api/v1/prompts/{theirs.pk}/", {"title": "mine"}, format="json")
        assert_error_shape(response, 404)
    edit = {"command": "mine", "title": "mine", "content": "mine"}
    assert authenticated_client.post(f"/personal/prompts/{theirs.pk}/", edit).status_code == 404
    assert authenticated_client.post(f"/personal/prompts/{theirs.pk}/delete/").status_code == 404
    assert Prompt.objects.get().title == "Bob's"


def test_prompts_on_the_page(authenticated_client, user):
    response = authenticated_client.post("/personal/prompts/", {"command": "fix", "title": "Fix grammar",
                                                                "content": "Fix the grammar of {{text}}"})
    assert response.status_code == 302
    prompt = Prompt.objects.get(owner=user)
    assert "/fix" in authenticated_client.get("/personal/").content.decode()
    authenticated_client.post(f"/personal/prompts/{prompt.pk}/", {"command": "fix", "title": "Grammar",
                                                                  "content": "Fix {{text}}"})
    prompt.refresh_from_db()
    assert (prompt.title, prompt.content) == ("Grammar", "Fix {{text}}")
    duplicate = authenticated_client.post("/personal/prompts/", {"command": "fix", "title": "x", "content": "y"})
    assert duplicate.status_code == 400 and Prompt.objects.count() == 1
    authenticated_client.post(f"/personal/prompts/{prompt.pk}/delete/")
    assert not Prompt.objects.exists()
