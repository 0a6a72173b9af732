"""Answers that use a chat's knowledge bases: the passages reach the model (the fake upstream quotes what it read),
the answer cites them, and the citations are stored with the turn and open the passage."""

import re

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import translation

from conversations import answering
from conversations.services import conversation_create
from knowledge.models import Citation
from knowledge.services import conversation_knowledge_set
from knowledge.tests.support import indexed_base

pytestmark = pytest.mark.django_db(transaction=True)

HANDBOOK = {
    "handbook.md": (
        b"# Travel\n\nBook trains two weeks ahead. Hotels are booked by the office.\n\n"
        b"# Project Heron\n\nThe launch code for project Heron is 7-ALPHA-93. Only leads may use it.\n\n"
        b"# Holidays\n\nEveryone has twenty-five days of holiday a year."
    ),
    "menu.txt": b"The canteen serves soup on Mondays and fish on Fridays.",
}


def quote_the_passage_holding(fake_upstream, word: str) -> None:
    """The fake model answers with the sentence holding `word` from the passages it was given, citing its number."""

    def answer(recorded):
        system = recorded.messages[0]["content"]
        for number, text in re.findall(r'<passage number="(\d+)"[^>]*>\n(.*?)\n</passage>', system, re.S):
            sentence = next((s for s in re.split(r"(?<=\.)\s+", text) if word in s), None)
            if sentence:
                fake_upstream.behaviour.reply = f"{sentence} [{number}]"
                return
        fake_upstream.behaviour.reply = "The documents do not say."

    fake_upstream.on_request = answer


def test_an_answer_found_only_in_a_document_cites_its_passage(fake_upstream, user):
    base = indexed_base(user, HANDBOOK)
    conversation = conversation_create(owner=user, title="")
    conversation_knowledge_set(conversation=conversation, base_ids=[base.pk])
    quote_the_passage_holding(fake_upstream, "launch code")

    run = answering.answer(conversation=conversation, user=user, content="What is the launch code for Heron?")

    [request] = fake_upstream.chat_requests
    assert "7-ALPHA-93" in request.messages[0]["content"]  # given in the system prompt
    assert "7-ALPHA-93" not in request.messages[-1]["content"]  # not in the question
    answer = run.assistant_turn
    assert "7-ALPHA-93" in answer.content
    number = int(re.search(r"\[(\d+)\]", answer.content).group(1))
    citation = Citation.objects.get(turn=answer, number=number)
    assert "7-ALPHA-93" in citation.text and citation.document_name == "handbook.md"

    client = Client()
    client.force_login(user)
    page = client.get(conversation.get_absolute_url()).content.decode()
    chip = re.search(r'<a class="citation-chip" href="(/knowledge/passages/\d+/)#passage"', page)
    assert chip, "the answer shows its citation chip"
    assert "turn-searched" not in page, "an answer that cites shows its chips only, not the passages searched"
    passage_page = client.get(chip.group(1)).content.decode()
    assert re.search(r'<mark id="passage"[^>]*>[^<]*7-ALPHA-93', passage_page)


def test_a_chat_without_a_base_gets_no_passages(fake_upstream, user):
    indexed_base(user, HANDBOOK)
    conversation = conversation_create(owner=user, title="")
    answering.answer(conversation=conversation, user=user, content="What is the launch code for Heron?")
    [request] = fake_upstream.chat_requests
    assert "7-ALPHA-93" not in str(request.messages)
    assert not Citation.objects.exists()


def test_an_answer_citing_none_of_its_passages_lists_them_folded_as_searched(fake_upstream, user):
    """Small models answer from a passage without writing [n]: the passages given are then listed, folded, each
    opening its passage as a chip does; the turn the live page swaps in when the answer finishes shows the same."""
    base = indexed_base(user, HANDBOOK)
    conversation = conversation_create(owner=user, title="")
    conversation_knowledge_set(conversation=conversation, base_ids=[base.pk])
    fake_upstream.behaviour.reply = "Book trains two weeks ahead; the canteen serves soup on Mondays."
    run = answering.answer(conversation=conversation, user=user, content="soup holiday trains heron")
    given = list(Citation.objects.filter(turn=run.assistant_turn))
    assert len(given) >= 2  # given to the model, kept for reviewers
    client = Client()
    client.force_login(user)
    page = client.get(conversation.get_absolute_url()).content.decode()
    live = client.get(f"{conversation.get_absolute_url()}turns/{run.assistant_turn.pk}/").content.decode()

    for rendered in (page, live):
        assert "citation-chip" not in rendered
        folded = re.search(r'<details class="turn-searched">(.*?)</details>', rendered, re.S)
        assert folded, "the passages searched are listed under the answer"
        assert f"Searched {len(given)} passages from the documents</summary>" in folded.group(1)
        links = re.findall(r'<a class="searched-passage" href="/knowledge/passages/(\d+)/#passage"[^>]*>([^<]*)</a>',
                           folded.group(1))
        assert sorted(links) == sorted((str(c.passage_id), c.document_name) for c in given)
        assert {"handbook.md", "menu.txt"} <= {name for _, name in links}

    # The Markdown export says the same: searched, not cited.
    markdown = client.get(f"/api/v1/conversations/{conversation.pk}/export/?format=md").content.decode()
    assert "Searched: " in markdown and "handbook.md, page 1" in markdown
    assert not re.search(r"^\[\d+\]: ", markdown, re.M)

    client.cookies["django_language"] = "ko"
    korean = client.get(conversation.get_absolute_url()).content.decode()
    assert f"문서에서 구절 {len(given)}개를 찾아봤습니다</summary>" in korean


