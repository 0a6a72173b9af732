"""The REST API over real HTTP (DRF APIClient), with the fake upstream behind the chat service."""

import json

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey
from conversations import answering
from conversations.models import Conversation, Feedback, Turn
from conversations.services import conversation_create
from conversations.tests.api_helpers import assert_error, session_client
from conversations.tests.factories import add_turns

pytestmark = pytest.mark.django_db(transaction=True)

TURN_FIELDS = {
    "id", "parent_id", "position", "role", "content", "status", "model", "prompt_tokens", "completion_tokens",
    "finish_reason", "error", "tool_calls", "tool_call_id", "created_at", "sibling_count", "sibling_index",
    "previous_sibling_id", "next_sibling_id", "attachments",
}
CONVERSATION_FIELDS = {
    "id", "title", "model", "system_prompt", "archived", "web_search", "personal", "mcp_tools", "created_at",
    "updated_at", "turn_count", "current_turn_id", "project",
}


@pytest.fixture
def session(user, password):
    return session_client(user.username, password)


@pytest.fixture(params=["api_key", "session"])
def client_any(request, user, password):
    """Each test using this runs twice: with a Bearer API key and with a logged-in session (CSRF on)."""
    if request.param == "api_key":
        _, raw = ApiKey.generate(user=user, name="tests")
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return api
    return session_client(user.username, password)


def post(client, url, data):
    return client.post(url, data, format="json")


# --- Conversations --------------------------------------------------------------------------------


def test_conversation_crud(client_any, user, other_user):
    conversation_create(owner=other_user, title="bob's")
    created = post(client_any, "/api/v1/conversations/", {"title": "  Trip plans ", "system_prompt": "Be brief."})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == CONVERSATION_FIELDS
    assert (body["title"], body["system_prompt"], body["turn_count"], body["archived"]) == (
        "Trip plans", "Be brief.", 0, False
    )
    stored = Conversation.objects.get(pk=body["id"])
    assert stored.owner == user and stored.source == Conversation.Source.API

    listed = client_any.get("/api/v1/conversations/").json()
    assert listed["count"] == 1 and listed["next"] is None and listed["previous"] is None
    assert [c["id"] for c in listed["results"]] == [body["id"]]

    detail = client_any.get(f"/api/v1/conversations/{body['id']}/").json()
    assert detail["turns"] == [] and detail["title"] == "Trip plans"

    patched = client_any.patch(
        f"/api/v1/conversations/{body['id']}/", {"title": "Renamed", "archived": True}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["title"] == "Renamed" and patched.json()["archived"]
    assert client_any.get("/api/v1/conversations/").json()["count"] == 0
    assert client_any.get("/api/v1/conversations/?archived=true").json()["count"] == 1

    assert client_any.delete(f"/api/v1/conversations/{body['id']}/").status_code == 204
    assert not Conversation.objects.filter(pk=body["id"]).exists()
    assert Conversation.objects.filter(owner=other_user).count() == 1


def test_list_is_newest_first_paginated_and_searchable(key_client, user):
    first = conversation_create(owner=user, title="Sourdough")
    second = conversation_create(owner=user, title="Taxes")
    third = conversation_create(owner=user, title="Garden")
    add_turns(second, ("user", "about SOURDOUGH starters"))
    for index, conversation in enumerate([first, second, third]):
        recent = conversation.created_at.replace(year=2020 + index)
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=recent)

    page1 = key_client.get("/api/v1/conversations/?page_size=2").json()
    assert page1["count"] == 3 and [c["title"] for c in page1["results"]] == ["Garden", "Taxes"]
    page2 = key_client.get(page1["next"]).json()
    assert [c["title"] for c in page2["results"]] == ["Sourdough"] and page2["previous"]

    assert_error(key_client.get("/api/v1/conversations/?page=9"), 404)
    found = key_client.get("/api/v1/conversations/?search=sourdough").json()
    assert [c["title"] for c in found["results"]] == ["Taxes", "Sourdough"]  # title or turn text


def test_patch_ignores_protected_fields(key_client, user, other_user):
    conversation = conversation_create(owner=user, title="Mine", source=Conversation.Source.API)
    original_id = conversation.pk
    response = key_client.patch(
        f"/api/v1/conversations/{conversation.pk}/",
        {"owner": other_user.pk, "id": "00000000-0000-0000-0000-000000000000", "turn_count": 99,
         "role": "system", "position": 7, "status": "failed", "source": "web", "model": ""},
        format="json",
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.pk, conversation.owner, conversation.turn_count, conversation.source) == (
        original_id, user, 0, Conversation.Source.API
    )


