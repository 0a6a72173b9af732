"""STAFF_CAN_READ_CHATS off: the admin lists chats' metadata only, and every page that shows a chat's text (the chat,
turns, feedback, a file sent in it, exports) refuses, with no review logged."""

import pytest
from django.test import Client
from django.urls import reverse

from conversations.models import Attachment, ReviewLog, Turn
from conversations.tests.admin_support import add_exchange, make_conversation, make_reviewer

pytestmark = pytest.mark.django_db

SECRET = "my-private-zebracorn"


@pytest.fixture
def chat(user):
    conversation = make_conversation(user, f"About {SECRET}")
    add_exchange(conversation, f"tell me about {SECRET}", f"{SECRET} is imaginary.", rating=-1, comment=SECRET)
    return conversation


@pytest.fixture
def reviewer_client(make_user):
    page = Client()
    page.force_login(make_reviewer(make_user))
    return page


@pytest.fixture
def superuser_client(make_user):
    page = Client()
    page.force_login(make_user("root", is_staff=True, is_superuser=True))
    return page


def test_by_default_staff_read_chats(reviewer_client, chat):
    assert reviewer_client.get(reverse("admin:conversations_conversation_change", args=[chat.pk])).status_code == 200
    assert SECRET in reviewer_client.get(reverse("admin:conversations_conversation_changelist")).content.decode()


def test_off_lists_metadata_only_and_refuses_every_page_with_chat_text(
    settings, reviewer_client, superuser_client, chat, user
):
    settings.STAFF_CAN_READ_CHATS = False
    listing = reviewer_client.get(reverse("admin:conversations_conversation_changelist"))
    html = listing.content.decode()
    assert listing.status_code == 200 and SECRET not in html and user.username in html
    assert reverse("admin:conversations_conversation_change", args=[chat.pk]) not in html
    searched = reviewer_client.get(reverse("admin:conversations_conversation_changelist"), {"q": "zebracorn"})
    assert str(chat.pk) in html and str(chat.pk) not in searched.content.decode()  # chat text is not searched

    turn = Turn.objects.filter(conversation=chat).first()
    attachment = Attachment.objects.create(owner=user, turn=turn, name="a.txt", content_type="text/plain", size=1,
                                           sha256="0" * 64, kind=Attachment.Kind.DOCUMENT)
    refused = [
        reverse("admin:conversations_conversation_change", args=[chat.pk]),
        reverse("admin:conversations_turn_changelist"),
        reverse("admin:conversations_turn_change", args=[turn.pk]),
        reverse("admin:conversations_feedback_changelist"),
        reverse("admin_attachment", args=[attachment.pk]),
    ]
    for url in refused:
        assert reviewer_client.get(url).status_code == 403, url
        assert superuser_client.get(url).status_code == 403, url
    assert not ReviewLog.objects.exists()
    export = superuser_client.post(reverse("admin:conversations_conversation_changelist"),
                                   {"action": "export_json", "_selected_action": [str(chat.pk)]})
    assert SECRET not in b"".join(getattr(export, "streaming_content", [export.content])).decode()
    # The aggregate usage page stays.
    assert reviewer_client.get(reverse("admin_usage")).status_code == 200
