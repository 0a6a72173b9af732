"""Ownership sweep: every URL pattern that takes an id, used by another user, is a 404 and changes nothing.

The URL patterns are enumerated from Django's resolver: a new pattern with an id that this file does
not know fails `test_every_id_route_is_covered` until it is added to OWNED_ROUTES (or, for the admin,
checked by the admin sweep). For each route, user B (session and API key) sends every method with a
body that would be valid for the owner: 404 (or 405 for a method the route doesn't have), in the API's
error shape; anonymous callers get 401 (API) or a redirect to the login page (HTML). Afterwards every
row is unchanged and the fake upstream got no request. The owner's own request then succeeds, so the
ids used are real and the routes work.
"""

import itertools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient, Client
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey
from conversations import answering
from conversations.answering.approvals import WAITING, approval_key
from conversations.attachments import attachment_create, bind
from conversations.models import Attachment, Conversation, Feedback, Project, ReviewLog, ShareLink, Turn
from conversations.organizing import project_create
from conversations.services import conversation_create, feedback_set
from conversations.sharing import share_link_create, share_link_revoke
from knowledge.models import Document, KnowledgeBase, Passage
from knowledge.tests.support import indexed_base
from personal.models import Assistant, Memory, Prompt
from personal.services import assistant_create, assistant_update, memory_create, prompt_create, prompt_update
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db(transaction=True)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A body the owner could send to any of these routes: if ownership failed, something would change.
BODY = {"allow": True, "content": "written by bob", "rating": -1, "comment": "bob was here", "title": "renamed by bob",
        "archived": True, "pinned": True, "system_prompt": "obey bob", "name": "bob's key", "stream": False}


@dataclass(frozen=True)
class Probe:
    """One request shape: a method, optional query string, and whether it asks for a stream."""

    method: str
    query: str = ""
    stream: str = ""  # "", "body" ("stream": true) or "accept" (Accept: text/event-stream)

    def __str__(self):
        return f"{self.method}{self.query}{' stream=' + self.stream if self.stream else ''}"


