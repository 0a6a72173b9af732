"""Web search as a server tool, end to end over real HTTP: the fake upstream calls `web_search`, the server asks
a fake SearXNG on 127.0.0.1, reads the result pages through the outbound wrapper, stores the step, and the page
shows the answer's sources as links. Also: who gets the tool (the chat's switch, the site's setting)."""

import asyncio
import json
import re

import pytest
from django.urls import reverse

from conversations import answering
from conversations.answering import search, tools
from conversations.models import Conversation, Turn
from conversations.selectors import turn_path
from conversations.services import conversation_create
from conversations.tests.api_helpers import assert_error
from conversations.tests.fake_searxng import FakeSearXNG

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def searxng():
    server = FakeSearXNG().start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def search_site(settings, fake_upstream, searxng):
    settings.CHAT_TOOL_MODELS = ["fake-model"]
    settings.CHAT_SERVER_TOOLS = ["calculator"]
    settings.CHAT_SEARCH_URL = searxng.base_url
    settings.CHAT_SEARCH_RESULTS = 5
    # The fake SearXNG and its pages are on 127.0.0.1: only its own port is let through.
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{searxng.port}"]
    fake_upstream.behaviour.tool_script = [("web_search", json.dumps({"query": "do otters hold hands"}))]
    fake_upstream.behaviour.reply = "Yes, they do [1]."
    return fake_upstream


def ask(conversation, user, content):
    async def go():
        answer = await answering.start(conversation=conversation, user=user, content=content)
        return [entry async for entry in answer.follow()]

    return asyncio.run(go())


def tool_result(conversation) -> str:
    conversation.refresh_from_db()
    return next(t.content for t in turn_path(conversation) if t.role == "tool")


def test_the_answer_cites_the_pages_read_and_the_page_links_them(search_site, searxng, user, authenticated_client):
    conversation = conversation_create(owner=user)
    conversation.web_search = True
    conversation.save()
    entries = ask(conversation, user, "Do otters hold hands?")

    assert searxng.queries == ["do otters hold hands"] and searxng.page_requests == ["otters"]
    result = tool_result(conversation)
    assert result.startswith(f"[1] All about otters\nURL: {searxng.base_url}/pages/otters\n")
    assert "Sea otters hold hands while they sleep & drift." in result
    assert "never read" not in result and "Menu" not in result and "color" not in result
    # The model read the numbered source before answering; the stored answer is its reply.
    assert search_site.chat_requests[1].messages[-1]["content"] == result
    branch = turn_path(conversation)
    assert branch[-1].content == "Yes, they do [1]." and branch[-1].status == Turn.Status.COMPLETE
    assert [e.name for e in entries].count("tool_result") == 1

    url = f"{searxng.base_url}/pages/otters"
    link = (f'<li value="1"><a href="{url}" target="_blank" rel="noopener noreferrer nofollow">All about otters'
            f"</a></li>")
    page = authenticated_client.get(reverse("conversations:detail", args=[conversation.pk])).content.decode()
    assert page.count(link) == 1
    detail = authenticated_client.get(
        reverse("conversations:turn", args=[conversation.pk, branch[-1].pk])
    ).content.decode()
    assert detail.count(link) == 1
    # The tool step itself lists no sources: they belong to the answer.
    step = authenticated_client.get(
        reverse("conversations:turn", args=[conversation.pk, branch[2].pk])
    ).content.decode()
    assert "turn-sources" not in step


@pytest.mark.parametrize("target", ["http://127.0.0.1:{other}/pages/otters",
                                    "http://169.254.169.254/latest/meta-data/"])
def test_a_result_page_redirecting_to_a_private_address_is_refused(search_site, searxng, user, target):
    other = FakeSearXNG().start_in_thread()  # a real server that would answer if the hop were followed
    try:
        searxng.redirect_to = target.format(other=other.port)
        searxng.results = [("/pages/redirect", "Sneaky"), ("/pages/otters", "All about otters")]
        conversation = conversation_create(owner=user)
        conversation.web_search = True
        conversation.save()
        ask(conversation, user, "Otters?")
        assert other.page_requests == [] and other.queries == []
    finally:
        other.stop()
    result = tool_result(conversation)
    assert "[1] Sneaky" in result
    assert "(The page itself was not read: " in result and "does not fetch from" in result
    assert "Sea otters hold hands" in result  # the other source is still read


def test_a_50_mb_page_is_cut_and_a_slow_page_is_told_to_the_model(search_site, searxng, user, monkeypatch):
    monkeypatch.setattr(search, "PAGE_SECONDS", 0.5)
    searxng.results = [("/pages/huge", "Huge"), ("/pages/slow", "Slow")]
    conversation = conversation_create(owner=user)
    conversation.web_search = True
    conversation.save()
    ask(conversation, user, "Otters?")
    result = tool_result(conversation)
    huge, slow = result.split("\n\n[2] ")
    assert huge.endswith(" [...]") and len(huge) < search.EXCERPT_CHARS + 200
    assert "otter otter" in huge
    assert slow.startswith("Slow\n") and "(The page itself was not read: no complete answer within 0.5 s.)" in slow