def test_patch_rejects_unknown_model(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    response = key_client.patch(f"/api/v1/conversations/{conversation.pk}/", {"model": "gpt-9"}, format="json")
    error = assert_error(response, 400, "invalid")
    assert "model" in error["fields"]
    assert key_client.patch(
        f"/api/v1/conversations/{conversation.pk}/", {"model": "fake-model"}, format="json"
    ).json()["model"] == "fake-model"


# --- Turns ----------------------------------------------------------------------------------------


def test_send_message_and_list_turns(client_any, user, fake_upstream):
    conversation = conversation_create(owner=user, system_prompt="Be brief.")
    response = post(client_any, f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "Hello there"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"user_turn", "assistant_turn"}
    assert set(body["user_turn"]) == TURN_FIELDS == set(body["assistant_turn"])
    assert (body["user_turn"]["position"], body["user_turn"]["role"], body["user_turn"]["content"]) == (
        1, "user", "Hello there"
    )
    answer = body["assistant_turn"]
    assert (answer["position"], answer["role"], answer["status"]) == (2, "assistant", "complete")
    assert answer["content"] == fake_upstream.behaviour.reply
    assert answer["completion_tokens"] > 0 and answer["prompt_tokens"] > 0 and answer["model"] == "fake-model"
    assert fake_upstream.chat_requests[-1].messages == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"},
    ]

    turns = client_any.get(f"/api/v1/conversations/{conversation.pk}/turns/").json()
    assert turns["count"] == 2 and [t["role"] for t in turns["results"]] == ["user", "assistant"]
    detail = client_any.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert detail["turn_count"] == 2 and [t["id"] for t in detail["turns"]] == [t["id"] for t in turns["results"]]


def test_session_and_api_key_give_identical_results(user, password, fake_upstream):
    conversation = conversation_create(owner=user, title="Same")
    answering.answer(conversation=conversation, user=user, content="hi")
    _, raw = ApiKey.generate(user=user, name="k")
    by_key = APIClient()
    by_key.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    by_session = session_client(user.username, password)
    for url in [
        "/api/v1/conversations/", f"/api/v1/conversations/{conversation.pk}/",
        f"/api/v1/conversations/{conversation.pk}/turns/", "/api/v1/usage/",
        f"/api/v1/conversations/{conversation.pk}/export/?format=json",
    ]:
        a, b = by_key.get(url), by_session.get(url)
        assert a.status_code == b.status_code == 200, url
        assert a.content == b.content, url


def test_upstream_failure_keeps_the_message_and_answers_502(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    fake_upstream.behaviour.fail_status = 500
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "keep me"})
    error = assert_error(response, 502, "upstream_error")
    assert "sk-test" not in json.dumps(error)
    user_turn, answer = conversation.turns.order_by("position")
    assert user_turn.content == "keep me" and answer.status == Turn.Status.FAILED


@pytest.mark.parametrize(
    ("fail_status", "retry_after", "status", "code"),
    [
        (503, None, 502, "upstream_error"),
        (429, "7", 429, "upstream_rate_limited"),
        (401, None, 502, "upstream_misconfigured"),
    ],
)
def test_upstream_error_statuses(key_client, user, fake_upstream, fail_status, retry_after, status, code):
    conversation = conversation_create(owner=user)
    fake_upstream.behaviour.fail_status = fail_status
    fake_upstream.behaviour.retry_after = retry_after
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "hi"})
    assert_error(response, status, code)
    if retry_after:
        assert response["Retry-After"] == "7"


def test_upstream_unavailable_and_timeout(key_client, user, fake_upstream, settings):
    conversation = conversation_create(owner=user)
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens there
    assert_error(post(key_client, f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "a"}), 503,
                 "upstream_unavailable")
    settings.OPENAI_BASE_URL = fake_upstream.base_url
    settings.OPENAI_TIMEOUT = 0.5
    fake_upstream.behaviour.hang = True
    assert_error(post(key_client, f"/api/v1/conversations/{conversation.pk}/regenerate/", {}), 504, "upstream_timeout")