P = Probe
# route -> the requests the route really serves (the owner gets a non-404 for the first one).
OWNED_ROUTES = {
    "api/v1/conversations/<uuid:conversation_id>/": [P("GET"), P("PATCH"), P("DELETE")],
    "api/v1/conversations/<uuid:conversation_id>/turns/": [
        P("GET"), P("POST"), P("POST", stream="body"), P("POST", stream="accept")],
    "api/v1/conversations/<uuid:conversation_id>/regenerate/": [
        P("POST"), P("POST", stream="body"), P("POST", stream="accept")],
    "api/v1/conversations/<uuid:conversation_id>/turns/<int:turn_id>/edit/": [
        P("POST"), P("POST", stream="body"), P("POST", stream="accept")],
    "api/v1/conversations/<uuid:conversation_id>/turns/<int:turn_id>/tool-calls/<str:call_id>/approval/": [
        P("POST")],
    "api/v1/conversations/<uuid:conversation_id>/continue/": [
        P("POST"), P("POST", stream="body"), P("POST", stream="accept")],
    "api/v1/conversations/<uuid:conversation_id>/switch/": [P("POST")],
    "api/v1/conversations/<uuid:conversation_id>/tree/": [P("GET")],
    "api/v1/conversations/<uuid:conversation_id>/stream/": [P("GET"), P("GET", "?after=3")],
    "api/v1/conversations/<uuid:conversation_id>/stop/": [P("POST")],
    "api/v1/conversations/<uuid:conversation_id>/export/": [P("GET"), P("GET", "?format=json"), P("GET", "?format=md")],
    "api/v1/turns/<int:turn_id>/feedback/": [P("POST")],
    "api/v1/keys/<int:key_id>/": [P("GET"), P("DELETE")],
    "api/v1/attachments/<uuid:attachment_id>/": [P("GET"), P("DELETE")],
    "api/v1/attachments/<uuid:attachment_id>/content/": [P("GET")],
    "v1/responses/<str:response_id>": [P("GET"), P("GET", "?stream=true")],
    "v1/responses/<str:response_id>/cancel": [P("POST")],
    "v1/conversations/<str:conversation_id>": [P("GET"), P("POST"), P("DELETE")],
    "v1/conversations/<str:conversation_id>/items": [P("GET"), P("GET", "?order=asc&limit=1"), P("POST")],
    "v1/conversations/<str:conversation_id>/items/<str:item_id>": [P("GET"), P("DELETE")],
    "accounts/keys/<int:key_id>/revoke/": [P("POST")],
    "c/<uuid:conversation_id>/": [P("GET")],
    "c/<uuid:conversation_id>/turns/": [P("GET", "?before=999999"), P("GET")],
    "c/<uuid:conversation_id>/turns/<int:turn_id>/": [P("GET")],
    "c/<uuid:conversation_id>/turns/<int:turn_id>/feedback/": [P("POST")],
    "c/<uuid:conversation_id>/share/": [P("POST")],
    "c/<uuid:conversation_id>/share/current/": [P("GET")],
    "shares/<int:link_id>/revoke/": [P("POST")],
    "c/<uuid:conversation_id>/organize/": [P("POST")],
    "folders/<int:folder_id>/delete/": [P("POST")],
    "projects/<int:project_id>/": [P("GET"), P("POST")],
    "projects/<int:project_id>/documents/": [P("POST")],
    "projects/<int:project_id>/documents/<int:document_id>/delete/": [P("POST")],
    "api/v1/projects/<int:project_id>/": [P("GET"), P("PATCH"), P("DELETE"), P("DELETE", "?delete_chats=true")],
    "api/v1/memories/<int:memory_id>/": [P("GET"), P("PATCH"), P("DELETE")],
    "personal/memories/<int:memory_id>/": [P("POST")],
    "personal/memories/<int:memory_id>/delete/": [P("POST")],
    "api/v1/prompts/<int:prompt_id>/": [P("GET"), P("PATCH"), P("DELETE")],
    "personal/prompts/<int:prompt_id>/": [P("POST")],
    "personal/prompts/<int:prompt_id>/delete/": [P("POST")],
    "api/v1/knowledge-bases/<int:base_id>/": [P("GET"), P("PATCH"), P("DELETE")],
    "api/v1/knowledge-bases/<int:base_id>/documents/": [P("GET")],
    "api/v1/knowledge-bases/<int:base_id>/search/": [P("GET", "?q=alice"), P("GET")],
    "api/v1/knowledge-documents/<int:document_id>/": [P("GET"), P("DELETE")],
    "api/v1/knowledge-documents/<int:document_id>/passages/": [P("GET")],
    "api/v1/knowledge-passages/<int:passage_id>/": [P("GET")],
    "api/v1/conversations/<uuid:conversation_id>/knowledge-bases/": [P("GET"), P("PUT")],
    "api/v1/projects/<int:project_id>/knowledge-bases/": [P("GET"), P("PUT")],
    "api/v1/projects/<int:project_id>/documents/": [P("GET"), P("POST")],
    "knowledge/<int:base_id>/": [P("GET")],
    "knowledge/<int:base_id>/documents/": [P("POST")],
    "knowledge/<int:base_id>/delete/": [P("POST")],
    "knowledge/documents/<int:document_id>/delete/": [P("POST")],
    "knowledge/passages/<int:passage_id>/": [P("GET")],
    "api/v1/assistants/<int:assistant_id>/": [P("GET"), P("PATCH"), P("DELETE")],
    "personal/assistants/<int:assistant_id>/": [P("POST")],
    "personal/assistants/<int:assistant_id>/delete/": [P("POST")],
    # By slug: a private assistant's slug is as good as unknown to anyone else (a shared one is theirs to use).
    "api/v1/assistants/use/<slug:slug>/": [P("GET")],
    "api/v1/assistants/use/<slug:slug>/conversations/": [P("POST")],
}
# Id-taking routes that are not per-user objects, and why: exact routes, and a DRF regex route by the part before
# its regex (a "^"), so that a new route below a listed one is not covered by accident.
NOT_OWNED = {
    "accounts/reset/<uidb64>/<token>/": "password reset link: checked by Django's signed token, not an owner",
    "v1/^models/": "a model name: the same list for every user (GET /v1/models)",
    "s/<str:token>/": "a share link's token: public by design; only live links open (test_sharing.py)",
}
# Public routes that take an owned object's id behind a share link's token: anyone may call them, and only the
# link's own objects come out (test_shared_files_open_only_through_their_own_live_link).
PUBLIC_ROUTES = {
    "s/<str:token>/files/<uuid:attachment_id>/": "a file of a share link's snapshot, when the link includes files",
}
ADMIN_PREFIX = "admin/"  # staff only: checked by test_admin_id_routes_refuse_non_staff


