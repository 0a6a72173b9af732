"""Sharing with groups: a prompt in the `/` menu of its groups' members (read-only for them), an assistant they may
chat with (by slug, on /v1, listed for them; never changed by them), and an assistant's knowledge bases searched by
its chats, whoever chats with it; against the fake upstream over real HTTP."""

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey
from conversations import answering
from conversations.services import conversation_create
from knowledge.models import Citation
from knowledge.tests.support import indexed_base
from personal import services
from personal.models import Assistant, Prompt
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db(transaction=True)

HANDBOOK = {
    "handbook.md": b"# Project Heron\n\nThe launch code for project Heron is 7-ALPHA-93. Only leads may use it.",
}


def client_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def page_client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def physics(user, other_user) -> Group:
    """A group of alice (the `user`) and bob (the `other_user`)."""
    group = Group.objects.create(name="Physics")
    group.user_set.add(user, other_user)
    return group


@pytest.fixture
def carol(make_user):
    """In no group of alice's."""
    return make_user("carol")


@pytest.fixture
def outsiders(carol) -> Group:
    group = Group.objects.create(name="Outsiders")
    group.user_set.add(carol)
    return group


def commands(response) -> list[tuple[str, bool]]:
    assert response.status_code == 200, response.content
    return [(prompt["command"], prompt["mine"]) for prompt in response.json()["results"]]


def test_a_prompt_shared_with_a_group_is_in_its_members_menu_read_only(user, other_user, carol, physics):
    alice, bob, outsider = client_for(user), client_for(other_user), client_for(carol)
    created = alice.post("/api/v1/prompts/", {
        "command": "explain", "title": "Explain simply", "content": "Explain {{topic}} simply.",
        "groups": [physics.pk],
    }, format="json")
    assert created.status_code == 201, created.content
    assert (created.json()["groups"], created.json()["mine"]) == ([physics.pk], True)
    prompt_id = created.json()["id"]
    services.prompt_create(owner=other_user, command="bobs", title="Bob's own", content="Bob's text")

    assert commands(bob.get("/api/v1/prompts/")) == [("bobs", True), ("explain", False)]
    assert bob.get(f"/api/v1/prompts/{prompt_id}/").json()["content"] == "Explain {{topic}} simply."
    assert_error_shape(bob.patch(f"/api/v1/prompts/{prompt_id}/", {"title": "bob's now"}, format="json"), 404)
    assert_error_shape(bob.delete(f"/api/v1/prompts/{prompt_id}/"), 404)
    assert Prompt.objects.get(pk=prompt_id).title == "Explain simply"

    assert commands(outsider.get("/api/v1/prompts/")) == []
    assert_error_shape(outsider.get(f"/api/v1/prompts/{prompt_id}/"), 404)

    unshared = alice.patch(f"/api/v1/prompts/{prompt_id}/", {"groups": []}, format="json")
    assert unshared.status_code == 200 and unshared.json()["groups"] == []
    assert commands(bob.get("/api/v1/prompts/")) == [("bobs", True)]
    assert_error_shape(bob.get(f"/api/v1/prompts/{prompt_id}/"), 404)


def test_a_prompt_shared_with_two_of_a_members_groups_is_listed_once(user, other_user, physics):
    chess = Group.objects.create(name="Chess")
    chess.user_set.add(user, other_user)
    services.prompt_create(owner=user, command="explain", title="Explain", content="x", groups=[physics.pk, chess.pk])

    assert commands(client_for(other_user).get("/api/v1/prompts/")) == [("explain", False)]


def test_a_prompt_is_shared_only_with_the_owners_own_groups(user, physics, outsiders):
    alice = client_for(user)
    body = {"command": "explain", "title": "Explain", "content": "x"}
    for groups in ([outsiders.pk], [physics.pk, 999_999]):
        refused = assert_error_shape(alice.post("/api/v1/prompts/", {**body, "groups": groups}, format="json"), 400)
        assert "groups" in refused["fields"], refused
    assert not Prompt.objects.exists()

    prompt = services.prompt_create(owner=user, **body)
    refused = assert_error_shape(
        alice.patch(f"/api/v1/prompts/{prompt.pk}/", {"groups": [outsiders.pk]}, format="json"), 400
    )
    assert "not a member" in refused["fields"]["groups"][0]
    assert list(prompt.groups.all()) == []