def test_passages_searched_that_the_reader_may_not_open_show_their_names_only():
    """As chips do: a passage of someone else's base (a shared assistant's) or of a deleted document is not linked."""
    theirs = Citation(number=1, passage_id=41, document_name="alice.md", text="Alice's notes")
    gone = Citation(number=2, passage_id=None, document_name="old.md", text="Deleted")
    for citation in (theirs, gone):
        citation.cited, citation.opens_for_chat_owner = False, False
    with translation.override("en"):
        rendered = render_to_string("knowledge/_citations.html", {"citations": [theirs, gone]})
    assert "<a " not in rendered and "/knowledge/passages/" not in rendered
    assert '<span class="searched-passage" title="Alice&#x27;s notes">alice.md</span>' in rendered
    assert '<span class="searched-passage" title="The document was deleted">old.md</span>' in rendered
    assert "Searched 2 passages from the documents" in rendered


def test_a_passage_is_rendered_escaped(fake_upstream, user):
    hostile = b"<script>alert('kb')</script><img src=x onerror=alert(1)> otters 12"
    base = indexed_base(user, {"evil.html": hostile})
    conversation = conversation_create(owner=user, title="")
    conversation_knowledge_set(conversation=conversation, base_ids=[base.pk])
    quote_the_passage_holding(fake_upstream, "otters")
    run = answering.answer(conversation=conversation, user=user, content="how many otters")
    citation = Citation.objects.get(turn=run.assistant_turn)
    client = Client()
    client.force_login(user)
    page = client.get(f"/knowledge/passages/{citation.passage_id}/").content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(" in page


def test_exports_and_the_admin_show_an_answers_citations(fake_upstream, user, make_user):
    base = indexed_base(user, HANDBOOK)
    conversation = conversation_create(owner=user, title="Heron")
    conversation_knowledge_set(conversation=conversation, base_ids=[base.pk])
    quote_the_passage_holding(fake_upstream, "launch code")
    question = "What is the Heron launch code, and is there soup?"
    run = answering.answer(conversation=conversation, user=user, content=question)
    client = Client()
    client.force_login(user)

    exported = client.get(f"/api/v1/conversations/{conversation.pk}/export/?format=json").json()
    [answer] = [turn for turn in exported["turns"] if turn["id"] == run.assistant_turn.pk]
    cited = [c for c in answer["citations"] if c["cited"]]
    assert len(cited) == 1 and "7-ALPHA-93" in cited[0]["text"] and cited[0]["document"] == "handbook.md"
    markdown = client.get(f"/api/v1/conversations/{conversation.pk}/export/?format=md").content.decode()
    assert f"[{cited[0]['number']}]: handbook.md, page 1" in markdown

    reviewer = Client()
    reviewer.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = reviewer.get(f"/admin/conversations/turn/{run.assistant_turn.pk}/change/").content.decode()
    assert "handbook.md, page 1 (cited)" in page and "menu.txt, page 1 (not cited)" in page


def test_a_chat_in_a_project_searches_the_projects_files(fake_upstream, user, other_user):
    """A project's knowledge bases are its files: every chat in it answers from them, with their citations, and
    its instructions join the system prompt; a chat outside the project does not search them."""
    from conversations.organizing import project_create
    from knowledge.services import project_knowledge_set

    base = indexed_base(user, HANDBOOK)
    project = project_create(owner=user, name="Heron", instructions="Answer as the Heron team's assistant.")
    project_knowledge_set(project=project, base_ids=[base.pk])
    in_project = conversation_create(owner=user, title="", project=project)
    outside = conversation_create(owner=user, title="")
    quote_the_passage_holding(fake_upstream, "launch code")

    run = answering.answer(conversation=in_project, user=user, content="What is the launch code for Heron?")
    [request] = fake_upstream.chat_requests
    assert "Answer as the Heron team's assistant." in request.messages[0]["content"]
    assert "7-ALPHA-93" in run.assistant_turn.content
    assert Citation.objects.filter(turn=run.assistant_turn, text__contains="7-ALPHA-93").exists()

    fake_upstream.requests.clear()
    answering.answer(conversation=outside, user=user, content="What is the launch code for Heron?")
    [request] = fake_upstream.chat_requests
    assert "7-ALPHA-93" not in request.messages[0]["content"]


def test_a_projects_knowledge_bases_through_the_api(user, other_user):
    from conversations.organizing import project_create

    base = indexed_base(user, {"a.md": b"alpha"})
    foreign = indexed_base(other_user, {"b.md": b"beta"})
    project = project_create(owner=user, name="P")
    client = Client()
    client.force_login(user)
    url = f"/api/v1/projects/{project.pk}/knowledge-bases/"

    assert client.get(url).json() == {"knowledge_bases": []}
    assert client.put(url, {"knowledge_bases": [base.pk]}, content_type="application/json").status_code == 200
    assert client.get(url).json() == {"knowledge_bases": [base.pk]}
    refused = client.put(url, {"knowledge_bases": [foreign.pk]}, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "knowledge_refused"
    other = project_create(owner=other_user, name="Theirs")
    assert client.get(f"/api/v1/projects/{other.pk}/knowledge-bases/").status_code == 404
