"""Share links: a snapshot behind an unguessable token, public and never indexed, revocable, expiring, owner-only
management, and nothing of the owner on the shared page beyond the name they chose; the files sent in the chat
only when the owner includes them, and only the snapshot's."""

import base64
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from conversations.attachments import attachment_create, bind
from conversations.models import Attachment, Conversation, ShareLink
from conversations.sharing import share_link_create, share_link_revoke
from conversations.tests.factories import add_turns

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(user):
    conversation = Conversation.objects.create(owner=user, title="Trip plan", system_prompt="secret system prompt")
    add_turns(conversation, ("user", "Plan a trip"), ("assistant", "**Day 1**: Seoul"))
    return conversation


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def attach(conversation, name: str, data: bytes, *, content: str = "Look at these") -> Attachment:
    """A user turn sent with one file, and its answer."""
    attachment = attachment_create(owner=conversation.owner, upload=SimpleUploadedFile(name, data))
    bind([attachment], add_turns(conversation, ("user", content)))
    add_turns(conversation, ("assistant", "I read it."))
    return attachment


@pytest.fixture
def chat_with_files(chat):
    """The trip chat with an image and a text file sent in it: {"chat", "image", "notes"}."""
    image = attach(chat, "map.png", PNG)
    notes = attach(chat, "notes.txt", b"pack an umbrella", content="And my notes")
    chat.refresh_from_db()
    return {"chat": chat, "image": image, "notes": notes}


def create(client, conversation, **body):
    return client.post(f"/c/{conversation.pk}/share/", data=json.dumps(body), content_type="application/json")