def test_the_page_shares_a_prompt_and_shows_it_read_only_to_members(user, other_user, carol, physics, outsiders):
    alice = page_client_for(user)
    page = alice.get("/personal/").content.decode()
    assert re.search(rf'<input type="checkbox" name="groups" value="{physics.pk}"[^>]*id="prompt_groups_0"', page)
    assert f'value="{outsiders.pk}"' not in page  # not alice's group: not offered

    refused = alice.post("/personal/prompts/", {
        "command": "explain", "title": "Explain", "content": "Explain it.", "groups": [outsiders.pk],
    })
    assert refused.status_code == 400 and not Prompt.objects.exists()
    alice.post("/personal/prompts/", {
        "command": "explain", "title": "Explain", "content": "Explain it.", "groups": [physics.pk],
    })
    prompt = Prompt.objects.get()
    assert list(prompt.groups.all()) == [physics]
    assert "shared with Physics" in alice.get("/personal/").content.decode()

    bobs_page = page_client_for(other_user).get("/personal/").content.decode()
    assert "/explain" in bobs_page and "shared by alice" in bobs_page
    assert f"/personal/prompts/{prompt.pk}/" not in bobs_page  # no edit or delete form for him
    assert page_client_for(other_user).post(f"/personal/prompts/{prompt.pk}/delete/").status_code == 404
    assert "/explain" not in page_client_for(carol).get("/personal/").content.decode()

    # Saving the edit form keeps what its checkboxes say.
    alice.post(f"/personal/prompts/{prompt.pk}/", {"command": "explain", "title": "Explain!", "content": "x"})
    prompt.refresh_from_db()
    assert (prompt.title, list(prompt.groups.all())) == ("Explain!", [])


@pytest.fixture
def tutor(user) -> Assistant:
    return services.assistant_create(owner=user, name="Physics tutor", instructions="You tutor physics.")


def key_client_for(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.generate(user=user, name='tests')[1]}")
    return api


def test_an_assistant_shared_with_a_group_is_usable_and_listed_by_its_members_only(
        fake_upstream, user, other_user, carol, physics, tutor):
    alice = client_for(user)
    shared = alice.patch(f"/api/v1/assistants/{tutor.pk}/", {"groups": [physics.pk]}, format="json")
    assert shared.status_code == 200 and shared.json()["groups"] == [physics.pk]
    bob, outsider = client_for(other_user), client_for(carol)

    assert [a["slug"] for a in bob.get("/api/v1/assistants/available/").json()["results"]] == [tutor.slug]
    assert "Physics tutor" in page_client_for(other_user).get("/").content.decode()  # the sidebar
    assert tutor.model_id in [m["id"] for m in key_client_for(other_user).get("/v1/models").json()["data"]]
    started = bob.post(f"/api/v1/assistants/use/{tutor.slug}/conversations/")
    assert started.status_code == 201
    completion = key_client_for(other_user).post("/v1/chat/completions", {
        "model": tutor.model_id, "messages": [{"role": "user", "content": "Hello"}],
    }, format="json")
    assert completion.status_code == 200, completion.content
    assert fake_upstream.chat_requests[-1].messages[0]["content"].endswith("You tutor physics.")
    for method in ("get", "patch", "delete"):
        assert_error_shape(getattr(bob, method)(f"/api/v1/assistants/{tutor.pk}/", {"name": "bob's"}, format="json"),
                           404)
    assert Assistant.objects.get().name == "Physics tutor"

    assert outsider.get("/api/v1/assistants/available/").json()["results"] == []
    assert "Physics tutor" not in page_client_for(carol).get("/").content.decode()
    assert tutor.model_id not in [m["id"] for m in key_client_for(carol).get("/v1/models").json()["data"]]
    assert_error_shape(outsider.get(f"/api/v1/assistants/use/{tutor.slug}/"), 404)
    assert_error_shape(outsider.post(f"/api/v1/assistants/use/{tutor.slug}/conversations/"), 404)
    assert page_client_for(carol).get(f"/?assistant={tutor.slug}").status_code == 404