def test_a_search_service_that_is_down_is_the_models_error_result(search_site, user, settings):
    settings.CHAT_SEARCH_URL = "http://127.0.0.1:9/"  # discard: nothing listens there
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1:9"]
    conversation = conversation_create(owner=user)
    conversation.web_search = True
    conversation.save()
    ask(conversation, user, "Otters?")
    assert tool_result(conversation).startswith("Error: the search service did not answer: could not connect")
    conversation.refresh_from_db()
    assert turn_path(conversation)[-1].status == Turn.Status.COMPLETE


def test_results_that_are_not_web_links_are_dropped(search_site, searxng, user):
    searxng.results = [("javascript:alert(1)", "Script"), ("file:///etc/passwd", "File"),
                       ("/pages/otters", "All about otters")]
    conversation = conversation_create(owner=user)
    conversation.web_search = True
    conversation.save()
    ask(conversation, user, "Otters?")
    result = tool_result(conversation)
    assert re.findall(r"^\[(\d)\] (.*)$", result, re.MULTILINE) == [("1", "All about otters")]


@pytest.mark.parametrize("switch, url, offered", [
    (True, "http://search.example", True), (False, "http://search.example", False), (True, "", False),
])
def test_web_search_is_offered_only_when_the_chat_and_the_site_allow_it(settings, user, switch, url, offered):
    settings.CHAT_TOOL_MODELS = ["fake-model"]
    settings.CHAT_SERVER_TOOLS = ["calculator", "web_search"]  # naming it here does not bypass the switches
    settings.CHAT_SEARCH_URL = url
    conversation = conversation_create(owner=user)
    conversation.web_search = switch
    assert ("web_search" in tools.offered("fake-model", conversation)) is offered
    assert "calculator" in tools.offered("fake-model", conversation)
    assert "web_search" not in tools.offered("fake-model")
    assert tools.offered("other-model", conversation) == {}


def test_a_chat_without_the_switch_is_not_offered_the_tool(search_site, user):
    conversation = conversation_create(owner=user)
    ask(conversation, user, "Otters?")
    offered = {t["function"]["name"] for t in search_site.chat_requests[0].body["tools"]}
    assert offered == {"calculator"}


def test_page_text_keeps_blocks_and_drops_scripts():
    html = "<div>One<br>two</div><script>x=1</script><ul><li>three &lt;3</li></ul><style>p{}</style>"
    assert search.page_text(html) == "One\ntwo\nthree <3"


def test_the_switch_is_set_over_the_api_for_ones_own_chats_only(key_client, user, other_user):
    conversation = conversation_create(owner=user)
    url = f"/api/v1/conversations/{conversation.pk}/"
    assert key_client.get(url).json()["web_search"] is False
    response = key_client.patch(url, {"web_search": True}, format="json")
    assert response.status_code == 200 and response.json()["web_search"] is True
    conversation.refresh_from_db()
    assert conversation.web_search is True
    assert "web_search" in assert_error(key_client.patch(url, {"web_search": "yes"}, format="json"), 400)["fields"]
    theirs = conversation_create(owner=other_user)
    assert_error(key_client.patch(f"/api/v1/conversations/{theirs.pk}/", {"web_search": True}, format="json"), 404)
    theirs.refresh_from_db()
    assert theirs.web_search is False
    created = key_client.post("/api/v1/conversations/", {"web_search": True}, format="json")
    assert created.status_code == 201 and created.json()["web_search"] is True


def test_the_settings_panel_has_the_switch_only_when_the_site_can_search(authenticated_client, user, settings):
    conversation = conversation_create(owner=user, web_search=True)
    page_url = reverse("conversations:detail", args=[conversation.pk])
    settings.CHAT_SEARCH_URL = ""
    assert 'name="web_search"' not in authenticated_client.get(page_url).content.decode()
    settings.CHAT_SEARCH_URL = "http://search.example"
    page = authenticated_client.get(page_url).content.decode()
    assert page.count('<input type="checkbox" name="web_search" id="setting-web-search" checked>') == 1


def test_a_chat_started_on_the_page_keeps_the_switch(authenticated_client, user):
    response = authenticated_client.post(reverse("conversations:start"), {"web_search": True},
                                         content_type="application/json")
    assert response.status_code == 201, response.content
    assert Conversation.objects.for_user(user).get(pk=response.json()["id"]).web_search is True


def test_an_unknown_provider_is_the_models_error_result(search_site, user, settings):
    settings.CHAT_SEARCH_PROVIDER = "altavista"
    conversation = conversation_create(owner=user, web_search=True)
    ask(conversation, user, "Otters?")
    assert tool_result(conversation) == "Error: the site's search provider 'altavista' is not one chatsite has."