def _listed_as(known: str, route: str) -> bool:
    return route == known or ("^" in known and route.startswith(known))


def not_owned(route: str) -> bool:
    return any(_listed_as(known, route) for known in NOT_OWNED)


def all_routes():
    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            else:
                yield route, pattern

    return list(walk(get_resolver().url_patterns))


def id_routes():
    return [route for route, pattern in all_routes() if pattern.pattern.regex.groupindex]


def test_every_id_route_is_covered():
    uncovered = [
        route for route in id_routes()
        if route not in OWNED_ROUTES and route not in PUBLIC_ROUTES and not not_owned(route)
        and not route.startswith(ADMIN_PREFIX)
    ]
    assert uncovered == [], f"add these id routes to OWNED_ROUTES (or PUBLIC_ROUTES) in {__file__}: {uncovered}"
    stale = [route for route in [*OWNED_ROUTES, *PUBLIC_ROUTES] if route not in id_routes()]
    stale += [known for known in NOT_OWNED if not any(_listed_as(known, route) for route in id_routes())]
    assert stale == [], f"these routes no longer exist: {stale}"


@pytest.fixture
def world(fake_upstream, user, other_user, password, settings, make_user):
    """Alice's conversation with a complete exchange (cut at its length, so that it can be continued), feedback and
    an API key; Bob's own conversation and key. Alice's prompt and assistant are shared with a group of hers that
    Bob is not in (her assistant searches her base): a group he is not in gives him nothing."""
    conversation = conversation_create(owner=user, title="alice's chat", system_prompt="alice's prompt")
    answer_tokens, settings.CHAT_MAX_ANSWER_TOKENS = settings.CHAT_MAX_ANSWER_TOKENS, 3
    run = answering.answer(conversation=conversation, user=user, content="alice's private question")
    settings.CHAT_MAX_ANSWER_TOKENS = answer_tokens
    feedback_set(turn=run.assistant_turn, rating=1, comment="alice's comment")
    alice_key, _ = ApiKey.generate(user=user, name="alice's key")
    alice_file = attachment_create(owner=user, upload=SimpleUploadedFile("alice.txt", b"alice's private notes"))
    bob_conversation = conversation_create(owner=other_user, title="bob's chat")
    bob_run = answering.answer(conversation=bob_conversation, user=other_user, content="bob's question")
    _, bob_raw_key = ApiKey.generate(user=other_user, name="bob's key")
    alice_link = share_link_create(conversation=conversation, display_name="alice")
    bob_link = share_link_create(conversation=bob_conversation)
    alice_folder = project_create(owner=user, name="alice's folder")
    bob_folder = project_create(owner=other_user, name="bob's folder")
    alice_memory = memory_create(owner=user, content="alice's memory")
    bob_memory = memory_create(owner=other_user, content="bob's memory")
    alice_prompt = prompt_create(owner=user, command="alice", title="alice's prompt", content="alice's {{text}}")
    bob_prompt = prompt_create(owner=other_user, command="bob", title="bob's prompt", content="bob's {{text}}")
    # A tool call of each answer waits for approval (as while the answer is paused): Bob cannot answer Alice's.
    cache.set(approval_key(run.assistant_turn.pk, "call_alice"), WAITING)
    cache.set(approval_key(bob_run.assistant_turn.pk, "call_bob"), WAITING)
    alice_base = indexed_base(user, {"alice.md": b"alice's private knowledge"}, name="alice's base")
    alice_document = Document.objects.get(base=alice_base)
    bob_base = indexed_base(other_user, {"bob.md": b"bob's knowledge"}, name="bob's base")
    bob_document = Document.objects.get(base=bob_base)
    alice_base.projects.add(alice_folder)  # each base is one of its owner's project's files
    bob_base.projects.add(bob_folder)
    alice_assistant = assistant_create(owner=user, name="alice's assistant", instructions="alice's instructions")
    bob_assistant = assistant_create(owner=other_user, name="bob's assistant", instructions="bob's instructions")
    alices_team = Group.objects.create(name="alice's team")
    alices_team.user_set.add(user, make_user("carol"))
    prompt_update(prompt=alice_prompt, groups=[alices_team.pk])
    assistant_update(assistant=alice_assistant, groups=[alices_team.pk], knowledge_bases=[alice_base.pk])
    fake_upstream.requests.clear()
    return {
        "alice": {"call_id": "call_alice",
                  "conversation_id": conversation.pk, "turn_id": run.assistant_turn.pk, "key_id": alice_key.pk,
                  "message_id": run.user_turn.pk, "link_id": alice_link.pk,
                  "folder_id": alice_folder.pk, "project_id": alice_folder.pk, "attachment_id": alice_file.pk,
                  "memory_id": alice_memory.pk,
                  "prompt_id": alice_prompt.pk, "item_id": f"msg_{run.user_turn.pk}",
                  "base_id": alice_base.pk, "document_id": alice_document.pk,
                  "passage_id": alice_document.passages.get().pk,
                  "assistant_id": alice_assistant.pk, "slug": alice_assistant.slug,
                  "response_id": f"resp_{run.assistant_turn.pk}"},
        "bob": {"call_id": "call_bob",
                "conversation_id": bob_conversation.pk, "turn_id": bob_run.assistant_turn.pk, "key_id": None,
                "message_id": bob_run.user_turn.pk, "link_id": bob_link.pk,
                "folder_id": bob_folder.pk, "project_id": bob_folder.pk, "attachment_id": None,
                "memory_id": bob_memory.pk,
                "prompt_id": bob_prompt.pk, "item_id": f"msg_{bob_run.user_turn.pk}",
                "base_id": bob_base.pk, "document_id": bob_document.pk,
                "passage_id": bob_document.passages.get().pk,
                "assistant_id": bob_assistant.pk, "slug": bob_assistant.slug,
                "response_id": f"resp_{bob_run.assistant_turn.pk}"},
        "bob_key": bob_raw_key,
    }


