"""Input that once made 500s: each is a clear 400 now, in the API's error shape (or the 400 page); and the input
sweep: NUL, overlong, right-to-left and invalid UTF-8 values in every string path part and query parameter of
every route are a 4xx, never a 5xx."""

import re
from urllib.parse import quote

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import ApiKey
from conversations import answering
from conversations.attachments import attachment_create, bind
from conversations.models import Conversation
from conversations.organizing import project_create
from conversations.services import conversation_create
from conversations.sharing import share_link_create
from conversations.tests.factories import add_turns
from tests.security.test_ownership import all_routes
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


# --- The input sweep: every route, with hostile values in each string path part and each query parameter --------

# Percent-encoded as a client sends them.
HOSTILE_VALUES = {
    "NUL": "a%00b",
    "overlong": "x" * 5000,
    "right-to-left": quote("invoice\u202egpj.exe"),
    "invalid UTF-8": "%FF%FE%C0%AF",
}
# Every query parameter a view reads (views, DRF pagination), and two none does.
QUERY_PARAMETERS = ("q", "search", "cursor", "folder", "archived", "before", "after", "format", "days", "page",
                    "page_size", "next", "unknown")
CONVERTED = re.compile(r"<(?:(\w+):)?(\w+)>")


def _route_parts(route: str) -> list[tuple[str, str, bool]]:
    """The route as (text, parameter name, is a string) pieces: plain text has no name; a regex group
    (?P<name>...) is read to its balancing parenthesis; a catch-all ".*" is a string named "path"."""
    parts, i = [], 0
    while i < len(route):
        if route.startswith("(?P<", i):
            name = route[i + 4:route.index(">", i)]
            depth, j = 0, i
            while True:
                if route[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(route[j], 0)
                j += 1
                if depth == 0:
                    break
            parts.append(("", name, True))
            i = j
        elif (match := CONVERTED.match(route, i)) is not None:
            converter, name = match.groups()
            parts.append(("", name, converter in (None, "str", "path")))
            i = match.end()
        elif route.startswith(".*", i):
            parts.append(("", "path", True))
            i += 2
        else:
            if route[i] not in "^$":
                parts.append((route[i], "", False))
            i += 1
    return parts


def sweep_url(route: str, ids: dict, hostile: str | None) -> str:
    """The route with real ids; its string parts (str and path converters, regex groups, a catch-all) hold
    `hostile` when given, their real value otherwise."""
    pieces = []
    for text, name, is_string in _route_parts(route):
        if not name:
            pieces.append(text)
        elif hostile is not None and is_string:
            pieces.append(hostile)
        else:
            pieces.append(str(ids.get(name, "1")))
    return "/" + "".join(pieces)


def string_routes() -> list[str]:
    return [route for route, _ in all_routes() if any(is_string for _, _, is_string in _route_parts(route))]


@pytest.fixture
def sweep_world(user, api_key, make_user):
    """Real ids for every route: a chat with an exchange and a file, a share link, a folder, a key."""
    conversation = conversation_create(owner=user, title="swept")
    message = add_turns(conversation, ("user", "question"))
    file = attachment_create(owner=user, upload=SimpleUploadedFile("notes.txt", b"notes"))
    bind([file], message)
    answer = add_turns(conversation, ("assistant", "answer"))
    link = share_link_create(conversation=conversation, include_files=True)
    key = ApiKey.objects.get(user=user)
    session = Client()
    session.force_login(user)
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    key_client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    project = project_create(owner=user, name="f")
    return {
        "ids": {"conversation_id": conversation.pk, "turn_id": answer.pk, "attachment_id": file.pk, "key_id": key.pk,
                "link_id": link.pk, "folder_id": project.pk, "project_id": project.pk, "token": link.token,
                "response_id": f"resp_{answer.pk}", "model_id": "fake-model", "uidb64": "MQ", "object_id": "1",
                "path": "unknown"},
        "clients": {"anonymous": Client(), "session": session, "api key": key_client, "staff": admin},
    }


def assert_not_a_server_error(response, where):
    assert response.status_code < 500, (where, response.status_code, response.content[:300])
    # The schema answers in the format asked for (?format=yaml): its own errors too.
    if response.status_code >= 400 and where[1].startswith(("/api/", "/v1/")) and not where[1].startswith(
        ("/api/schema/", "/api/docs/")
    ):
        assert_error_shape(response, response.status_code)


def test_a_nul_in_a_share_token_is_a_400_not_a_500(sweep_world):
    """PostgreSQL refuses a NUL in any text: the share routes passed the token to it and answered 500."""
    file_id = sweep_world["ids"]["attachment_id"]
    for url in ("/s/%00/", f"/s/%00/files/{file_id}/", "/s/a%00b/", "/v1/responses/resp_%00"):
        for name in ("anonymous", "api key"):
            response = sweep_world["clients"][name].get(url)
            assert response.status_code == 400, (name, url, response.status_code)
    assert_error_shape(sweep_world["clients"]["api key"].get("/v1/responses/resp_%00"), 400)


def test_the_admins_view_on_site_redirect_with_an_unreadable_id_is_a_404(sweep_world):
    """Django's own shortcut let a UUID model's ValidationError through (a 500 for staff)."""
    content_type = ContentType.objects.get_for_model(Conversation)
    for object_id in ("1", *HOSTILE_VALUES.values()):
        response = sweep_world["clients"]["staff"].get(f"/admin/r/{content_type.pk}/{object_id}/")
        assert response.status_code in (400, 404), (object_id[:20], response.status_code)


def test_every_route_with_a_string_part_is_swept():
    """The sweep below walks the resolver, so a new route is in it; this only says the walk finds the share
    routes, /v1's own and the password reset link (and the admin's)."""
    routes = string_routes()
    for expected in ("s/<str:token>/", "s/<str:token>/files/<uuid:attachment_id>/", "v1/responses/<str:response_id>",
                     "accounts/reset/<uidb64>/<token>/", "v1/^.*$"):
        assert expected in routes


def callers(route: str, *, everyone: bool) -> list[str]:
    """Who sends the sweep's requests to a route: staff for the admin; else the owner by API key (the API) or
    session (pages), and with `everyone` (or on the public share and account pages) anonymous callers too."""
    if route.startswith("admin/"):
        return ["staff"]
    if route.startswith(("api/", "v1/")):
        return ["anonymous", "api key", "session"] if everyone else ["api key"]
    return ["anonymous", "session"] if everyone or route.startswith(("s/", "accounts/")) else ["session"]


@pytest.mark.parametrize("value", list(HOSTILE_VALUES))
def test_hostile_values_in_every_string_path_part_are_4xx(sweep_world, fake_upstream, value):
    hostile = HOSTILE_VALUES[value]
    for route in string_routes():
        url = sweep_url(route, sweep_world["ids"], hostile)
        for name in callers(route, everyone=True):
            for method in ("get", "post"):
                response = getattr(sweep_world["clients"][name], method)(url)
                assert_not_a_server_error(response, (name, url, method))
                if value == "NUL":
                    assert response.status_code == 400, (name, url, method, response.status_code)
    assert fake_upstream.chat_requests == []


@pytest.mark.parametrize("value", list(HOSTILE_VALUES))
def test_hostile_values_in_every_query_parameter_are_4xx(sweep_world, fake_upstream, value):
    """Every parameter a view reads, all in one request per route and caller (one request each would be some
    thousands; test_bad_query_parameters_are_4xx takes the API's parameters one by one)."""
    query = "&".join(f"{parameter}={HOSTILE_VALUES[value]}" for parameter in QUERY_PARAMETERS)
    for route, _ in all_routes():
        url = sweep_url(route, sweep_world["ids"], None)
        for name in callers(route, everyone=False):
            response = sweep_world["clients"][name].get(f"{url}?{query}")
            assert_not_a_server_error(response, (name, url, value))
            if value == "NUL":
                assert response.status_code == 400, (name, url, response.status_code)
    assert fake_upstream.chat_requests == []
