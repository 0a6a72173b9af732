"""Search across what a user owns (chat titles, messages, the text of files sent, knowledge documents), with a
snippet around each hit: escaped and marked, on the history page and in the REST API."""

import re

import pytest
from django.core.files.base import ContentFile

from conversations.models import Attachment
from conversations.search import SOURCES, snippet
from conversations.services import conversation_create
from conversations.tests.factories import add_turns
from knowledge.models import Passage
from knowledge.tests.support import indexed_base

pytestmark = pytest.mark.django_db


def attach(turn, *, text: str, name: str = "notes.txt") -> Attachment:
    return Attachment.objects.create(
        owner=turn.conversation.owner, turn=turn, file=ContentFile(text.encode(), name=name), name=name,
        content_type="text/plain", kind=Attachment.Kind.DOCUMENT, size=len(text), sha256="0" * 64, text=text,
    )


def test_a_snippet_is_the_text_around_the_hit_cut_at_words_with_every_occurrence_marked():
    text = " ".join(f"word{n}" for n in range(40)) + " the Quetzal flies; a quetzal nests " + "tail " * 40
    found = snippet(text, "quetzal")
    assert found.text.startswith("…") and found.text.endswith("…")
    assert "word39 the Quetzal flies; a quetzal nests" in found.text
    assert str(found.html).count("<mark>") == 2 and "<mark>Quetzal</mark>" in found.html
    assert re.match(r"…word\d+ ", found.text)  # starts on a whole word
    assert snippet("short text", "absent") is None
    assert snippet("all of it", "of").text == "all of it"  # nothing cut, no ellipsis


def test_a_snippet_escapes_the_text_and_the_search():
    found = snippet('<img src=x onerror="alert(1)"> and <b>bold</b>', "<b>")
    assert "<img" not in found.html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in found.html
    assert "<mark>&lt;b&gt;</mark>bold" in found.html
    assert found.text.startswith("<img")  # the plain text stays plain (the API's client escapes it)


def test_search_finds_a_word_only_in_a_file_and_says_so(user, other_user, authenticated_client, key_client):
    chat = conversation_create(owner=user, title="Trip")
    turn = add_turns(chat, ("user", "see the file"))
    attach(turn, text="Day 3: we saw a resplendent quetzal near Monteverde.", name="diary.txt")
    theirs = add_turns(conversation_create(owner=other_user, title="Theirs"), ("user", "see the file"))
    attach(theirs, text="their quetzal")
    attach(add_turns(conversation_create(owner=user, title="Unsent"), ("user", "x")), text="ignore").delete()

    api = key_client.get("/api/v1/conversations/", {"search": "QUETZAL"}).json()["results"]
    assert [r["title"] for r in api] == ["Trip"]
    assert api[0]["snippet"] == {
        "source": "file", "text": "diary.txt: Day 3: we saw a resplendent quetzal near Monteverde.",
        "html": "diary.txt: Day 3: we saw a resplendent <mark>quetzal</mark> near Monteverde.",
    }
    page = authenticated_client.get("/c/history/", {"q": "quetzal"}).content.decode()
    assert 'data-source="file"' in page and "resplendent <mark>quetzal</mark> near" in page
    assert "Theirs" not in page

    # The index follows the file's text, and the file's deletion.
    Attachment.objects.filter(turn=turn).update(text="nothing here now")
    assert key_client.get("/api/v1/conversations/", {"search": "quetzal"}).json()["results"] == []
    Attachment.objects.filter(turn=turn).update(text="quetzal again")
    assert len(key_client.get("/api/v1/conversations/", {"search": "quetzal"}).json()["results"]) == 1
    Attachment.objects.filter(turn=turn).delete()
    assert key_client.get("/api/v1/conversations/", {"search": "quetzal"}).json()["results"] == []


def test_message_snippets_on_the_page_are_escaped_and_marked(user, authenticated_client, key_client):
    chat = conversation_create(owner=user, title="Markup")
    add_turns(chat, ("user", "Why does <script>alert('garden')</script> show?"), ("assistant", "It is text."))
    conversation_create(owner=user, title="garden plans")  # the title only: no snippet
    page = authenticated_client.get("/c/history/", {"q": "garden"}).content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;<mark>garden</mark>&#x27;)&lt;/script&gt;" in page
    assert page.count('class="history-snippet"') == 1
    results = {r["title"]: r["snippet"] for r in key_client.get(
        "/api/v1/conversations/", {"search": "garden"}).json()["results"]}
    assert results["garden plans"] is None and results["Markup"]["source"] == "message"
    assert key_client.get("/api/v1/conversations/").json()["results"][0]["snippet"] is None  # not a search