def ids_for(route: str, ids: dict) -> dict:
    """The ids a route takes: edit/ takes a message (a user turn) where the others take an answer."""
    if route.endswith("/edit/"):
        return {**ids, "turn_id": ids["message_id"]}
    return ids


def snapshot():
    """Every row a foreign request could change (API key use times aside)."""
    return (
        list(Conversation.objects.order_by("pk").values()),
        list(Turn.objects.order_by("pk").values()),
        list(Feedback.objects.order_by("pk").values()),
        list(ApiKey.objects.order_by("pk").values("pk", "user_id", "name", "prefix", "revoked_at", "expires_at")),
        ReviewLog.objects.count(),
        list(ShareLink.objects.order_by("pk").values()),
        list(Project.objects.order_by("pk").values()),
        list(Attachment.objects.order_by("pk").values()),
        list(Memory.objects.order_by("pk").values()),
        list(Prompt.objects.order_by("pk").values()),
        list(KnowledgeBase.objects.order_by("pk").values()),
        list(KnowledgeBase.conversations.through.objects.order_by("pk").values()),
        list(KnowledgeBase.projects.through.objects.order_by("pk").values()),
        list(Document.objects.order_by("pk").values()),
        list(Passage.objects.order_by("pk").values()),
        list(Assistant.objects.order_by("pk").values()),
        list(Prompt.groups.through.objects.order_by("pk").values()),
        list(Assistant.groups.through.objects.order_by("pk").values()),
        list(Assistant.knowledge_bases.through.objects.order_by("pk").values()),
    )


def fill(route: str, values: dict) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), route)


def send(client, probe: Probe, url: str, turn_id: int):
    # `turn_id` in the body (switch/, regenerate/) is always Alice's: Bob aims at her turn in every way.
    body = dict(BODY, turn_id=turn_id, stream=probe.stream == "body")
    extra = {"HTTP_ACCEPT": "text/event-stream"} if probe.stream == "accept" else {}
    method = getattr(client, probe.method.lower())
    if probe.method == "GET":
        return method(url + probe.query, **extra)
    return method(url + probe.query, data=body, content_type="application/json", **extra) if isinstance(
        client, Client) else method(url + probe.query, data=body, format="json", **extra)


def foreign_urls(route: str, ids: dict) -> list[str]:
    """The route with Alice's ids, and for routes with several ids every mix with at least one of Alice's."""
    names = re.findall(r"<(?:\w+:)?(\w+)>", route)
    urls = []
    for owners in itertools.product(("alice", "bob"), repeat=len(names)):
        if "alice" not in owners:
            continue
        values = {name: ids[owner][name] for name, owner in zip(names, owners, strict=True)}
        if None not in values.values():
            urls.append(fill(route, values))
    return urls