def test_the_owner_makes_a_link_anyone_can_read_without_logging_in(authenticated_client, chat, user):
    response = create(authenticated_client, chat, display_name="  Kim  ")
    assert response.status_code == 201
    url = response.json()["url"]
    link = ShareLink.objects.get()
    assert url == f"http://testserver/s/{link.token}/"
    assert len(link.token) >= 32  # secrets.token_urlsafe(24): 192 random bits
    assert (link.display_name, link.expires_at, response.json()["messages"]) == ("Kim", None, 2)

    page = Client().get(f"/s/{link.token}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert page["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert "Plan a trip" in html and "<strong>Day 1</strong>: Seoul" in html
    assert "Shared by Kim" in html and "snapshot" in html
    for private in (user.username, user.email, "secret system prompt", str(chat.pk)):
        assert private not in html


def test_a_link_is_a_snapshot(authenticated_client, chat):
    link = share_link_create(conversation=chat)
    add_turns(Conversation.objects.get(pk=chat.pk), ("user", "A later question"), ("assistant", "A later answer"))
    html = Client().get(link.get_absolute_url()).content.decode()
    assert "Plan a trip" in html and "A later question" not in html


def test_anonymous_by_default_and_tokens_differ(chat):
    first, second = share_link_create(conversation=chat), share_link_create(conversation=chat)
    assert first.token != second.token
    assert "Shared by" not in Client().get(first.get_absolute_url()).content.decode()


def test_revoked_expired_and_unknown_links_are_404(chat):
    revoked = share_link_revoke(link=share_link_create(conversation=chat))
    expired = share_link_create(conversation=chat, expires_in_days=1)
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    live = share_link_create(conversation=chat, expires_in_days=7)
    anonymous = Client()
    assert anonymous.get(revoked.get_absolute_url()).status_code == 404
    assert anonymous.get(expired.get_absolute_url()).status_code == 404
    assert anonymous.get("/s/not-a-real-token/").status_code == 404
    assert anonymous.get(live.get_absolute_url()).status_code == 200
    assert timedelta(days=6, hours=23) < live.expires_at - timezone.now() <= timedelta(days=7)


@pytest.mark.parametrize("body", [{"expires_in_days": 3}, {"expires_in_days": True}, {"expires_in_days": "7"},
                                  {"display_name": "x" * 101}, {"display_name": 5}, {"include_files": "yes"},
                                  {"include_files": 1}, {"include_files": None}])
def test_bad_share_requests_are_refused(authenticated_client, chat, body):
    assert create(authenticated_client, chat, **body).status_code == 400
    assert not ShareLink.objects.exists()


def test_the_owner_lists_and_revokes_links_with_csrf(chat, user, other_user):
    link = share_link_create(conversation=chat, display_name="Kim")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    listing = strict.get("/shares/")
    html = listing.content.decode()
    assert f"/s/{link.token}/" in html and "Trip plan" in html and "Until revoked" in html
    assert strict.post(f"/shares/{link.pk}/revoke/").status_code == 403  # no CSRF token
    token = strict.cookies["csrftoken"].value
    response = strict.post(f"/shares/{link.pk}/revoke/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/shares/"
    link.refresh_from_db()
    assert link.revoked_at is not None
    html = strict.get("/shares/").content.decode()
    assert f"/s/{link.token}/" not in html and "Revoked" in html

    bob = Client()
    bob.force_login(other_user)
    assert f"/s/{link.token}/" not in bob.get("/shares/").content.decode()


def test_sharing_needs_csrf_on_the_session(chat, user):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert create(strict, chat).status_code == 403
    assert not ShareLink.objects.exists()


def test_only_messages_and_answers_are_shared(chat):
    add_turns(chat, ("tool", "a tool's private output"))
    chat.refresh_from_db()
    link = share_link_create(conversation=chat)
    assert [message["role"] for message in link.messages] == ["user", "assistant"]


def test_reviewers_see_that_a_chat_was_shared(admin_client, chat):
    share_link_create(conversation=chat, display_name="Kim")
    listing = admin_client.get("/admin/conversations/conversation/?shared=yes").content.decode()
    assert "Trip plan" in listing
    assert "Trip plan" not in admin_client.get("/admin/conversations/conversation/?shared=no").content.decode()
    detail = admin_client.get(f"/admin/conversations/conversation/{chat.pk}/change/").content.decode()
    assert "Kim" in detail and "share link" in detail.lower()


# --- Files --------------------------------------------------------------------------------------------------------


def file_url(link: ShareLink, attachment_id) -> str:
    return f"/s/{link.token}/files/{attachment_id}/"


def page_body(response) -> str:
    """A page without what differs per request (the CSRF token, the language form's return address)."""
    return re.sub(r'name="(csrfmiddlewaretoken|next)" value="[^"]*"', "", response.content.decode())


def test_files_are_shared_when_the_owner_includes_them(authenticated_client, chat_with_files, user):
    image, notes = chat_with_files["image"], chat_with_files["notes"]
    response = create(authenticated_client, chat_with_files["chat"], include_files=True)
    assert response.status_code == 201
    assert (response.json()["include_files"], response.json()["files"]) == (True, 2)
    link = ShareLink.objects.get()
    assert link.include_files and set(link.files.all()) == {image, notes}
    user_messages = [m for m in link.messages if m["role"] == "user"]
    assert user_messages[1]["attachments"] == [
        {"id": str(image.pk), "name": "map.png", "kind": "image", "content_type": "image/png", "size": len(PNG)}]
    assert "attachments" not in user_messages[0]  # the first question had no file
    stored = json.dumps(link.messages)
    assert image.file.name not in stored and "attachments/" not in stored and user.username not in stored

    anonymous = Client()
    html = anonymous.get(link.get_absolute_url()).content.decode()
    assert f'<img class="attachment-thumb" src="{file_url(link, image.pk)}" alt="map.png"' in html
    assert f'href="{file_url(link, notes.pk)}" download="notes.txt"' in html
    assert "/api/v1/attachments/" not in html and image.file.name not in html

    shown = anonymous.get(file_url(link, image.pk))
    assert shown.status_code == 200 and b"".join(shown.streaming_content) == PNG
    assert shown["Content-Type"] == "image/png" and "attachment" not in shown.get("Content-Disposition", "")
    download = anonymous.get(file_url(link, notes.pk))
    assert b"".join(download.streaming_content) == b"pack an umbrella"
    assert download["Content-Type"] == "text/plain; charset=utf-8"
    assert download["Content-Disposition"].startswith("attachment;") and "notes.txt" in download["Content-Disposition"]
    for response in (shown, download):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
        assert "default-src 'none'" in response["Content-Security-Policy"]
        assert response["X-Robots-Tag"] == "noindex, nofollow"
        assert response["Referrer-Policy"] == "no-referrer"
        assert response["Cache-Control"] == "no-store"  # revoking stops it at once
    assert anonymous.post(file_url(link, image.pk)).status_code == 405


def test_without_include_files_the_page_says_nothing_of_files_and_none_open(authenticated_client, chat_with_files):
    assert create(authenticated_client, chat_with_files["chat"]).json()["files"] == 0
    link = ShareLink.objects.get()
    assert not link.include_files and not link.files.exists()
    assert all("attachments" not in message for message in link.messages)
    html = Client().get(link.get_absolute_url()).content.decode()
    assert "And my notes" in html
    for absent in ("map.png", "notes.txt", "attachment", "/files/", "no longer available"):
        assert absent not in html
    for attachment in (chat_with_files["image"], chat_with_files["notes"]):
        assert Client().get(file_url(link, attachment.pk)).status_code == 404
        assert authenticated_client.get(file_url(link, attachment.pk)).status_code == 404  # the owner too


def test_the_file_route_opens_only_files_of_the_snapshot_of_a_live_link(chat_with_files, other_user):
    chat, image = chat_with_files["chat"], chat_with_files["image"]
    link = share_link_create(conversation=chat, include_files=True)
    later = attach(Conversation.objects.get(pk=chat.pk), "later.txt", b"sent after the link was made")
    unsent = attachment_create(owner=chat.owner, upload=SimpleUploadedFile("draft.txt", b"never sent"))
    bob_chat = Conversation.objects.create(owner=other_user, title="bob's")
    bob_file = attach(bob_chat, "bob.txt", b"bob's file")
    bob_link = share_link_create(conversation=bob_chat, include_files=True)
    anonymous = Client()
    unknown_page = anonymous.get("/s/not-a-real-token/")
    assert unknown_page.status_code == 404

    assert anonymous.get(file_url(link, image.pk)).status_code == 200
    assert anonymous.get(file_url(bob_link, bob_file.pk)).status_code == 200
    refused = [
        file_url(link, later.pk),  # a file of a turn after the snapshot
        file_url(link, unsent.pk),  # the owner's, never sent
        file_url(link, bob_file.pk),  # another user's file, through this link
        file_url(bob_link, image.pk),  # this file, through another user's link
        file_url(link, uuid.uuid4()),
        f"/s/not-a-real-token/files/{image.pk}/",
    ]
    for url in refused:
        response = anonymous.get(url)
        assert response.status_code == 404, url
        assert page_body(response) == page_body(unknown_page), url  # the same page as an unknown link
    assert anonymous.get(f"/s/{link.token}/files/not-a-uuid/").status_code == 404


def test_revoked_and_expired_links_open_no_file(chat_with_files):
    chat, image = chat_with_files["chat"], chat_with_files["image"]
    revoked = share_link_revoke(link=share_link_create(conversation=chat, include_files=True))
    expired = share_link_create(conversation=chat, include_files=True, expires_in_days=1)
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    live = share_link_create(conversation=chat, include_files=True, expires_in_days=1)
    anonymous = Client()
    assert anonymous.get(file_url(revoked, image.pk)).status_code == 404
    assert anonymous.get(file_url(expired, image.pk)).status_code == 404
    assert anonymous.get(file_url(live, image.pk)).status_code == 200


def test_the_file_check_is_one_query(chat_with_files, django_assert_num_queries):
    link = share_link_create(conversation=chat_with_files["chat"], include_files=True)
    anonymous = Client()
    # The attachment, joined to a live link that includes files and has it in its snapshot: nothing else.
    with django_assert_num_queries(1):
        assert anonymous.get(file_url(link, chat_with_files["image"].pk)).status_code == 200
    with django_assert_num_queries(1):
        assert anonymous.get(file_url(link, uuid.uuid4())).status_code == 404


def test_a_file_that_is_gone_is_said_so_on_the_page(chat_with_files):
    image, notes = chat_with_files["image"], chat_with_files["notes"]
    link = share_link_create(conversation=chat_with_files["chat"], include_files=True)
    Path(notes.file.path).unlink()  # its bytes lost from the storage
    image.delete()  # its row deleted (a reviewer, an operator)
    html = Client().get(link.get_absolute_url()).content.decode()
    assert html.count("file no longer available") == 2
    assert "map.png" in html and "notes.txt" in html
    assert file_url(link, image.pk) not in html and file_url(link, notes.pk) not in html
    assert Client().get(file_url(link, notes.pk)).status_code == 404
    assert Client().get(file_url(link, image.pk)).status_code == 404


def test_deleting_the_chat_takes_its_links_and_files_with_it(authenticated_client, chat_with_files):
    link = share_link_create(conversation=chat_with_files["chat"], include_files=True)
    assert authenticated_client.delete(f"/api/v1/conversations/{chat_with_files['chat'].pk}/").status_code == 204
    assert not ShareLink.objects.exists()
    assert Client().get(file_url(link, chat_with_files["image"].pk)).status_code == 404


def test_the_owners_list_says_whether_a_link_includes_files(authenticated_client, chat_with_files):
    with_files = share_link_create(conversation=chat_with_files["chat"], include_files=True)
    without_files = share_link_create(conversation=chat_with_files["chat"])
    html = authenticated_client.get("/shares/").content.decode()
    rows = re.findall(r"<tr class=.*?</tr>", html, re.S)
    assert [f"/s/{link.token}/" in row for row, link in zip(rows, (without_files, with_files), strict=True)] == [
        True, True]  # newest first
    assert "Not included" in rows[0] and "Included (2 files)" in rows[1]


def test_the_share_dialog_gets_the_chats_newest_live_link(authenticated_client, chat, make_user):
    current = f"/c/{chat.pk}/share/current/"
    assert authenticated_client.get(current).json() == {"link": None}
    older = share_link_create(conversation=chat)
    newer = share_link_create(conversation=chat)
    link = authenticated_client.get(current).json()["link"]
    assert link["url"] == f"http://testserver/s/{newer.token}/" and link["created"]
    share_link_revoke(link=newer)  # a revoked link is never offered: the one before it is
    assert authenticated_client.get(current).json()["link"]["url"] == f"http://testserver/s/{older.token}/"
    stranger = Client()
    stranger.force_login(make_user("stranger"))
    assert stranger.get(current).status_code == 404  # ownership is in the query