def test_the_newest_hit_of_a_chat_gives_its_snippet(user, key_client):
    chat = conversation_create(owner=user, title="Two")
    add_turns(chat, ("user", "first orchid"), ("assistant", "second orchid"))
    result = key_client.get("/api/v1/conversations/", {"search": "orchid"}).json()["results"][0]
    assert result["snippet"]["text"] == "second orchid"


def test_the_sources_are_a_list_of_small_classes():
    assert [source.kind for source in SOURCES] == ["title", "message", "file"]


MANUAL = (
    b"Opening the vault\n\nThe night shift opens the east vault with the quetzal protocol: two keys, "
    b"<b>never</b> one, and a log line for each.\n\nNothing else in this manual is about birds."
)


@pytest.mark.django_db(transaction=True)  # the indexing task runs on its own connection
def test_a_word_only_in_a_knowledge_document_is_found_with_a_snippet_and_a_link_to_its_passage(
    user, other_user, authenticated_client, key_client
):
    indexed_base(user, {"vault-manual.txt": MANUAL}, name="Night shift")
    indexed_base(other_user, {"theirs.txt": b"Their quetzal protocol, and the word zeppelin."}, name="Theirs")
    add_turns(conversation_create(owner=user, title="Chat"), ("user", "nothing about it"))
    passage = Passage.objects.get(document__base__owner=user, text__contains="quetzal protocol")

    body = key_client.get("/api/v1/conversations/", {"search": "Quetzal"}).json()
    assert body["results"] == []  # in no chat
    (hit,) = body["documents"]
    assert hit == {
        "document_id": passage.document_id, "document_name": "vault-manual.txt",
        "knowledge_base_id": passage.document.base_id, "knowledge_base_name": "Night shift",
        "passage_id": passage.pk, "page": 1, "url": f"/knowledge/passages/{passage.pk}/", "snippet": hit["snippet"],
    }
    assert hit["snippet"]["source"] == "knowledge"
    assert "east vault with the quetzal protocol" in hit["snippet"]["text"]
    assert "the <mark>quetzal</mark> protocol: two keys, &lt;b&gt;never&lt;/b&gt; one" in hit["snippet"]["html"]
    opened = authenticated_client.get(hit["url"])
    assert opened.status_code == 200 and "quetzal protocol" in opened.content.decode()

    page = authenticated_client.get("/c/history/", {"q": "quetzal"})
    assert [hit.url for hit in page.context["history_documents"]] == [f"/knowledge/passages/{passage.pk}/"]
    # The sidebar shows it: the document's name, linked to the passage, with the escaped, marked snippet.
    html = page.content.decode()
    assert f'href="/knowledge/passages/{passage.pk}/"' in html and "vault-manual.txt" in html
    assert "the <mark>quetzal</mark> protocol: two keys, &lt;b&gt;never&lt;/b&gt; one" in html

    # Another user's document never matches: a word only in it finds nothing, on the page and in the API.
    assert key_client.get("/api/v1/conversations/", {"search": "zeppelin"}).json()["documents"] == []
    assert authenticated_client.get("/c/history/", {"q": "zeppelin"}).context["history_documents"] == []
    # A list that is not a search has no such key.
    assert "documents" not in key_client.get("/api/v1/conversations/").json()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("text", ['say "hi"', "a AND b", "x*", "NEAR(a b)", "-minus", "c++", "***", "the"])
def test_a_knowledge_search_takes_any_text_as_plain_text(user, key_client, text):
    indexed_base(user, {"notes.txt": b"Nothing to see."})
    response = key_client.get("/api/v1/conversations/", {"search": text})
    assert response.status_code == 200 and response.json()["documents"] == []


@pytest.mark.django_db(transaction=True)  # the indexing task runs on its own connection
def test_a_stemmed_match_gives_the_passage_opening(user, key_client):
    indexed_base(user, {"plants.txt": b"Our gardens grow tomatoes."})
    (hit,) = key_client.get("/api/v1/conversations/", {"search": "gardening"}).json()["documents"]
    assert hit["snippet"]["text"] == "Our gardens grow tomatoes." and "<mark>" not in hit["snippet"]["html"]
