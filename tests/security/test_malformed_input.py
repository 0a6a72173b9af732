"""Input that once made 500s: each is a clear 400 now, in the API's error shape (or the 400 page)."""

import pytest

from conversations import answering
from conversations.services import conversation_create
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db

DEEP = "[" * 1000 + "]" * 1000  # 2 KB: past Python's JSON recursion limit


@pytest.mark.parametrize("url", [
    "/api/v1/conversations/",
    "/api/v1/conversations/{id}/turns/",
    "/api/v1/conversations/{id}/regenerate/",
    "/api/v1/conversations/{id}/switch/",
    "/api/chat",
    "/v1/chat/completions",
])
def test_deeply_nested_json_is_a_400(key_client, user, url):
    conversation = conversation_create(owner=user)
    response = key_client.generic("POST", url.format(id=conversation.pk), DEEP, content_type="application/json")
    assert_error_shape(response, 400)


@pytest.mark.parametrize("value", ["²", "①", "٣", "0", "201", "-1"])
def test_page_size_must_be_ascii_digits_in_range(key_client, user, value):
    response = key_client.get("/api/v1/conversations/", {"page_size": value})
    assert_error_shape(response, 400)


@pytest.mark.django_db(transaction=True)
def test_the_history_fragment_refuses_nul_and_overflowing_cursors(authenticated_client, user, fake_upstream):
    answering.answer(conversation=conversation_create(owner=user), user=user, content="hello")
    assert authenticated_client.get("/c/history/", {"q": "a\x00b"}).status_code == 400
    overflowing = "9999-12-31T23:59:59-23:59|00000000-0000-0000-0000-000000000000"
    assert authenticated_client.get("/c/history/", {"cursor": overflowing}).status_code == 404
    assert authenticated_client.get("/c/history/", {"q": "hello"}).status_code == 200


def test_a_chunked_body_without_content_length_is_411_not_ignored(key_client, user):
    conversation = conversation_create(owner=user, title="before")
    response = key_client.generic("PATCH", f"/api/v1/conversations/{conversation.pk}/", b'{"title": "after"}',
                                  content_type="application/json", HTTP_TRANSFER_ENCODING="chunked",
                                  CONTENT_LENGTH="")
    assert_error_shape(response, 411)
    conversation.refresh_from_db()
    assert conversation.title == "before"


@pytest.mark.parametrize("query", [
    {"model": "a\x00b"}, {"status__exact": "\x00"}, {"role__exact": "x\x00"}, {"created_at__year": "99999999"},
    {"created_at__year": "2026", "created_at__month": "13"}, {"q": "x\x00"},
])
def test_admin_list_filters_the_database_cannot_take_are_a_400(admin_client, query):
    for url in ("/admin/conversations/conversation/", "/admin/conversations/turn/"):
        assert admin_client.get(url, query).status_code == 400