def probes_for(route: str) -> list[Probe]:
    """The route's own requests, plus every other method (which must not succeed either)."""
    served = OWNED_ROUTES[route]
    return served + [Probe(method) for method in METHODS if method not in {p.method for p in served}]


@pytest.mark.parametrize("route", list(OWNED_ROUTES))
def test_another_users_ids_are_404_and_change_nothing(world, fake_upstream, user, other_user, route):
    is_api = route.startswith(("api/", "v1/"))
    session = Client()
    session.force_login(other_user)
    clients = {} if route.startswith("v1/") else {"session": session}  # /v1 takes API keys only
    if is_api:
        key_client = APIClient()
        key_client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['bob_key']}")
        clients["api key"] = key_client
    before = snapshot()

    for url in foreign_urls(route, {owner: ids_for(route, world[owner]) for owner in ("alice", "bob")}):
        for probe in probes_for(route):
            for name, client in clients.items():
                response = send(client, probe, url, world["alice"]["turn_id"])
                where = f"bob ({name}) {probe} {url}"
                served = probe in OWNED_ROUTES[route]
                assert response.status_code == 404 if served else response.status_code in (404, 405), (
                    where, response.status_code, response.content[:300])
                if is_api:
                    assert_error_shape(response, (404, 405))
                assert b"alice" not in response.content, where

    assert snapshot() == before
    assert cache.get(approval_key(world["alice"]["turn_id"], "call_alice")) == WAITING  # still hers to answer
    assert fake_upstream.chat_requests == []

    # The same request from Alice is not a 404: the ids are real and the route works.
    owner = Client()
    owner.force_login(user)
    if route.startswith("v1/"):  # /v1 takes API keys only
        owner = APIClient()
        owner.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.generate(user=user, name='alice again')[1]}")
    alice = ids_for(route, world["alice"])
    response = send(owner, OWNED_ROUTES[route][0], fill(route, alice), world["alice"]["turn_id"])
    assert response.status_code < 400, (route, response.status_code, response.content[:300])


# The routes that reach a chat, a turn of it or a file sent in it: an expired temporary chat's are all 404 for their
# owner too.
CHAT_ROUTES = [
    route for route in OWNED_ROUTES
    if set(re.findall(r"<(?:\w+:)?(\w+)>", route)) <= {"conversation_id", "turn_id", "attachment_id", "response_id"}
]


@pytest.fixture
def expired_temporary(fake_upstream, user):
    """Alice's temporary chat past its time, not yet deleted: an exchange, feedback, a file sent in it."""
    conversation = conversation_create(owner=user, title="alice's temporary chat")
    attachment = attachment_create(owner=user, upload=SimpleUploadedFile("alice.txt", b"alice's temporary notes"))
    run = answering.answer(conversation=conversation, user=user, content="alice's temporary question",
                    attachment_ids=[attachment.pk])
    feedback_set(turn=run.assistant_turn, rating=1, comment="alice's comment")
    Conversation.objects.filter(pk=conversation.pk).update(delete_after=timezone.now() - timedelta(seconds=1))
    fake_upstream.requests.clear()
    return {"conversation_id": conversation.pk, "turn_id": run.assistant_turn.pk, "message_id": run.user_turn.pk,
            "attachment_id": attachment.pk, "response_id": f"resp_{run.assistant_turn.pk}"}


@pytest.mark.parametrize("route", CHAT_ROUTES)
def test_an_expired_temporary_chat_is_404_on_every_route_for_its_owner(expired_temporary, fake_upstream, user, route):
    """Its time is up: the owner's own requests (session and API key, every method and stream) find nothing, and
    nothing changes, exactly as for another user's ids."""
    session = Client()
    session.force_login(user)
    key_client = APIClient()
    key_client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.generate(user=user, name='alice')[1]}")
    clients = {"api key": key_client} if route.startswith("v1/") else {"session": session, "api key": key_client}
    if not route.startswith(("api/", "v1/")):
        del clients["api key"]
    before = snapshot()
    url = fill(route, ids_for(route, expired_temporary))
    for probe in probes_for(route):
        for name, client in clients.items():
            response = send(client, probe, url, expired_temporary["turn_id"])
            where = f"alice ({name}) {probe} {url}"
            served = probe in OWNED_ROUTES[route]
            assert response.status_code == 404 if served else response.status_code in (404, 405), (
                where, response.status_code, response.content[:300])
            if route.startswith(("api/", "v1/")):
                assert_error_shape(response, (404, 405))
            assert b"temporary" not in response.content, where
    assert snapshot() == before
    assert fake_upstream.chat_requests == []


