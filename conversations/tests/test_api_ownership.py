"""Ownership sweep: every API URL that takes an id, called by another user with the owner's ids.

The list of URL patterns is read from the URLconf, so a new id route that is not covered here fails.
"""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient
from django.urls import get_resolver
from rest_framework.test import APIClient

from accounts.models import ApiKey
from conversations.attachments import attachment_create
from conversations.models import Attachment, Conversation, Feedback, Turn
from conversations.services import chat_turn, conversation_create
from conversations.tests.api_helpers import assert_error

pytestmark = pytest.mark.django_db(transaction=True)

OWNERS_TURN = object()  # in a body: the owner's turn id

# pattern -> the requests to try on it ({id} filled in with the owner's id; for edit/, the owner's message)
SWEEP = {
    "api/v1/conversations/<uuid:conversation_id>/": [
        ("get", None), ("patch", {"title": "pwned", "archived": True}), ("delete", None),
    ],
    "api/v1/conversations/<uuid:conversation_id>/turns/": [
        ("get", None), ("post", {"content": "sneak"}), ("post", {"content": "sneak", "stream": True}),
    ],
    "api/v1/conversations/<uuid:conversation_id>/regenerate/": [
        ("post", {}), ("post", {"content": "edited"}), ("post", {"stream": True}),
    ],
    "api/v1/conversations/<uuid:conversation_id>/turns/<int:turn_id>/edit/": [
        ("post", {"content": "sneak"}), ("post", {"content": "sneak", "stream": True}),
    ],
    "api/v1/conversations/<uuid:conversation_id>/switch/": [("post", {"turn_id": OWNERS_TURN})],
    "api/v1/conversations/<uuid:conversation_id>/tree/": [("get", None)],
    "api/v1/conversations/<uuid:conversation_id>/stream/": [("get", None)],
    "api/v1/conversations/<uuid:conversation_id>/stop/": [("post", {})],
    "api/v1/conversations/<uuid:conversation_id>/export/": [("get", None)],
    "api/v1/turns/<int:turn_id>/feedback/": [("post", {"rating": -1, "comment": "pwned"})],
    "api/v1/keys/<int:key_id>/": [("get", None), ("delete", None)],
    "api/v1/attachments/<uuid:attachment_id>/": [("get", None), ("delete", None)],
    "api/v1/attachments/<uuid:attachment_id>/content/": [("get", None)],
    "v1/responses/<str:response_id>": [("get", None)],
}


def id_patterns() -> set[str]:
    found = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
            elif "<" in route and route.startswith(("api/", "v1/")):
                found.add(route)

    walk(get_resolver().url_patterns)
    return found


# Routes (by prefix) whose parameter names nothing a user owns.
NOT_OWNED = ("v1/^models/",)  # a model name: the same list for every user


def test_the_sweep_covers_every_api_route_with_an_id():
    assert {route for route in id_patterns() if not route.startswith(NOT_OWNED)} == set(SWEEP)


def snapshot(user):
    conversations = list(Conversation.objects.filter(owner=user).order_by("pk").values())
    turns = list(Turn.objects.filter(conversation__owner=user).order_by("pk").values())
    feedback = list(Feedback.objects.filter(turn__conversation__owner=user).order_by("pk").values())
    keys = list(ApiKey.objects.filter(user=user).order_by("pk").values())
    files = list(Attachment.objects.filter(owner=user).order_by("pk").values())
    return conversations, turns, feedback, keys, files


@pytest.fixture
def owners_data(user, fake_upstream):
    conversation = conversation_create(owner=user, title="Alice's secrets")
    run = chat_turn(conversation=conversation, user=user, content="my secret")
    Feedback.objects.create(turn=run.assistant_turn, rating=1, comment="mine")
    key, _ = ApiKey.generate(user=user, name="alice's key")
    attachment = attachment_create(owner=user, upload=SimpleUploadedFile("secret.txt", b"my secret file"))
    fake_upstream.requests.clear()
    return {
        "conversation_id": conversation.pk, "turn_id": run.assistant_turn.pk, "key_id": key.pk,
        "message_id": run.user_turn.pk, "attachment_id": attachment.pk,
        "response_id": f"resp_{run.assistant_turn.pk}",
    }


def fill(pattern: str, ids: dict) -> str:
    if pattern.endswith("/edit/"):
        ids = {**ids, "turn_id": ids["message_id"]}
    url = "/" + pattern
    for name, value in ids.items():
        for converter in ("uuid", "int", "str"):
            url = url.replace(f"<{converter}:{name}>", str(value))
    return url


def test_other_users_ids_are_404_and_change_nothing(owners_data, user, other_user, fake_upstream):
    before = snapshot(user)
    _, raw = ApiKey.generate(user=other_user, name="bob")
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    bob_session = APIClient()
    bob_session.force_login(other_user)
    tried = 0
    for pattern, requests in SWEEP.items():
        url = fill(pattern, owners_data)
        for method, body in requests:
            if body is not None:
                body = {name: owners_data["turn_id"] if value is OWNERS_TURN else value for name, value in body.items()}
            # /v1 takes API keys only (a session there is a 401, whatever the id).
            for client in (bob,) if pattern.startswith("v1/") else (bob, bob_session):
                response = getattr(client, method)(url, body, format="json")
                assert_error(response, 404)
                assert "secret" not in response.content.decode()
                tried += 1
    assert tried == sum(len(r) * (1 if p.startswith("v1/") else 2) for p, r in SWEEP.items())
    assert snapshot(user) == before
    assert fake_upstream.chat_requests == []


async def test_other_users_ids_are_404_on_the_async_streaming_path(owners_data, other_user, fake_upstream):
    from asgiref.sync import sync_to_async

    _, raw = await sync_to_async(ApiKey.generate)(user=other_user, name="bob")
    client = AsyncClient()
    auth = {"Authorization": f"Bearer {raw}"}
    for pattern in ("api/v1/conversations/<uuid:conversation_id>/turns/",
                    "api/v1/conversations/<uuid:conversation_id>/regenerate/",
                    "api/v1/conversations/<uuid:conversation_id>/turns/<int:turn_id>/edit/"):
        response = await client.post(fill(pattern, owners_data), json.dumps({"content": "x", "stream": True}),
                                     content_type="application/json", headers={**auth, "Accept": "text/event-stream"})
        assert_error(response, 404)
    response = await client.post("/v1/chat/completions", json.dumps({
        "model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "x"}],
        "metadata": {"chatsite_conversation_id": str(owners_data["conversation_id"])},
    }), content_type="application/json", headers=auth)
    assert_error(response, 404)
    assert fake_upstream.chat_requests == []
    turns = await Turn.objects.filter(conversation_id=owners_data["conversation_id"]).acount()
    assert turns == 2
