"""Bad inputs, mass assignment and CSRF on every writing endpoint of the API.

Bad input is a 4xx in the one error shape, never a 5xx, and leaves nothing behind (no turn stored, no
model call). Fields a client must not set (role, position, status, owner, conversation, id,
turn_count...) are never applied. Session writes without a CSRF token are refused with 403.
"""

import uuid

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey
from conversations import answering
from conversations.models import Conversation, Feedback, Turn
from conversations.services import conversation_create
from tests.support import assert_error_shape

# Refused requests never reach the model, so most tests run in a rolled-back transaction; the ones that
# call the model run with real transactions (the chat service's connection handling needs them).
pytestmark = pytest.mark.django_db
calls_the_model = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation(user):
    return conversation_create(owner=user, title="mine")


def turns_url(conversation):
    return f"/api/v1/conversations/{conversation.pk}/turns/"


def counts():
    return Conversation.objects.count(), Turn.objects.count(), Feedback.objects.count(), ApiKey.objects.count()


# --- bad inputs ------------------------------------------------------------------------------------------

TOO_LONG = object()  # filled in with CHAT_MAX_MESSAGE_CHARS + 1 characters at run time
BAD_JSON_BODIES = {
    "empty content": {"content": ""},
    "whitespace content": {"content": " \n\t  "},
    "too long": {"content": TOO_LONG},
    "NUL": {"content": "hello\x00world"},
    "content is a number": {"content": 12},
    "content is an object": {"content": {"text": "hi"}},
    "content is a list": {"content": ["hi"]},
    "content is null": {"content": None},
    "content missing": {"text": "hi"},
    "stream is not a boolean": {"content": "hi", "stream": "sometimes"},
}
BAD_RAW_BODIES = {
    "malformed JSON": (b'{"content": "hi"', "application/json"),
    "trailing garbage": (b'{"content": "hi"} x', "application/json"),
    "JSON list": (b'[{"content": "hi"}]', "application/json"),
    "JSON null": (b"null", "application/json"),
    "JSON string": (b'"hi"', "application/json"),
    "JSON number": (b"42", "application/json"),
    "empty body": (b"", "application/json"),
    "invalid UTF-8": (b'{"content": "\xff\xfe\xfa"}', "application/json"),
    "lone surrogate": (b'{"content": "\\ud800", "title": "\\udfff", "name": "\\ud800", "messages": '
                       b'[{"role": "user", "content": "\\ud800"}], "model": "fake-model"}', "application/json"),
    "NaN": (b'{"content": NaN}', "application/json"),
    "form-encoded": (b"content=hi", "application/x-www-form-urlencoded"),
    "plain text": (b"hi", "text/plain"),
    "multipart": (b"--x\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nhi\r\n--x--\r\n",
                  "multipart/form-data; boundary=x"),
    "no content type": (b'{"content": "hi"}', ""),
}


def _json_body(body: dict) -> dict:
    return {k: ("x" * (settings.CHAT_MAX_MESSAGE_CHARS + 1) if v is TOO_LONG else v) for k, v in body.items()}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("case", list(BAD_JSON_BODIES))
def test_bad_message_bodies_are_400(fake_upstream, key_client, conversation, case, stream):
    before = counts()
    body = _json_body(BAD_JSON_BODIES[case])
    if stream and "stream" not in body:
        body["stream"] = True
    for url in (turns_url(conversation), f"/api/v1/conversations/{conversation.pk}/regenerate/"):
        if url.endswith("regenerate/") and case == "content missing":
            continue  # regenerate without content is valid (nothing to regenerate: a 409)
        response = key_client.post(url, body, format="json")
        assert_error_shape(response, 400)
    assert counts() == before
    assert fake_upstream.chat_requests == []