@pytest.mark.parametrize("route", list(OWNED_ROUTES))
def test_anonymous_callers_are_refused(world, fake_upstream, route):
    before = snapshot()
    url = fill(route, world["alice"])
    for probe in probes_for(route):
        response = send(Client(), probe, url, world["alice"]["turn_id"])
        if route.startswith(("api/", "v1/")):
            assert_error_shape(response, (401, 405) if probe not in OWNED_ROUTES[route] else 401)
        elif probe in OWNED_ROUTES[route]:
            assert response.status_code == 302, (probe, url, response.status_code)
            assert response["Location"].startswith("/accounts/login/"), response["Location"]
        else:
            assert response.status_code in (302, 405), (probe, url, response.status_code)
    assert snapshot() == before
    assert fake_upstream.chat_requests == []


def test_shared_files_open_only_through_their_own_live_link(world, fake_upstream, user, other_user):
    """The public file route aimed every way: each link's token with each file's id, by anyone (anonymous, Bob,
    Alice), with every method. Only a live link that includes files opens a file, and only one of its snapshot."""
    [route] = PUBLIC_ROUTES
    sent = {}
    for owner, name in ((user, "alice"), (other_user, "bob")):
        turn = Turn.objects.get(pk=world[name]["message_id"])
        upload = SimpleUploadedFile(f"{name}.txt", f"{name}'s sent file".encode())
        sent[name] = attachment_create(owner=owner, upload=upload)
        bind([sent[name]], turn)
    alice_chat = Conversation.objects.get(pk=world["alice"]["conversation_id"])
    links = {
        "alice's link with files": share_link_create(conversation=alice_chat, include_files=True),
        "alice's link without files": share_link_create(conversation=alice_chat),
        "alice's revoked link": share_link_revoke(link=share_link_create(conversation=alice_chat, include_files=True)),
        "bob's link with files": share_link_create(
            conversation=Conversation.objects.get(pk=world["bob"]["conversation_id"]), include_files=True),
    }
    files = {
        "alice's sent file": sent["alice"],
        "alice's unsent file": Attachment.objects.get(pk=world["alice"]["attachment_id"]),
        "bob's sent file": sent["bob"],
    }
    opens = {("alice's link with files", "alice's sent file"), ("bob's link with files", "bob's sent file")}
    clients = {"anonymous": Client(), "bob": Client(), "alice": Client()}
    clients["bob"].force_login(other_user)
    clients["alice"].force_login(user)
    before = snapshot()

    for (link_name, link), (file_name, attachment) in itertools.product(links.items(), files.items()):
        url = fill(route, {"token": link.token, "attachment_id": attachment.pk})
        for who, client in clients.items():
            for method in METHODS:
                response = getattr(client, method.lower())(url)
                where = (who, method, link_name, file_name, response.status_code)
                if method != "GET":
                    assert response.status_code == 405, where
                elif (link_name, file_name) in opens:
                    assert response.status_code == 200, where
                    assert b"".join(response.streaming_content) == attachment.file.open("rb").read(), where
                else:
                    assert response.status_code == 404, where
                    assert b"sent file" not in response.content, where

    assert snapshot() == before
    assert fake_upstream.chat_requests == []


