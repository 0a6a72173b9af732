"""Assistants on the pages: made, changed and deleted on the personalization page (owner only), a new chat with one by
its link (`/?assistant=<slug>`: its intro and starters; a private one is a 404 to others), the chat started with it,
the sidebar; and the answer actions of model continuity (continue, regenerate with another model)."""

import json

import pytest

from conversations import answering
from conversations.models import Conversation
from conversations.services import conversation_create
from personal import services
from personal.models import Assistant

pytestmark = pytest.mark.django_db


@pytest.fixture
def tutor(user) -> Assistant:
    return services.assistant_create(owner=user, name="Physics tutor", emoji="🧲",
                                     instructions="You tutor physics.", starters=["Explain inertia"])


def test_an_assistant_is_made_changed_and_deleted_on_the_page(authenticated_client, user, fake_upstream):
    response = authenticated_client.post("/personal/assistants/", {
        "emoji": "🧲", "name": "Physics tutor", "instructions": "You tutor physics.",
        "starters": "Explain inertia\n\nQuiz me", "tools": ["web_search"], "shared": "on", "model": "",
    })
    assert response.status_code == 302, response.content
    assistant = Assistant.objects.get(owner=user)
    assert (assistant.starters, assistant.tools, assistant.shared) == (["Explain inertia", "Quiz me"], ["web_search"],
                                                                       True)
    page = authenticated_client.get("/personal/").content.decode()
    assert "Physics tutor" in page and f"http://testserver/?assistant={assistant.slug}" in page

    authenticated_client.post(f"/personal/assistants/{assistant.pk}/", {"name": "Tutor", "instructions": "Be kind."})
    assistant.refresh_from_db()
    assert (assistant.name, assistant.instructions, assistant.shared) == ("Tutor", "Be kind.", False)
    authenticated_client.post(f"/personal/assistants/{assistant.pk}/delete/")
    assert not Assistant.objects.exists()


def test_too_many_starters_are_refused_on_the_page(authenticated_client, fake_upstream):
    response = authenticated_client.post("/personal/assistants/", {
        "name": "Tutor", "instructions": "x", "starters": "a\nb\nc\nd\ne",
    })
    assert response.status_code == 400
    assert not Assistant.objects.exists()


def test_its_link_opens_a_new_chat_with_its_intro_and_starters(authenticated_client, tutor, fake_upstream):
    page = authenticated_client.get(f"/?assistant={tutor.slug}").content.decode()
    assert 'data-assistant="' + tutor.slug + '"' in page
    assert "Explain inertia" in page and "How can I help you today?" not in page
    assert 'class="assistant-chip"' in page


def test_a_private_assistants_link_is_404_to_others_and_a_shared_ones_opens(client, other_user, tutor, fake_upstream):
    client.force_login(other_user)
    assert client.get(f"/?assistant={tutor.slug}").status_code == 404
    assert client.get("/?assistant=no-such-assistant").status_code == 404
    services.assistant_update(assistant=tutor, shared=True)
    assert client.get(f"/?assistant={tutor.slug}").status_code == 200


def test_the_page_starts_a_chat_with_the_assistant(authenticated_client, user, tutor, fake_upstream):
    response = authenticated_client.post("/c/start/", json.dumps({"assistant": tutor.slug}),
                                         content_type="application/json")
    assert response.status_code == 201
    conversation = Conversation.objects.get(owner=user)
    assert conversation.assistant_id == tutor.pk
    assert 'class="assistant-chip"' in authenticated_client.get(conversation.get_absolute_url()).content.decode()


def test_the_page_cannot_start_a_chat_with_someone_elses_private_assistant(client, other_user, tutor, fake_upstream):
    client.force_login(other_user)
    response = client.post("/c/start/", json.dumps({"assistant": tutor.slug}), content_type="application/json")
    assert response.status_code == 404
    assert not Conversation.objects.exists()


def test_the_sidebar_lists_own_and_featured_assistants_only(client, user, other_user, tutor, fake_upstream):
    bobs = services.assistant_create(owner=other_user, name="Bob's helper", instructions="x")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert "Physics tutor" in page and "Bob&#x27;s helper" not in page
    Assistant.objects.filter(pk=bobs.pk).update(featured=True)
    assert "Bob&#x27;s helper" in client.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_cut_answer_offers_continue_and_a_complete_one_does_not(authenticated_client, user, fake_upstream, settings):
    conversation = conversation_create(owner=user)
    settings.CHAT_MAX_ANSWER_TOKENS = 3
    cut = answering.answer(conversation=conversation, user=user, content="Count").assistant_turn
    settings.CHAT_MAX_ANSWER_TOKENS = 100
    page = authenticated_client.get(f"/c/{conversation.pk}/turns/{cut.pk}/").content.decode()
    assert 'data-action="continue-answer"' in page and "Cut at its length" in page
    complete = answering.answer(conversation=conversation, user=user, content="Again").assistant_turn
    assert 'data-action="continue-answer"' not in authenticated_client.get(
        f"/c/{conversation.pk}/turns/{complete.pk}/").content.decode()


def test_the_starter_prompts_help_is_in_the_pages_language(authenticated_client, settings):
    """Its text takes a number: it is translated per request, not once at import (when it was English for all)."""
    authenticated_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"
    html = authenticated_client.get("/personal/").content.decode()
    assert "이 어시스턴트와 새 채팅을 시작하면 표시됩니다" in html
    assert "One per line" not in html