def test_regenerate_and_edit_last_message(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="first try")
    fake_upstream.behaviour.reply = "second answer"
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/regenerate/", {})
    assert response.status_code == 200
    body = response.json()
    assert body["user_turn"] is None and body["assistant_turn"]["content"] == "second answer"
    assert body["assistant_turn"]["position"] == 2 and conversation.turns.count() == 3  # the first answer is kept
    assert (body["assistant_turn"]["sibling_index"], body["assistant_turn"]["sibling_count"]) == (2, 2)

    # With content: a new version of the message that answer answers (the original edit-and-resend contract).
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/regenerate/", {"content": "edited"})
    body = response.json()
    assert body["user_turn"]["content"] == "edited" and body["user_turn"]["position"] == 1
    assert (body["user_turn"]["sibling_index"], body["user_turn"]["sibling_count"]) == (2, 2)
    assert fake_upstream.chat_requests[-1].messages[-1] == {"role": "user", "content": "edited"}
    assert conversation.turns.count() == 5


def test_regenerate_conflicts(key_client, user, fake_upstream):
    empty = conversation_create(owner=user)
    assert_error(post(key_client, f"/api/v1/conversations/{empty.pk}/regenerate/", {}), 409, "nothing_to_regenerate")
    busy = conversation_create(owner=user)
    add_turns(busy, ("user", "q"))
    add_turns(busy, ("assistant", ""), status="pending")
    assert_error(post(key_client, f"/api/v1/conversations/{busy.pk}/regenerate/", {}), 409, "busy")
    assert_error(post(key_client, f"/api/v1/conversations/{busy.pk}/turns/", {"content": "more"}), 409, "busy")
    assert fake_upstream.chat_requests == []


def test_stop(key_client, user):
    conversation = conversation_create(owner=user)
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/stop/", {})
    assert response.status_code == 200 and response.json() == {"assistant_turn": None}
    add_turns(conversation, ("user", "q"))
    running = add_turns(conversation, ("assistant", ""), status="pending")
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/stop/", {})
    assert response.json()["assistant_turn"]["id"] == running.pk
    from django.core.cache import cache

    assert cache.get(f"chat:stop:{running.pk}") is True  # the running answer sees the stop flag


def test_feedback(client_any, user):
    conversation = conversation_create(owner=user)
    question = add_turns(conversation, ("user", "q"))
    answer = add_turns(conversation, ("assistant", "a"))
    response = post(client_any, f"/api/v1/turns/{answer.pk}/feedback/", {"rating": -1, "comment": "wrong"})
    assert response.status_code == 200 and response.json()["rating"] == -1
    response = post(client_any, f"/api/v1/turns/{answer.pk}/feedback/", {"rating": 1})
    assert Feedback.objects.get(turn=answer).rating == 1 and Feedback.objects.count() == 1
    assert_error(post(client_any, f"/api/v1/turns/{answer.pk}/feedback/", {"rating": 5}), 400, "invalid")
    assert_error(post(client_any, f"/api/v1/turns/{question.pk}/feedback/", {"rating": 1}), 400, "invalid")


def test_export_markdown_and_json(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user, title="Bread & butter", system_prompt="Be brief.")
    answering.answer(conversation=conversation, user=user, content="How to bake?")
    md = key_client.get(f"/api/v1/conversations/{conversation.pk}/export/?format=md")
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    assert 'filename="bread-butter.md"' in md["Content-Disposition"]
    text = md.content.decode()
    assert "# Bread & butter" in text and "How to bake?" in text and fake_upstream.behaviour.reply in text
    default = key_client.get(f"/api/v1/conversations/{conversation.pk}/export/")
    assert default.content == md.content

    document = key_client.get(f"/api/v1/conversations/{conversation.pk}/export/?format=json")
    assert document["Content-Type"] == "application/json"
    data = json.loads(document.content)
    assert data["id"] == str(conversation.pk) and [t["role"] for t in data["turns"]] == ["user", "assistant"]
    assert_error(key_client.get(f"/api/v1/conversations/{conversation.pk}/export/?format=pdf"), 400, "invalid")


def test_usage(key_client, user, fake_upstream, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 10_000
    conversation = conversation_create(owner=user)
    run = answering.answer(conversation=conversation, user=user, content="count me")
    body = key_client.get("/api/v1/usage/").json()
    spent = run.assistant_turn.prompt_tokens + run.assistant_turn.completion_tokens
    assert body["tokens_today"] == spent and body["quota"] == 10_000 and body["quota_left"] == 10_000 - spent
    assert body["days"][-1]["total_tokens"] == spent and body["days"][-1]["answers"] == 1
    assert_error(key_client.get("/api/v1/usage/?days=0"), 400)
    assert_error(key_client.get("/api/v1/usage/?days=abc"), 400)


def test_quota_exceeded_is_429_with_retry_after(key_client, user, fake_upstream, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 5
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="hi")
    response = post(key_client, f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "more"})
    assert_error(response, 429, "quota_exceeded")
    assert int(response["Retry-After"]) > 0
    assert key_client.get("/api/v1/usage/").json()["quota_left"] == 0