@pytest.mark.parametrize("how", ["header", "metadata"])
@pytest.mark.parametrize("stream", [False, True])
def test_openai_continuation_of_another_users_conversation_is_404(world, fake_upstream, how, stream):
    before = snapshot()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['bob_key']}")
    body = {"model": "fake-model", "stream": stream, "messages": [{"role": "user", "content": "continue it"}]}
    extra = {}
    alice_conversation = str(world["alice"]["conversation_id"])
    if how == "header":
        extra["HTTP_X_CHATSITE_CONVERSATION"] = alice_conversation
    else:
        body["metadata"] = {"chatsite_conversation_id": alice_conversation}
    response = client.post("/v1/chat/completions", data=body, format="json", **extra)
    assert_error_shape(response, 404)
    assert snapshot() == before
    assert fake_upstream.chat_requests == []

    # A malformed or unknown id is a 4xx as well, never a new conversation.
    for bad in ("not-a-uuid", str(uuid.uuid4()), "' OR 1=1 --"):
        if how == "header":
            extra["HTTP_X_CHATSITE_CONVERSATION"] = bad
        else:
            body["metadata"] = {"chatsite_conversation_id": bad}
        response = client.post("/v1/chat/completions", data=body, format="json", **extra)
        assert_error_shape(response, (400, 404))
    assert snapshot() == before
    assert fake_upstream.chat_requests == []


def _admin_values(route: str, world) -> dict:
    ids = world["alice"]
    model_ids = {"conversation": ids["conversation_id"], "turn": ids["turn_id"], "apikey": ids["key_id"]}
    model = next((name for name in model_ids if f"/{name}/" in route), None)
    object_id = model_ids[model] if model is not None else 1
    return {"object_id": object_id, "id": 1, "content_type_id": 1, "app_label": "conversations",
            "url": "anything", "attachment_id": ids["attachment_id"]}


def test_admin_id_routes_refuse_non_staff(world, fake_upstream, other_user):
    routes = [route for route in id_routes() if route.startswith(ADMIN_PREFIX)]
    assert routes, "the admin registers id routes"
    before = snapshot()
    bob = Client()
    bob.force_login(other_user)
    for route in routes:
        path = route[len(ADMIN_PREFIX):]
        url = "/" + ADMIN_PREFIX + re.sub(
            r"\^|\$|\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>",
            lambda m: str(_admin_values(route, world)[m.group(1) or m.group(2)]) if (m.group(1) or m.group(2))
            else "",
            path,
        ).replace(".*", "")
        for client in (Client(), bob):
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                assert response.status_code == 302, (url, method, response.status_code)
                assert response["Location"].startswith("/admin/login/"), (url, response["Location"])
    assert snapshot() == before
    assert fake_upstream.chat_requests == []


async def test_another_users_ids_are_404_on_the_async_streaming_path(world, fake_upstream):
    """The streamed answer routes run as coroutines under ASGI: the same refusals through Django's AsyncClient."""
    client = AsyncClient()
    auth = {"Authorization": f"Bearer {world['bob_key']}", "Accept": "text/event-stream"}
    before = await sync_to_async(snapshot)()
    alice = world["alice"]
    for route in ("api/v1/conversations/<uuid:conversation_id>/turns/",
                  "api/v1/conversations/<uuid:conversation_id>/regenerate/",
                  "api/v1/conversations/<uuid:conversation_id>/turns/<int:turn_id>/edit/"):
        response = await client.post(fill(route, ids_for(route, alice)), json.dumps({"content": "x", "stream": True}),
                                     content_type="application/json", headers=auth)
        assert_error_shape(response, 404)
    response = await client.post("/v1/chat/completions", json.dumps({
        "model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "x"}],
        "metadata": {"chatsite_conversation_id": str(alice["conversation_id"])},
    }), content_type="application/json", headers=auth)
    assert_error_shape(response, 404)
    assert await sync_to_async(snapshot)() == before
    assert fake_upstream.chat_requests == []


# The caller's own pages that take no id: each shows its caller's data only, and anonymous callers go to the login.
OWN_PAGES = ["account/usage/", "account/reviews/"]


@pytest.mark.parametrize("route", OWN_PAGES)
def test_own_pages_show_only_the_callers_data(world, fake_upstream, user, other_user, route):
    from conversations.services.quota import usage_add

    chat = Conversation.objects.filter(owner=user, delete_after__isnull=True).first()
    ReviewLog.objects.create(conversation=chat, reviewer=other_user)
    usage_add(user.pk, timezone.localdate() - timedelta(days=1), prompt_tokens=4242, completion_tokens=0)
    anonymous = Client().get(f"/{route}")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    bob, alice = Client(), Client()
    bob.force_login(other_user)
    alice.force_login(user)
    theirs = bob.get(f"/{route}").content.decode()
    mine = alice.get(f"/{route}").content.decode()
    assert "4242" not in theirs and str(chat.pk) not in theirs
    assert ("4242" in mine) if route == "account/usage/" else (str(chat.pk) in mine)
