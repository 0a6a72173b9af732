"""The knowledge REST API and the `/v1` extension (`chatsite.knowledge_bases`), and ownership: a marker only in
another user's document is never found, on any route, through the retrieval step or through /v1."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from chatsite.task_worker import run_queued_tasks
from conversations import answering
from conversations.models import Conversation
from conversations.services import conversation_create
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)
from knowledge.models import Citation, Document
from knowledge.services import conversation_knowledge_set
from knowledge.tests.support import indexed_base
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db(transaction=True)

MARKER = "zanzibarquokka"


def test_bases_documents_progress_and_passages_through_the_api(api_client, user):
    created = api_client.post("/api/v1/knowledge-bases/", {"name": "Docs", "description": "team docs"}, format="json")
    assert created.status_code == 201, created.content
    base_id = created.json()["id"]
    upload = api_client.post(
        f"/api/v1/knowledge-bases/{base_id}/documents/",
        {"file": SimpleUploadedFile("notes.md", b"# Notes\n\nThe wifi password is pelican-42.")}, format="multipart",
    )
    assert upload.status_code == 201, upload.content
    document = upload.json()
    assert (document["status"], document["progress"], document["pages_total"]) == ("queued", 0, 1)

    run_queued_tasks()

    document = api_client.get(f"/api/v1/knowledge-documents/{document['id']}/").json()
    assert (document["status"], document["pages_done"], document["progress"]) == ("ready", 1, 100)
    passages = api_client.get(document["passages_url"]).json()["results"]
    assert passages[0]["text"].endswith("pelican-42.")
    found = api_client.get(f"/api/v1/knowledge-bases/{base_id}/search/", {"q": "wifi password"}).json()
    assert [p["id"] for p in found] == [passages[0]["id"]]
    assert api_client.get(f"/api/v1/knowledge-passages/{passages[0]['id']}/").json()["document_name"] == "notes.md"

    conversation = conversation_create(owner=user, title="")
    url = f"/api/v1/conversations/{conversation.pk}/knowledge-bases/"
    assert api_client.put(url, {"knowledge_bases": [base_id]}, format="json").json() == {"knowledge_bases": [base_id]}
    assert api_client.get(url).json() == {"knowledge_bases": [base_id]}
    assert api_client.put(url, {"knowledge_bases": []}, format="json").json() == {"knowledge_bases": []}

    assert api_client.delete(f"/api/v1/knowledge-documents/{document['id']}/").status_code == 204
    assert not Document.objects.exists()
    assert api_client.delete(f"/api/v1/knowledge-bases/{base_id}/").status_code == 204


def test_refusals_use_the_error_shape(api_client, settings):
    settings.KNOWLEDGE_BASES_PER_USER = 0
    assert_error_shape(api_client.post("/api/v1/knowledge-bases/", {"name": "x"}, format="json"), 400,
                       "knowledge_refused")
    settings.KNOWLEDGE_BASES_PER_USER = 5
    base_id = api_client.post("/api/v1/knowledge-bases/", {"name": "x"}, format="json").json()["id"]
    refused = api_client.post(f"/api/v1/knowledge-bases/{base_id}/documents/",
                              {"file": SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20)},
                              format="multipart")
    assert_error_shape(refused, 400, "attachment_refused")


def test_the_knowledge_routes_are_in_the_openapi_schema(api_client):
    paths = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    for path in ("/api/v1/knowledge-bases/", "/api/v1/knowledge-bases/{base_id}/documents/",
                 "/api/v1/knowledge-documents/{document_id}/", "/api/v1/knowledge-documents/{document_id}/passages/",
                 "/api/v1/knowledge-passages/{passage_id}/", "/api/v1/knowledge-bases/{base_id}/search/",
                 "/api/v1/conversations/{conversation_id}/knowledge-bases/"):
        assert path in paths, path


def test_v1_chat_completions_answers_from_a_knowledge_base(client, fake_upstream, user):  # noqa: F811
    base = indexed_base(user, {"facts.md": b"The meeting room on floor three is called Orca."})
    completion = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "What is the meeting room on floor three called?"}],
        extra_body={"chatsite": {"knowledge_bases": [base.pk]}},
    )
    assert completion.choices[0].message.content
    [request] = fake_upstream.chat_requests
    assert "Orca" in request.messages[0]["content"]
    conversation = Conversation.objects.get()
    assert list(conversation.knowledge_bases.all()) == [base]


def test_v1_responses_answers_from_a_knowledge_base(client, fake_upstream, user):  # noqa: F811
    base = indexed_base(user, {"facts.md": b"The meeting room on floor three is called Orca."})
    client.responses.create(model="fake-model", input="meeting room floor three?",
                            extra_body={"chatsite": {"knowledge_bases": [base.pk]}})
    [request] = fake_upstream.chat_requests
    assert "Orca" in request.messages[0]["content"]


def test_another_users_marker_is_never_found(client, fake_upstream, user, other_user):  # noqa: F811
    """Bob's document holds the marker; Alice searches for it every way she can and never finds it."""
    bob_base = indexed_base(other_user, {"secret.md": f"The vault word is {MARKER}.".encode()}, name="Bob's")
    bob_document = Document.objects.get(base=bob_base)
    bob_passage = bob_document.passages.get()
    alice_base = indexed_base(user, {"mine.md": b"Nothing secret here, only vault talk."}, name="Alice's")
    alice = APIClient()
    alice.force_login(user)
    session = Client()
    session.force_login(user)
    question = f"What is the vault word {MARKER}?"

    # The REST API and the pages: every list, search and id route.
    responses = [
        alice.get("/api/v1/knowledge-bases/"),
        alice.get(f"/api/v1/knowledge-bases/{alice_base.pk}/search/", {"q": question}),
        alice.get(f"/api/v1/knowledge-bases/{bob_base.pk}/search/", {"q": question}),
        alice.get(f"/api/v1/knowledge-bases/{bob_base.pk}/"),
        alice.get(f"/api/v1/knowledge-bases/{bob_base.pk}/documents/"),
        alice.get(f"/api/v1/knowledge-documents/{bob_document.pk}/"),
        alice.get(f"/api/v1/knowledge-documents/{bob_document.pk}/passages/"),
        alice.get(f"/api/v1/knowledge-passages/{bob_passage.pk}/"),
        session.get("/knowledge/"),
        session.get(f"/knowledge/{bob_base.pk}/"),
        session.get(f"/knowledge/passages/{bob_passage.pk}/"),
    ]
    for response in responses:
        assert MARKER.encode() not in response.content, response.request["PATH_INFO"]

    # Attaching Bob's base to her chat is refused; the retrieval step searches only her own bases.
    conversation = conversation_create(owner=user, title="")
    refused = alice.put(f"/api/v1/conversations/{conversation.pk}/knowledge-bases/",
                        {"knowledge_bases": [bob_base.pk]}, format="json")
    assert_error_shape(refused, 400, "knowledge_refused")
    bob_base.conversations.add(conversation)  # even attached behind the services' back, it is not searched
    conversation_knowledge_set(conversation=conversation, base_ids=[alice_base.pk])
    bob_base.conversations.add(conversation)
    run = answering.answer(conversation=conversation, user=user, content=question)
    system = fake_upstream.chat_requests[-1].messages[0]["content"]
    assert "only vault talk" in system  # her own passage was given...
    assert MARKER not in system  # ...and never Bob's (the marker is in her question, not in the passages)
    assert not Citation.objects.filter(turn=run.assistant_turn, text__contains=MARKER).exists()

    # /v1 with Bob's base id: refused before the model is asked, no conversation left behind.
    before = Conversation.objects.count()
    fake_upstream.requests.clear()
    for call in (
        lambda: client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": question}],
                                               extra_body={"chatsite": {"knowledge_bases": [bob_base.pk]}}),
        lambda: client.responses.create(model="fake-model", input=question,
                                        extra_body={"chatsite": {"knowledge_bases": [bob_base.pk]}}),
    ):
        with pytest.raises(Exception) as refused_call:  # noqa: PT011 (the openai client's BadRequestError)
            call()
        assert getattr(refused_call.value, "status_code", None) == 400
        assert MARKER not in str(refused_call.value)
    assert fake_upstream.chat_requests == []
    assert Conversation.objects.count() == before