# --- /api/chat, the prototype's contract --------------------------------------------------------------------


def test_seed_chat_contract_and_storage(client_any, user, fake_upstream):
    response = post(client_any, "/api/chat", {"messages": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "How are you?"},
    ]})
    assert response.status_code == 200
    assert response.json() == {"role": "assistant", "content": fake_upstream.behaviour.reply}
    conversation = Conversation.objects.get(owner=user)
    assert conversation.source == Conversation.Source.CHAT_ENDPOINT
    assert conversation.system_prompt == "Answer in French."
    assert list(conversation.turns.values_list("position", "role", "content")) == [
        (1, "user", "Hi"), (2, "assistant", "Bonjour"), (3, "user", "How are you?"),
        (4, "assistant", fake_upstream.behaviour.reply),
    ]
    assert conversation.turn_count == 4
    assert fake_upstream.chat_requests[-1].messages == [
        {"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour"}, {"role": "user", "content": "How are you?"},
    ]


@pytest.mark.parametrize("body", [
    {}, {"messages": []}, {"messages": "hi"}, {"messages": [{"role": "assistant", "content": "hi"}]},
    {"messages": [{"role": "user", "content": "   "}]}, {"messages": [{"role": "user"}]},
    {"messages": [{"role": "wizard", "content": "hi"}]}, {"messages": [{"role": "user", "content": 5}]},
    {"messages": [{"role": "user", "content": "a\x00b"}]}, [{"role": "user", "content": "hi"}],
])
def test_seed_chat_bad_input(key_client, fake_upstream, body):
    assert_error(post(key_client, "/api/chat", body), 400, "invalid")
    assert fake_upstream.chat_requests == [] and Conversation.objects.count() == 0


