"""Share links: a snapshot behind an unguessable token, public and never indexed, revocable, expiring, owner-only
management, and nothing of the owner on the shared page beyond the name they chose."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from conversations.models import Conversation, ShareLink
from conversations.sharing import share_link_create, share_link_revoke
from conversations.tests.factories import add_turns

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(user):
    conversation = Conversation.objects.create(owner=user, title="Trip plan", system_prompt="secret system prompt")
    add_turns(conversation, ("user", "Plan a trip"), ("assistant", "**Day 1**: Seoul"))
    return conversation


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
                                  {"display_name": "x" * 101}, {"display_name": 5}])
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
