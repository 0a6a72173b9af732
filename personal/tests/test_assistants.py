"""Assistants: the REST API (owner-only changes, use by link, featured for all), what the model receives in a chat
with one, and assistants as /v1 model ids (`assistant:<slug>`); against the fake upstream over real HTTP."""

import pytest
from rest_framework.test import APIClient

from conversations import answering
from conversations.models import Conversation
from conversations.services import conversation_create
from personal import services
from personal.models import Assistant
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db(transaction=True)

TUTOR: dict = {"name": "Physics tutor", "emoji": "🧲", "instructions": "You tutor physics with worked examples.",
         "starters": ["Explain inertia", "  ", "Quiz me on optics"], "tools": ["web_search"]}


def client_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def tutor(user) -> Assistant:
    return services.assistant_create(owner=user, **TUTOR)


def system_prompt_sent(fake_upstream) -> str:
    request = fake_upstream.chat_requests[-1]
    assert request.messages[0]["role"] == "system"
    return request.messages[0]["content"]


def test_an_assistant_is_made_listed_changed_and_deleted_by_its_owner(fake_upstream, api_client, user, settings):
    settings.CHAT_MODELS = ["fake-model", "other-model"]
    created = api_client.post("/api/v1/assistants/", {**TUTOR, "model": "other-model"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["slug"].startswith("physics-tutor-") and len(body["slug"]) == len("physics-tutor-") + 10
    assert body["starters"] == ["Explain inertia", "Quiz me on optics"]  # blanks dropped
    assert body["model_id"] == f"assistant:{body['slug']}"
    assert body["url"] == f"/?assistant={body['slug']}"
    assert (body["shared"], body["featured"]) == (False, False)
    assert [a["name"] for a in api_client.get("/api/v1/assistants/").json()["results"]] == ["Physics tutor"]

    changed = api_client.patch(f"/api/v1/assistants/{body['id']}/", {"name": "Tutor", "shared": True}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["name"], changed.json()["shared"], changed.json()["slug"]) == ("Tutor", True, body["slug"])
    assert api_client.delete(f"/api/v1/assistants/{body['id']}/").status_code == 204
    assert not Assistant.objects.exists()


@pytest.mark.parametrize("body", [
    {**TUTOR, "model": "no-such-model"},
    {**TUTOR, "tools": ["shell"]},
    {**TUTOR, "starters": ["a", "b", "c", "d", "e"]},
    {**TUTOR, "name": ""},
    {**TUTOR, "instructions": "x" * 8001},
    {**TUTOR, "shared": "yes"},
])
def test_bad_assistants_are_400_in_the_error_shape(fake_upstream, api_client, body):
    assert_error_shape(api_client.post("/api/v1/assistants/", body, format="json"), 400)
    assert not Assistant.objects.exists()


def test_a_chat_with_an_assistant_sends_its_instructions_in_the_documented_order(fake_upstream, user, tutor):
    services.personalization_update(user=user, about_me="I teach physics.", answer_style="Use SI units.")
    services.memory_create(owner=user, content="Has a cat named Miso.")
    conversation = conversation_create(owner=user, system_prompt="You are terse.", **tutor.chat_fields())

    answering.answer(conversation=conversation, user=user, content="Hello")

    assert system_prompt_sent(fake_upstream) == (
        "You are terse.\n\n"
        "You tutor physics with worked examples.\n\n"
        "What the user says about themselves:\nI teach physics.\n\n"
        "How the user wants you to answer:\nUse SI units.\n\n"
        "Facts the user asked you to remember (most recent first):\n- Has a cat named Miso."
    )


def test_the_assistants_instructions_stay_when_personalization_is_off(fake_upstream, user, tutor, settings):
    services.personalization_update(user=user, about_me="I teach physics.")
    conversation = conversation_create(owner=user, personal=False, **tutor.chat_fields())

    answering.answer(conversation=conversation, user=user, content="Hello")

    assert system_prompt_sent(fake_upstream) == (
        f"{settings.CHAT_DEFAULT_SYSTEM_PROMPT}\n\nYou tutor physics with worked examples."
    )


def test_memories_beyond_the_budget_are_left_out_with_a_notice_beside_the_instructions(
        fake_upstream, user, tutor, settings):
    settings.CHAT_MEMORY_PROMPT_CHARS = 60
    for number in range(5):
        services.memory_create(owner=user, content=f"Fact number {number} about the user.")
    conversation = conversation_create(owner=user, **tutor.chat_fields())

    answering.answer(conversation=conversation, user=user, content="Hello")

    sent = system_prompt_sent(fake_upstream)
    assert "You tutor physics with worked examples." in sent
    assert sent.endswith("(4 older memories left out to fit the prompt.)")


def test_a_chat_started_through_the_api_takes_the_assistants_model_and_tools(fake_upstream, api_client, user, tutor,
                                                                               settings):
    settings.CHAT_MODELS = ["fake-model", "other-model"]
    services.assistant_update(assistant=tutor, model="other-model")
    started = api_client.post(f"/api/v1/assistants/use/{tutor.slug}/conversations/")
    assert started.status_code == 201, started.content
    body = started.json()
    assert (body["assistant"], body["model"], body["web_search"]) == (tutor.slug, "other-model", True)

    answered = api_client.post(f"/api/v1/conversations/{body['id']}/turns/", {"content": "Hi"}, format="json")

    assert answered.status_code == 201, answered.content
    [request] = fake_upstream.chat_requests
    assert request.body["model"] == "other-model"
    assert "You tutor physics with worked examples." in request.messages[0]["content"]


def test_another_user_uses_a_shared_assistant_by_its_link_but_never_changes_or_reads_it(
        fake_upstream, tutor, other_user):
    bob = client_for(other_user)
    assert_error_shape(bob.get(f"/api/v1/assistants/use/{tutor.slug}/"), 404)  # not shared yet
    assert_error_shape(bob.post(f"/api/v1/assistants/use/{tutor.slug}/conversations/"), 404)

    services.assistant_update(assistant=tutor, shared=True)
    seen = bob.get(f"/api/v1/assistants/use/{tutor.slug}/")
    assert seen.status_code == 200
    assert "instructions" not in seen.json() and seen.json()["mine"] is False
    assert bob.get("/api/v1/assistants/available/").json()["results"] == []  # not listed before using it
    started = bob.post(f"/api/v1/assistants/use/{tutor.slug}/conversations/")
    assert started.status_code == 201
    bob.post(f"/api/v1/conversations/{started.json()['id']}/turns/", {"content": "Hi"}, format="json")
    assert "You tutor physics with worked examples." in system_prompt_sent(fake_upstream)
    assert [a["slug"] for a in bob.get("/api/v1/assistants/available/").json()["results"]] == [tutor.slug]

    for method in ("get", "patch", "delete"):
        assert_error_shape(getattr(bob, method)(f"/api/v1/assistants/{tutor.pk}/", {"name": "bob's"}, format="json"),
                           404)
    assert Assistant.objects.get().name == "Physics tutor"
    assert bob.get("/api/v1/assistants/").json()["results"] == []


def test_a_featured_assistant_is_offered_to_everyone(tutor, other_user):
    bob = client_for(other_user)
    assert bob.get("/api/v1/assistants/available/").json()["results"] == []
    Assistant.objects.filter(pk=tutor.pk).update(featured=True)
    [listed] = bob.get("/api/v1/assistants/available/").json()["results"]
    assert (listed["slug"], listed["featured"]) == (tutor.slug, True)
    assert bob.post(f"/api/v1/assistants/use/{tutor.slug}/conversations/").status_code == 201


def key_client_for(user) -> APIClient:
    from accounts.models import ApiKey

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.generate(user=user, name='tests')[1]}")
    return api


def test_v1_models_lists_the_assistants_each_user_may_use(fake_upstream, user, other_user, tutor):
    alice, bob = key_client_for(user), key_client_for(other_user)
    ids = [model["id"] for model in alice.get("/v1/models").json()["data"]]
    assert ids == ["fake-model", "text-embedding-3-small", tutor.model_id]
    assert [model["id"] for model in bob.get("/v1/models").json()["data"]] == ["fake-model", "text-embedding-3-small"]
    assert_error_shape(bob.get(f"/v1/models/{tutor.model_id}"), 404)
    detail = alice.get(f"/v1/models/{tutor.model_id}")
    assert detail.status_code == 200 and detail.json()["id"] == tutor.model_id


def test_an_assistant_is_a_model_id_on_chat_completions(fake_upstream, user, tutor):
    alice = key_client_for(user)
    response = alice.post("/v1/chat/completions", {
        "model": tutor.model_id, "messages": [{"role": "user", "content": "Hello"}],
    }, format="json")

    assert response.status_code == 200, response.content
    [request] = fake_upstream.chat_requests
    assert request.body["model"] == "fake-model"  # the assistant's model: the site default
    assert request.messages[0]["content"].endswith("You tutor physics with worked examples.")
    conversation = Conversation.objects.get(pk=response["X-Chatsite-Conversation"])
    assert (conversation.assistant_id, conversation.web_search) == (tutor.pk, True)


def test_an_assistant_is_a_model_id_on_responses(fake_upstream, user, tutor):
    alice = key_client_for(user)
    response = alice.post("/v1/responses", {"model": tutor.model_id, "input": "Hello"}, format="json")

    assert response.status_code == 200, response.content
    assert "You tutor physics with worked examples." in system_prompt_sent(fake_upstream)


def test_another_users_private_assistant_is_no_model_on_v1(fake_upstream, other_user, tutor):
    bob = key_client_for(other_user)
    response = bob.post("/v1/chat/completions", {
        "model": tutor.model_id, "messages": [{"role": "user", "content": "Hello"}],
    }, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert fake_upstream.chat_requests == []
    assert not Conversation.objects.filter(owner=other_user).exists()
