"""What a temporary chat promises: its owner's alone (never listed, never shared, never shown to reviewers), and
once its time is up it is gone everywhere, before housekeeping deletes it. Every route's 404 for an expired
temporary chat is checked by the ownership sweep (tests/security/test_ownership.py)."""

import io
import json
import secrets
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conversations.attachments import attachment_create, bind
from conversations.models import Conversation, ShareLink
from conversations.organizing import conversation_make_temporary
from conversations.services import feedback_set
from conversations.sharing import TemporaryChatNotShareable, share_link_create
from conversations.tests.admin_support import make_reviewer
from conversations.tests.factories import add_turns
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db


@pytest.fixture
def temporary(user):
    """A temporary chat with an exchange, feedback on its answer and a file sent in it: {"chat", "file"}."""
    conversation = conversation_make_temporary(conversation=Conversation.objects.create(owner=user, title="Secret"))
    answer = add_turns(conversation, ("user", "off the record"))
    file = attachment_create(owner=user, upload=SimpleUploadedFile("secret.txt", b"off the record notes"))
    bind([file], answer)
    answer = add_turns(conversation, ("assistant", "noted"))
    feedback_set(turn=answer, rating=1, comment="temporary feedback")
    return {"chat": conversation, "file": file}


def expire(conversation):
    Conversation.objects.filter(pk=conversation.pk).update(delete_after=timezone.now() - timedelta(seconds=1))


def link_made_before_the_rule(conversation, **fields) -> ShareLink:
    """A share link of a temporary chat, as one could be made before temporary chats were refused sharing."""
    return ShareLink.objects.create(token=secrets.token_urlsafe(24), conversation=conversation,
                                    messages=[{"role": "user", "content": "off the record"}], **fields)


def test_a_temporary_chat_cannot_be_shared(authenticated_client, temporary):
    chat = temporary["chat"]
    response = authenticated_client.post(f"/c/{chat.pk}/share/", data=json.dumps({}), content_type="application/json")
    assert_error_shape(response, 409, "temporary_chat")
    assert not ShareLink.objects.exists()
    with pytest.raises(TemporaryChatNotShareable):
        share_link_create(conversation=chat)


def test_the_page_of_a_temporary_chat_offers_no_share_button(authenticated_client, temporary, user):
    assert 'data-action="share"' not in authenticated_client.get(temporary["chat"].get_absolute_url()).content.decode()
    kept = Conversation.objects.create(owner=user, title="Kept")
    assert 'data-action="share"' in authenticated_client.get(kept.get_absolute_url()).content.decode()


def test_a_link_to_a_temporary_chat_never_opens_nor_is_listed(authenticated_client, temporary):
    link = link_made_before_the_rule(temporary["chat"], include_files=True)
    link.files.set([temporary["file"]])
    assert Client().get(link.get_absolute_url()).status_code == 404
    file_url = reverse("conversations:share-file", kwargs={"token": link.token, "attachment_id": temporary["file"].pk})
    assert Client().get(file_url).status_code == 404
    assert link.token not in authenticated_client.get("/shares/").content.decode()


def test_reviewers_do_not_see_temporary_chats(make_user, temporary, user):
    kept = Conversation.objects.create(owner=user, title="Kept chat")
    add_turns(kept, ("user", "on the record"))
    reviewer = Client()
    reviewer.force_login(make_reviewer(make_user))
    pages = {
        "admin:conversations_conversation_changelist": "Kept chat",
        "admin:conversations_turn_changelist": "on the record",
        "admin:conversations_feedback_changelist": None,
    }
    for name, shown in pages.items():
        html = reviewer.get(reverse(name)).content.decode()
        assert "off the record" not in html and "Secret" not in html and "temporary feedback" not in html, name
        if shown:
            assert shown in html, name
    change = reviewer.get(reverse("admin:conversations_conversation_change", args=[temporary["chat"].pk]))
    assert change.status_code == 302 and change["Location"] == reverse("admin:index")  # "does not exist"
    answer = temporary["chat"].current_turn
    assert reviewer.get(reverse("admin:conversations_turn_change", args=[answer.pk])).status_code == 302
    assert reviewer.get(reverse("admin_attachment", args=[temporary["file"].pk])).status_code == 404
    assert not temporary["chat"].reviews.exists()


def test_an_expired_temporary_chat_is_not_in_the_data_export(authenticated_client, temporary, user):
    kept = Conversation.objects.create(owner=user, title="Kept")
    add_turns(kept, ("user", "on the record"))
    expire(temporary["chat"])
    archive = zipfile.ZipFile(io.BytesIO(b"".join(authenticated_client.get("/account/export/"))))
    assert [chat["title"] for chat in json.loads(archive.read("chats.json"))["chats"]] == ["Kept"]
    assert not [name for name in archive.namelist() if name.startswith("attachments/")]
    assert b"off the record" not in b"".join(archive.read(name) for name in archive.namelist())


def test_an_expired_temporary_chat_takes_no_new_message(key_client, temporary, fake_upstream):
    expire(temporary["chat"])
    turns = temporary["chat"].turns.count()
    response = key_client.post(f"/api/v1/conversations/{temporary['chat'].pk}/turns/", {"content": "again"},
                               format="json")
    assert_error_shape(response, 404)
    response = key_client.post("/v1/chat/completions", {"model": "fake-model", "messages": [
        {"role": "user", "content": "again"}]}, format="json",
        HTTP_X_CHATSITE_CONVERSATION=str(temporary["chat"].pk))
    assert_error_shape(response, 404)
    assert temporary["chat"].turns.count() == turns
    assert fake_upstream.chat_requests == []