def test_an_assistant_takes_only_the_owners_groups_and_knowledge_bases(user, other_user, outsiders, tutor):
    alice = client_for(user)
    bobs_base = indexed_base(other_user, HANDBOOK)
    refused = assert_error_shape(
        alice.patch(f"/api/v1/assistants/{tutor.pk}/", {"groups": [outsiders.pk]}, format="json"), 400
    )
    assert "groups" in refused["fields"]
    refused = assert_error_shape(
        alice.post("/api/v1/assistants/", {"name": "Spy", "instructions": "x", "knowledge_bases": [bobs_base.pk]},
                   format="json"), 400,
    )
    assert "No such knowledge base of yours" in refused["fields"]["knowledge_bases"][0]
    assert list(Assistant.objects.values_list("name", flat=True)) == ["Physics tutor"]
    assert list(tutor.groups.all()) == [] and list(tutor.knowledge_bases.all()) == []


def quote_the_passage(fake_upstream) -> None:
    """The fake model answers with the first passage it was given, citing its number."""

    def answer(recorded):
        found = re.search(r'<passage number="(\d+)"[^>]*>\n(.*?)\n</passage>', recorded.messages[0]["content"], re.S)
        fake_upstream.behaviour.reply = f"{found.group(2)} [{found.group(1)}]" if found else "The documents do not say."

    fake_upstream.on_request = answer


def test_a_chat_with_a_shared_assistant_searches_its_owners_bases(fake_upstream, user, other_user, carol, physics,
                                                                   tutor):
    """Bob, in a group the assistant is shared with, gets passages of alice's base through it (alice chose to give
    it to the assistant), with the citation; his chats without it, and carol's, do not."""
    base = indexed_base(user, HANDBOOK)
    added = client_for(user).patch(f"/api/v1/assistants/{tutor.pk}/", {
        "groups": [physics.pk], "knowledge_bases": [base.pk],
    }, format="json")
    assert added.status_code == 200 and added.json()["knowledge_bases"] == [base.pk]
    quote_the_passage(fake_upstream)

    with_tutor = conversation_create(owner=other_user, **tutor.chat_fields())
    run = answering.answer(conversation=with_tutor, user=other_user, content="What is the launch code for Heron?")

    assert "7-ALPHA-93" in fake_upstream.chat_requests[-1].messages[0]["content"]
    assert "7-ALPHA-93" in run.assistant_turn.content
    [citation] = Citation.objects.filter(turn=run.assistant_turn)
    assert (citation.document_name, citation.passage.document.base_id) == ("handbook.md", base.pk)
    # Bob sees the cited chip, but not a link into alice's document (its page is hers: a 404 to him).
    bobs_page = page_client_for(other_user).get(with_tutor.get_absolute_url()).content.decode()
    assert re.search(r'<span class="citation-chip" title="[^"]*7-ALPHA-93[^"]*">handbook.md</span>', bobs_page)
    assert f"/knowledge/passages/{citation.passage_id}/" not in bobs_page
    assert page_client_for(other_user).get(f"/knowledge/passages/{citation.passage_id}/").status_code == 404

    without = conversation_create(owner=other_user, title="")
    answering.answer(conversation=without, user=other_user, content="What is the launch code for Heron?")
    assert "7-ALPHA-93" not in fake_upstream.chat_requests[-1].messages[0]["content"]

    # Taken off the assistant: its chats no longer search the base.
    services.assistant_update(assistant=tutor, knowledge_bases=[])
    answering.answer(conversation=with_tutor, user=other_user, content="What is the launch code for Heron?")
    assert "7-ALPHA-93" not in fake_upstream.chat_requests[-1].messages[0]["content"]


def test_the_page_gives_an_assistant_groups_and_knowledge_bases(fake_upstream, user, other_user, physics, tutor):
    base = indexed_base(user, HANDBOOK)
    indexed_base(other_user, HANDBOOK, name="Bob's secrets")
    alice = page_client_for(user)
    page = alice.get("/personal/").content.decode()
    assert f'id="assistant_{tutor.pk}_knowledge_bases_0"' in page and "Bob&#x27;s secrets" not in page

    alice.post(f"/personal/assistants/{tutor.pk}/", {
        "name": "Physics tutor", "instructions": "You tutor physics.", "groups": [physics.pk],
        "knowledge_bases": [base.pk],
    })
    tutor.refresh_from_db()
    assert (list(tutor.groups.all()), list(tutor.knowledge_bases.all())) == ([physics], [base])
    assert "shared with Physics" in alice.get("/personal/").content.decode()
