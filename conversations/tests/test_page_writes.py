"""The page's own JSON writes (start a chat as the page, feedback with a comment or cleared) and the history list
reaching down to the chat that is open."""

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from conversations.models import Conversation, Feedback
from conversations.tests.factories import add_turns

pytestmark = pytest.mark.django_db


def post_json(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_a_chat_started_from_the_page_is_labelled_web(authenticated_client, user):
    response = post_json(authenticated_client, "/c/start/", {"system_prompt": "Be brief.", "title": "ignored"})
    assert response.status_code == 201
    conversation = Conversation.objects.get(pk=response.json()["id"])
    assert (conversation.owner, conversation.source, conversation.system_prompt, conversation.title) == (
        user, "web", "Be brief.", "")
    assert response.json()["url"] == conversation.get_absolute_url()


@pytest.mark.parametrize("body", ["not json", "[]", json.dumps({"model": "x" * 101})])
def test_starting_refuses_bad_bodies(authenticated_client, body):
    response = authenticated_client.post("/c/start/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not Conversation.objects.exists()


def test_page_writes_need_the_csrf_token_and_a_login(user):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert post_json(strict, "/c/start/", {}).status_code == 403
    assert post_json(Client(), "/c/start/", {}).status_code == 302
    assert not Conversation.objects.exists()
    strict.get("/")  # sets the CSRF cookie
    token = strict.cookies["csrftoken"].value
    response = strict.post("/c/start/", data="{}", content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


@pytest.fixture
def answer(user):
    conversation = Conversation.objects.create(owner=user, title="Rated")
    return add_turns(conversation, ("user", "Q"), ("assistant", "A"))


def _stored_feedback(turn):
    return tuple(Conversation.objects.filter(pk=turn.conversation_id).values_list("feedback_up", "feedback_down")[0])


def test_feedback_with_a_comment_then_cleared(authenticated_client, answer):
    url = f"/c/{answer.conversation_id}/turns/{answer.pk}/feedback/"
    assert post_json(authenticated_client, url, {"rating": -1, "comment": "  Wrong year.  "}).json() == {
        "rating": -1, "comment": "Wrong year."}
    assert Feedback.objects.get(turn=answer).comment == "Wrong year."
    assert _stored_feedback(answer) == (0, 1)  # the review list's columns, kept on the chat
    assert post_json(authenticated_client, url, {"rating": 1}).json() == {"rating": 1, "comment": ""}
    assert _stored_feedback(answer) == (1, 0)
    assert post_json(authenticated_client, url, {"rating": 0}).json() == {"rating": 0, "comment": ""}
    assert not Feedback.objects.filter(turn=answer).exists()
    assert _stored_feedback(answer) == (0, 0)
    assert post_json(authenticated_client, url, {"rating": 0}).status_code == 200  # clearing twice is fine


@pytest.mark.parametrize("body", [{"rating": 2}, {"rating": True}, {"rating": "1"}, {}, {"rating": 1, "comment": 5},
                                  {"rating": 1, "comment": "x" * 2001}])
def test_feedback_refuses_bad_values(authenticated_client, answer, body):
    response = post_json(authenticated_client, f"/c/{answer.conversation_id}/turns/{answer.pk}/feedback/", body)
    assert response.status_code == 400
    assert not Feedback.objects.exists()


def test_feedback_is_for_answers_only(authenticated_client, answer):
    question = answer.parent
    response = post_json(authenticated_client, f"/c/{answer.conversation_id}/turns/{question.pk}/feedback/",
                         {"rating": 1})
    assert response.status_code == 404


def history_ids(html: str) -> list[str]:
    return re.findall(r'class="history-item" data-id="([0-9a-f-]+)"', html)


def test_the_open_chat_far_down_is_shown_on_its_own_above_one_page(authenticated_client, user):
    now = timezone.now()
    chats = Conversation.objects.bulk_create(
        [Conversation(owner=user, title=f"chat {i}", updated_at=now - timedelta(minutes=i)) for i in range(200)]
    )
    first_page = [str(c.pk) for c in chats[:50]]
    for far in (chats[50], chats[120], chats[199]):
        html = authenticated_client.get(far.get_absolute_url()).content.decode()
        assert history_ids(html) == [str(far.pk), *first_page]  # the open chat, then the first page: no more
        assert 'data-group="open"' in html.split(str(far.pk))[0]
        assert 'class="history-more' in html  # the rest loads on scroll, keyset paged
    # On the first page: in its place, no group of its own.
    near = authenticated_client.get(chats[3].get_absolute_url()).content.decode()
    assert history_ids(near) == first_page and 'data-group="open"' not in near
    # Loading more reaches it in its place (the page's script drops the copy above).
    cursor = re.search(r'data-cursor="([^"]+)"', near).group(1)
    more = authenticated_client.get("/c/history/", {"cursor": cursor}).content.decode()
    assert history_ids(more) == [str(c.pk) for c in chats[50:100]]


def test_the_empty_chat_offers_suggestions(authenticated_client):
    html = authenticated_client.get("/").content.decode()
    assert html.count('class="suggestion"') == 4
    assert "maxlength" not in html.split('id="composer-input"')[1].split(">")[0]  # a paste is never cut