def test_seed_chat_refused_by_quota_leaves_nothing(key_client, user, fake_upstream, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 5  # "use it up" (3 tokens) fits; its answer spends the rest
    answering.answer(conversation=conversation_create(owner=user), user=user, content="use it up")
    response = post(key_client, "/api/chat", {"messages": [{"role": "user", "content": "more"}]})
    assert_error(response, 429, "quota_exceeded")
    assert Conversation.objects.count() == 1


# --- Errors in the one shape, never a 500 ------------------------------------------------------------


@pytest.mark.parametrize(("raw", "content_type"), [
    (b"{not json", "application/json"),
    (b"null", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'"text"', "application/json"),
    (b'{"content": ""}', "application/json"),
    (b'{"content": "   \\n\\t "}', "application/json"),
    (b'{"content": "nul \\u0000 here"}', "application/json"),
    (b'{"content": "lone \\ud800 surrogate"}', "application/json"),
    (b'{"content": 12}', "application/json"),
    (b'{"content": null}', "application/json"),
    (b'{"content": "x", "stream": "maybe"}', "application/json"),
    (b"", "application/json"),
])
def test_bad_turn_input_is_400(key_client, user, fake_upstream, raw, content_type):
    conversation = conversation_create(owner=user)
    response = key_client.generic("POST", f"/api/v1/conversations/{conversation.pk}/turns/", raw,
                                  content_type=content_type)
    code = "parse_error" if raw == b"{not json" else "invalid"
    assert_error(response, 400, code)
    assert conversation.turns.count() == 0 and fake_upstream.chat_requests == []


def test_content_over_the_limit_is_400(key_client, user, fake_upstream, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 100
    conversation = conversation_create(owner=user)
    url = f"/api/v1/conversations/{conversation.pk}/turns/"
    error = assert_error(post(key_client, url, {"content": "x" * 101}), 400, "invalid")
    assert "content" in error["fields"]
    assert post(key_client, url, {"content": "x" * 100}).status_code == 201


def test_body_over_the_upload_limit_is_413(key_client, user, fake_upstream, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    conversation = conversation_create(owner=user)
    for url in [f"/api/v1/conversations/{conversation.pk}/turns/", "/api/chat", "/api/v1/conversations/",
                f"/api/v1/conversations/{conversation.pk}/regenerate/"]:
        assert_error(post(key_client, url, {"content": "x" * 2000}), 413, "request_too_large")
    assert fake_upstream.chat_requests == []


def test_form_bodies_are_415(key_client):
    assert_error(key_client.post("/api/v1/conversations/", {"title": "x"}), 415)


def test_unauthenticated_is_401(fake_upstream, user):
    conversation = conversation_create(owner=user)
    anonymous = APIClient()
    for method, url in [
        ("get", "/api/v1/conversations/"), ("post", f"/api/v1/conversations/{conversation.pk}/turns/"),
        ("post", "/api/chat"), ("get", "/api/v1/usage/"), ("get", "/api/v1/keys/"),
    ]:
        response = getattr(anonymous, method)(url, {"content": "hi"} if method == "post" else None, format="json")
        assert_error(response, 401, "not_authenticated")
    assert fake_upstream.chat_requests == []


@pytest.mark.parametrize("header", ["Bearer cs_nope", "Bearer", "Bearer a b", "Bearer not-a-chatsite-key"])
def test_bad_api_keys_are_401(header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    assert_error(api.get("/api/v1/conversations/"), 401, "not_authenticated")


def test_revoked_and_expired_keys_are_401(user):
    from django.utils import timezone

    revoked, raw_revoked = ApiKey.generate(user=user, name="old")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    _, raw_expired = ApiKey.generate(user=user, name="exp", expires_at=timezone.now() - timezone.timedelta(seconds=1))
    for raw in (raw_revoked, raw_expired):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert_error(api.get("/api/v1/conversations/"), 401)


def test_api_key_in_query_string_is_not_accepted(api_key):
    assert_error(APIClient().get(f"/api/v1/conversations/?api_key={api_key}"), 401)


@pytest.mark.parametrize(("query", "code"), [("?archived=maybe", "invalid"), ("?search=a%00b", "bad_request")])
def test_bad_list_parameters_are_400(key_client, query, code):
    # A NUL is refused for every route before any view runs (chatsite.middleware).
    assert_error(key_client.get(f"/api/v1/conversations/{query}"), 400, code)


def test_malformed_ids_are_404(key_client):
    for url in ["/api/v1/conversations/not-a-uuid/", "/api/v1/conversations/123/turns/", "/api/v1/turns/abc/feedback/",
                "/api/v1/keys/x/"]:
        assert_error(key_client.get(url), 404)


# --- CSRF and throttling ------------------------------------------------------------------------------


def test_session_writes_need_the_csrf_token(user, password, fake_upstream):
    conversation = conversation_create(owner=user, title="Keep")
    with_token = session_client(user.username, password)
    without_token = session_client(user.username, password)
    without_token.credentials()  # drop the X-CSRFToken header, keep the session
    writes = [
        ("post", "/api/v1/conversations/", {"title": "x"}),
        ("patch", f"/api/v1/conversations/{conversation.pk}/", {"title": "changed"}),
        ("post", f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "hi"}),
        ("post", f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "hi", "stream": True}),
        ("post", f"/api/v1/conversations/{conversation.pk}/regenerate/", {}),
        ("post", f"/api/v1/conversations/{conversation.pk}/stop/", {}),
        ("post", "/api/chat", {"messages": [{"role": "user", "content": "hi"}]}),
        ("post", "/api/v1/keys/", {"name": "k"}),
        ("delete", f"/api/v1/conversations/{conversation.pk}/", None),
    ]
    for method, url, data in writes:
        response = getattr(without_token, method)(url, data, format="json")
        assert_error(response, 403)
    conversation.refresh_from_db()
    assert conversation.title == "Keep" and Conversation.objects.count() == 1 and ApiKey.objects.count() == 0
    assert fake_upstream.chat_requests == []
    assert without_token.get("/api/v1/conversations/").status_code == 200  # reads need no token
    renamed = with_token.patch(f"/api/v1/conversations/{conversation.pk}/", {"title": "ok"}, format="json")
    assert renamed.status_code == 200


def test_chat_endpoints_are_throttled_per_user(key_client, user, fake_upstream, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"chat": "2/min"}}
    conversation = conversation_create(owner=user)
    url = f"/api/v1/conversations/{conversation.pk}/turns/"
    assert post(key_client, url, {"content": "one"}).status_code == 201
    assert post(key_client, "/api/chat", {"messages": [{"role": "user", "content": "two"}]}).status_code == 200
    for response in [
        post(key_client, url, {"content": "three"}),
        post(key_client, f"/api/v1/conversations/{conversation.pk}/regenerate/", {}),
        post(key_client, "/api/chat", {"messages": [{"role": "user", "content": "four"}]}),
    ]:
        assert_error(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0
    assert len(fake_upstream.chat_requests) == 2
    assert key_client.get(url).status_code == 200  # reading is not throttled