@calls_the_model
def test_a_message_at_the_limit_is_accepted(fake_upstream, key_client, conversation, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 50
    assert_error_shape(key_client.post(turns_url(conversation), {"content": "x" * 51}, format="json"), 400)
    response = key_client.post(turns_url(conversation), {"content": "x" * 50}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("case", list(BAD_RAW_BODIES))
def test_malformed_raw_bodies_are_4xx(fake_upstream, api_key, conversation, case):
    raw, content_type = BAD_RAW_BODIES[case]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    before = counts()
    urls = [turns_url(conversation), f"/api/v1/conversations/{conversation.pk}/regenerate/",
            "/api/v1/conversations/", f"/api/v1/conversations/{conversation.pk}/", "/api/chat",
            "/v1/chat/completions", "/api/v1/keys/"]
    for url in urls:
        method = client.patch if url.endswith(f"{conversation.pk}/") else client.post
        response = method(url, data=raw, content_type=content_type)
        if case == "empty body" and url in ("/api/v1/conversations/", f"/api/v1/conversations/{conversation.pk}/"):
            # No body where every field is optional: a conversation with defaults (or no change).
            assert response.status_code in (200, 201), (url, response.content)
            continue
        if case == "empty body" and url.endswith("regenerate/"):
            assert_error_shape(response, 409)  # a valid request: there is no answer to regenerate
            continue
        if url == "/api/v1/keys/":
            assert_error_shape(response, 403)  # a key may never create keys, whatever the body
            continue
        error = assert_error_shape(response, (400, 415))
        assert "Traceback" not in error["message"]
    assert Turn.objects.count() == before[1]
    assert fake_upstream.chat_requests == []


@pytest.mark.parametrize("url", ["/api/v1/conversations/{id}/turns/", "/api/chat", "/v1/chat/completions",
                                 "/api/v1/conversations/"])
def test_body_over_the_upload_limit_is_413(fake_upstream, key_client, conversation, url):
    huge = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    body = {"content": huge, "title": huge, "model": "fake-model", "messages": [{"role": "user", "content": huge}]}
    before = counts()
    response = key_client.post(url.format(id=conversation.pk), body, format="json")
    assert_error_shape(response, 413)
    assert counts() == before
    assert fake_upstream.chat_requests == []


@pytest.mark.parametrize("case", [
    {"messages": []},
    {"messages": None},
    {"messages": "hi"},
    {"messages": [{"role": "user"}]},
    {"messages": [{"role": "user", "content": None}]},
    {"messages": [{"role": "user", "content": "   "}]},
    {"messages": [{"role": "user", "content": "a\x00b"}]},
    {"messages": [{"role": "wizard", "content": "hi"}]},
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "last"}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]},
    {"messages": [{"role": "user", "content": "hi"}] * 10_000},
    {},
])
@pytest.mark.parametrize("url", ["/api/chat", "/v1/chat/completions"])
def test_bad_message_lists_are_400(fake_upstream, key_client, case, url):
    body = dict(case, model="fake-model") if url.startswith("/v1/") else case
    before = counts()
    response = key_client.post(url, body, format="json")
    assert_error_shape(response, (400, 413))
    assert counts() == before
    assert fake_upstream.chat_requests == []


@pytest.mark.parametrize("conversation_id", [
    "not-a-uuid", "1", "0", "-1", "00000000-0000-0000-0000-000000000000",
    "26a1fa60-3a66-48a6-a944-eb33b3948f61",  # a well-formed id no chat has (fixed: xdist workers collect alike)
    "%00", "..%2F..%2Fetc%2Fpasswd", "' OR '1'='1", "x" * 5000, "%F0%9F%98%80", "%ff%fe",
])
def test_unknown_or_malformed_conversation_ids_are_404(fake_upstream, key_client, conversation_id):
    # A NUL in a path is refused for every route before any view runs (chatsite.middleware): 400.
    not_found = (400,) if "%00" in conversation_id else (404, 405)
    for suffix in ("", "turns/", "regenerate/", "stop/", "export/"):
        url = f"/api/v1/conversations/{conversation_id}/{suffix}"
        assert_error_shape(key_client.get(url), not_found)
        assert_error_shape(key_client.post(url, {"content": "hi"}, format="json"), not_found)
    for turn_id in (conversation_id, "999999999", "99999999999999999999999"):
        assert_error_shape(key_client.post(f"/api/v1/turns/{turn_id}/feedback/", {"rating": 1}, format="json"),
                           not_found if turn_id == conversation_id else 404)
    assert fake_upstream.chat_requests == []


