"""The page views over a user's own objects (chatsite.owned_views): each delete view, as its owner sees it (the row
gone through its service, the message, where the browser goes next), and the knowledge base page and upload form."""

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import Document, KnowledgeBase
from knowledge.services import document_upload, knowledge_base_create
from personal.models import Assistant, Memory, Prompt
from personal.services import assistant_create, memory_create, prompt_create

pytestmark = pytest.mark.django_db


def _base(user):
    return knowledge_base_create(owner=user, name="Handbook")


def _document(user):
    return document_upload(base=_base(user), upload=SimpleUploadedFile("notes.txt", b"Tea at four."))


# (model, make one for the user, its delete URL, where the browser goes after, the message)
DELETES = [
    pytest.param(KnowledgeBase, _base, "/knowledge/{pk}/delete/", lambda obj: "/knowledge/",
                 "Knowledge base deleted.", id="knowledge-base"),
    pytest.param(Document, _document, "/knowledge/documents/{pk}/delete/", lambda obj: f"/knowledge/{obj.base_id}/",
                 "Document deleted.", id="document"),
    pytest.param(Memory, lambda user: memory_create(owner=user, content="Likes tea."),
                 "/personal/memories/{pk}/delete/", lambda obj: "/personal/", "Memory deleted.", id="memory"),
    pytest.param(Prompt, lambda user: prompt_create(owner=user, command="tea", title="Tea", content="Make tea."),
                 "/personal/prompts/{pk}/delete/", lambda obj: "/personal/", "Prompt deleted.", id="prompt"),
    pytest.param(Assistant, lambda user: assistant_create(owner=user, name="Tea tutor", instructions="Teach tea."),
                 "/personal/assistants/{pk}/delete/", lambda obj: "/personal/#assistants",
                 "Assistant deleted. Its chats stay.", id="assistant"),
]


@pytest.mark.parametrize(("model", "make", "url", "next_url", "message"), DELETES)
def test_the_owner_deletes_with_a_post_and_is_told_so(authenticated_client, user, model, make, url, next_url, message):
    obj = make(user)
    assert authenticated_client.get(url.format(pk=obj.pk)).status_code == 405  # a link never deletes
    response = authenticated_client.post(url.format(pk=obj.pk))
    assert response.status_code == 302 and response["Location"] == next_url(obj)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [message]
    assert not model.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize(("model", "make", "url", "next_url", "message"), DELETES)
def test_another_users_object_is_a_404_and_stays(authenticated_client, other_user, model, make, url, next_url,
                                                   message):
    theirs = make(other_user)
    assert authenticated_client.post(url.format(pk=theirs.pk)).status_code == 404
    assert model.objects.filter(pk=theirs.pk).exists()


def test_the_base_page_lists_its_documents_and_its_form_uploads_into_it(authenticated_client, user, other_user):
    document = _document(user)
    page = authenticated_client.get(f"/knowledge/{document.base_id}/")
    assert page.status_code == 200 and page.context["base"] == document.base
    assert list(page.context["documents"]) == [document]
    upload = SimpleUploadedFile("more.txt", b"Milk first.")
    response = authenticated_client.post(f"/knowledge/{document.base_id}/documents/", {"file": upload})
    assert response.status_code == 302 and response["Location"] == f"/knowledge/{document.base_id}/"
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Uploaded: it is being indexed."]
    assert document.base.documents.count() == 2
    theirs = _base(other_user)
    assert authenticated_client.get(f"/knowledge/{theirs.pk}/").status_code == 404
    assert authenticated_client.post(f"/knowledge/{theirs.pk}/documents/", {"file": upload}).status_code == 404
    assert not theirs.documents.exists()