@pytest.mark.parametrize("query", [
    "/api/v1/conversations/?search=%00", "/api/v1/conversations/?archived=maybe", "/api/v1/conversations/?page=0",
    "/api/v1/conversations/?page=abc", "/api/v1/conversations/?page=99999", "/api/v1/usage/?days=abc",
    "/api/v1/usage/?days=-5", "/api/v1/usage/?days=100000000000000000000",
    "/api/v1/conversations/{id}/export/?format=xml",
    "/api/v1/conversations/{id}/export/?format=%00",
])
def test_bad_query_parameters_are_4xx(key_client, conversation, query):
    assert_error_shape(key_client.get(query.format(id=conversation.pk)), (400, 404))


@calls_the_model
@pytest.mark.parametrize("body", [
    {"rating": 0}, {"rating": 2}, {"rating": "up"}, {"rating": None}, {}, {"rating": 1, "comment": "a\x00b"},
    {"rating": 1, "comment": "x" * 100_000}, {"rating": 1, "comment": 5},
])
def test_bad_feedback_is_400(fake_upstream, key_client, user, conversation, body):
    run = answering.answer(conversation=conversation, user=user, content="question")
    for turn in (run.assistant_turn, run.user_turn):
        assert_error_shape(key_client.post(f"/api/v1/turns/{turn.pk}/feedback/", body, format="json"), 400)
    assert Feedback.objects.count() == 0


@calls_the_model
def test_feedback_on_a_question_is_400(fake_upstream, key_client, user, conversation):
    run = answering.answer(conversation=conversation, user=user, content="question")
    assert_error_shape(key_client.post(f"/api/v1/turns/{run.user_turn.pk}/feedback/", {"rating": 1}, format="json"),
                       400)
    assert Feedback.objects.count() == 0


@pytest.mark.parametrize("body", [
    {"title": "x" * 201}, {"title": 5}, {"title": "a\x00b"}, {"model": "no-such-model"}, {"archived": "perhaps"},
    {"system_prompt": "x" * 1_000_001}, {"system_prompt": ["a"]},
])
def test_bad_conversation_fields_are_4xx(fake_upstream, key_client, conversation, body):
    before = list(Conversation.objects.values())
    assert_error_shape(key_client.patch(f"/api/v1/conversations/{conversation.pk}/", body, format="json"), (400, 413))
    assert_error_shape(key_client.post("/api/v1/conversations/", body, format="json"), (400, 413))
    assert list(Conversation.objects.values()) == before


def test_method_not_allowed_is_405_in_the_error_shape(key_client, conversation):
    for method, url in [
        ("put", f"/api/v1/conversations/{conversation.pk}/"), ("delete", "/api/v1/conversations/"),
        ("get", f"/api/v1/conversations/{conversation.pk}/stop/"), ("get", "/api/chat"),
        ("get", "/v1/chat/completions"), ("post", "/v1/models"), ("put", "/api/v1/usage/"),
        ("patch", f"/api/v1/conversations/{conversation.pk}/turns/"),
    ]:
        assert_error_shape(getattr(key_client, method)(url, {}, format="json"), 405)


# --- mass assignment -------------------------------------------------------------------------------------

def test_conversation_create_ignores_server_fields(key_client, user, other_user):
    forced_id = uuid.uuid4()
    response = key_client.post("/api/v1/conversations/", {
        "title": "mine", "id": str(forced_id), "owner": other_user.pk, "owner_id": other_user.pk,
        "turn_count": 99, "source": "web", "created_at": "2000-01-01T00:00:00Z", "reviewed_at": "2000-01-01T00:00:00Z",
    }, format="json")
    assert response.status_code == 201, response.content
    conversation = Conversation.objects.get()
    assert conversation.pk != forced_id
    assert conversation.owner == user
    assert conversation.turn_count == 0
    assert conversation.source == Conversation.Source.API
    assert conversation.created_at.year != 2000


def test_conversation_update_ignores_server_fields(key_client, user, other_user, conversation):
    before = Conversation.objects.values().get()
    response = key_client.patch(f"/api/v1/conversations/{conversation.pk}/", {
        "id": str(uuid.uuid4()), "owner": other_user.pk, "turn_count": 50, "source": "chat_endpoint",
        "created_at": "2000-01-01T00:00:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    after = Conversation.objects.values().get()
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"}


@calls_the_model
@pytest.mark.parametrize("stream", [False, True])
def test_message_body_cannot_set_role_position_status_or_conversation(
    fake_upstream, key_client, user, other_user, conversation, stream
):
    bobs = conversation_create(owner=other_user, title="bob's")
    bob_before = list(Turn.objects.filter(conversation=bobs).values())
    response = key_client.post(turns_url(conversation), {
        "content": "hello", "stream": stream, "role": "assistant", "position": 7, "status": "failed",
        "conversation": str(bobs.pk), "conversation_id": str(bobs.pk), "id": 424242, "turn_count": 99,
        "model": "gpt-evil", "prompt_tokens": -5, "completion_tokens": 10**9, "error": "x", "owner": other_user.pk,
    }, format="json")
    assert response.status_code in (200, 201), response.content
    if stream:
        assert b"event: done" in b"".join(response)
    turns = list(Turn.objects.filter(conversation=conversation).order_by("position"))
    assert [(t.position, t.role, t.status) for t in turns] == [(1, "user", "complete"), (2, "assistant", "complete")]
    assert turns[0].content == "hello"
    assert 424242 not in [t.pk for t in turns]
    assert turns[1].model == "fake-model"
    assert turns[1].completion_tokens < 10**9 and turns[1].prompt_tokens >= 0
    conversation.refresh_from_db()
    assert conversation.turn_count == 2 and conversation.owner == user
    assert list(Turn.objects.filter(conversation=bobs).values()) == bob_before


@calls_the_model
def test_feedback_body_cannot_move_to_another_turn(fake_upstream, key_client, user, other_user, conversation):
    mine = answering.answer(conversation=conversation, user=user, content="q").assistant_turn
    bobs = answering.answer(
        conversation=conversation_create(owner=other_user), user=other_user, content="q"
    ).assistant_turn
    response = key_client.post(f"/api/v1/turns/{mine.pk}/feedback/",
                               {"rating": -1, "turn": bobs.pk, "turn_id": bobs.pk, "id": 777}, format="json")
    assert response.status_code == 200, response.content
    assert list(Feedback.objects.values_list("turn_id", "rating")) == [(mine.pk, -1)]


def test_api_key_create_ignores_owner_and_secrets(api_client, user, other_user):
    response = api_client.post("/api/v1/keys/", {
        "name": "new", "user": other_user.pk, "user_id": other_user.pk, "prefix": "aaaaaaaa",
        "key_hash": "0" * 64, "revoked_at": None, "id": 999,
    }, format="json")
    assert response.status_code == 201, response.content
    key = ApiKey.objects.get(name="new")
    assert key.user == user and key.prefix != "aaaaaaaa" and key.key_hash != "0" * 64 and key.pk != 999


@calls_the_model
def test_seed_chat_is_stored_for_the_caller_only(fake_upstream, key_client, user, other_user):
    bobs = conversation_create(owner=other_user)
    response = key_client.post("/api/chat", {
        "messages": [{"role": "user", "content": "hi", "position": 9, "status": "failed"}],
        "conversation": str(bobs.pk), "conversation_id": str(bobs.pk), "owner": other_user.pk,
    }, format="json")
    assert response.status_code == 200, response.content
    assert Turn.objects.filter(conversation=bobs).count() == 0
    stored = Conversation.objects.exclude(pk=bobs.pk).get()
    assert stored.owner == user
    assert list(stored.turns.order_by("position").values_list("position", "role", "status")) == [
        (1, "user", "complete"), (2, "assistant", "complete")]


# --- CSRF ------------------------------------------------------------------------------------------------

def real_login(username, password) -> Client:
    """A browser-like client: CSRF enforced, logged in through the login form with its token."""
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    token = client.cookies["csrftoken"].value
    response = client.post("/accounts/login/", {"username": username, "password": password,
                                                "csrfmiddlewaretoken": token})
    assert response.status_code == 302, response.content[:300]
    return client


def csrf_token(client) -> str:
    return client.cookies["csrftoken"].value


@pytest.fixture
def csrf_world(fake_upstream, user, password):
    conversation = conversation_create(owner=user, title="mine")
    run = answering.answer(conversation=conversation, user=user, content="question")
    key, _ = ApiKey.generate(user=user, name="old")
    fake_upstream.requests.clear()
    return conversation, run.assistant_turn, key


def api_writes(conversation, turn, key):
    c = f"/api/v1/conversations/{conversation.pk}"
    return [
        ("post", "/api/v1/conversations/", {"title": "new"}),
        ("patch", f"{c}/", {"title": "renamed"}),
        ("delete", f"{c}/", None),
        ("post", f"{c}/turns/", {"content": "hi"}),
        ("post", f"{c}/turns/", {"content": "hi", "stream": True}),
        ("post", f"{c}/regenerate/", {}),
        ("post", f"{c}/stop/", {}),
        ("post", f"/api/v1/turns/{turn.pk}/feedback/", {"rating": 1}),
        ("post", "/api/v1/keys/", {"name": "k"}),
        ("delete", f"/api/v1/keys/{key.pk}/", None),
        ("post", "/api/chat", {"messages": [{"role": "user", "content": "hi"}]}),
        ("post", "/v1/chat/completions", {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}),
    ]


def snapshot():
    return (list(Conversation.objects.order_by("pk").values()), list(Turn.objects.order_by("pk").values()),
            list(Feedback.objects.values()), list(ApiKey.objects.values("pk", "revoked_at")))


@calls_the_model
def test_session_api_writes_without_csrf_token_are_403(csrf_world, fake_upstream, user, password):
    client = real_login("alice", password)
    before = snapshot()
    for method, url, body in api_writes(*csrf_world):
        kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
        response = getattr(client, method)(url, **kwargs)
        error = assert_error_shape(response, (401, 403))
        if not url.startswith("/v1/"):  # /v1 takes API keys only: a session there is simply not enough
            assert response.status_code == 403, (url, error)
    assert snapshot() == before
    assert fake_upstream.chat_requests == []


@calls_the_model
def test_session_api_writes_with_the_csrf_token_work(csrf_world, fake_upstream, password):
    client = real_login("alice", password)
    conversation, turn, key = csrf_world
    response = client.post(f"/api/v1/conversations/{conversation.pk}/turns/", data={"content": "hi"},
                           content_type="application/json", HTTP_X_CSRFTOKEN=csrf_token(client))
    assert response.status_code == 201, response.content
    response = client.patch(f"/api/v1/conversations/{conversation.pk}/", data={"title": "renamed"},
                            content_type="application/json", HTTP_X_CSRFTOKEN=csrf_token(client))
    assert response.status_code == 200, response.content


@calls_the_model
def test_api_key_requests_need_no_csrf_token(csrf_world, fake_upstream, api_key):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    conversation, _, _ = csrf_world
    response = client.post(f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "hi"}, format="json")
    assert response.status_code == 201, response.content


@calls_the_model
def test_html_form_writes_without_csrf_token_are_403(csrf_world, password):
    _, _, key = csrf_world
    client = real_login("alice", password)
    before = snapshot()
    posts = [("/accounts/keys/", {"name": "k"}), (f"/accounts/keys/{key.pk}/revoke/", {}),
             ("/accounts/logout/", {}), ("/i18n/setlang/", {"language": "ko"})]
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == 403, (url, response.status_code)
        assert b"Forbidden" in response.content
    assert snapshot() == before
    assert "_auth_user_id" in client.session  # logout refused too


def test_an_api_key_cannot_mint_more_keys(key_client, user):
    before = ApiKey.objects.count()
    response = key_client.post("/api/v1/keys/", {"name": "minted with a key"}, format="json")
    assert_error_shape(response, 403)
    assert ApiKey.objects.count() == before


def test_expired_revoked_and_malformed_keys_are_401(user):
    from datetime import timedelta

    from django.utils import timezone

    expired, expired_raw = ApiKey.generate(user=user, name="expired", expires_at=timezone.now() + timedelta(hours=1))
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_raw = ApiKey.generate(user=user, name="revoked")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    _, good_raw = ApiKey.generate(user=user, name="good")
    for header in [f"Bearer {expired_raw}", f"Bearer {revoked_raw}", f"Bearer {good_raw}x", f"Bearer {good_raw[:-1]}",
                   "Bearer ", "Bearer cs_", "Bearer \x00", f"bearer  {good_raw} extra", f"Token {good_raw}"]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        for url in ("/api/v1/conversations/", "/v1/models"):
            assert_error_shape(client.get(url), 401)
    good = APIClient()
    good.credentials(HTTP_AUTHORIZATION=f"Bearer {good_raw}")
    assert good.get("/api/v1/conversations/").status_code == 200
