"""Retrieval by the knowledge_search server tool (KNOWLEDGE_RETRIEVAL "tool" or "auto"): offered only to a chat with
knowledge bases, searching only the chat owner's passages, its passages cited with the step's chips; and the setting
choosing between the tool and the step. Against the fake upstream over real HTTP (it calls the tool it is offered)."""

import json
import re

import pytest
from django.test import Client

from conversations import answering
from conversations.services import conversation_create
from knowledge.models import Citation
from knowledge.retrieval import TOOL_INSTRUCTIONS, TOOL_NOTHING_FOUND, knowledge_search
from knowledge.services import conversation_knowledge_set
from knowledge.tests.support import indexed_base
from knowledge.tests.test_answers import HANDBOOK

pytestmark = pytest.mark.django_db(transaction=True)

PASSAGE = re.compile(r'<passage number="(\d+)"[^>]*>\n(.*?)\n</passage>', re.S)


@pytest.fixture
def tool_model(settings, fake_upstream):
    settings.CHAT_TOOL_MODELS = ["fake-model"]
    settings.CHAT_SERVER_TOOLS = []
    settings.KNOWLEDGE_RETRIEVAL = "tool"
    return fake_upstream


def search_then_quote(fake_upstream, queries: list[str], word: str) -> None:
    """The fake model searches with each of `queries` in turn, then answers with the sentence holding `word` from the
    passages the searches returned, citing its number."""
    fake_upstream.behaviour.tool_rounds = len(queries)
    fake_upstream.behaviour.tool_script = [("knowledge_search", json.dumps({"query": q})) for q in queries]

    def answer(recorded):
        results = "\n".join(m["content"] for m in recorded.messages if m["role"] == "tool")
        for number, text in PASSAGE.findall(results):
            sentence = next((s for s in re.split(r"(?<=\.)\s+", text) if word in s), None)
            if sentence:
                fake_upstream.behaviour.reply = f"{sentence} [{number}]"
                return
        fake_upstream.behaviour.reply = "The documents do not say."

    fake_upstream.on_request = answer


def chat_with(user, base=None):
    conversation = conversation_create(owner=user, title="")
    if base is not None:
        conversation_knowledge_set(conversation=conversation, base_ids=[base.pk])
    return conversation


def offered_tools(request) -> list[str]:
    return [tool["function"]["name"] for tool in request.body.get("tools", [])]


def test_the_model_searches_and_its_answer_cites_the_passage_with_a_chip(tool_model, user):
    conversation = chat_with(user, indexed_base(user, HANDBOOK))
    search_then_quote(tool_model, ["Heron launch code"], "launch code")

    run = answering.answer(conversation=conversation, user=user, content="What is the launch code for Heron?")

    first, second = tool_model.chat_requests
    assert offered_tools(first) == ["knowledge_search"]
    assert TOOL_INSTRUCTIONS in first.messages[0]["content"]
    assert "7-ALPHA-93" not in json.dumps(first.messages), "no passage before the model asks"
    assert second.messages[-1]["role"] == "tool" and "7-ALPHA-93" in second.messages[-1]["content"]
    answer = run.assistant_turn
    assert "7-ALPHA-93" in answer.content
    number = int(re.search(r"\[(\d+)\]", answer.content).group(1))
    citation = Citation.objects.get(turn=answer, number=number)
    assert "7-ALPHA-93" in citation.text and citation.document_name == "handbook.md"

    client = Client()
    client.force_login(user)
    page = client.get(conversation.get_absolute_url()).content.decode()
    chip = re.search(r'<a class="citation-chip" href="(/knowledge/passages/\d+/)#passage"', page)
    assert chip, "the answer shows its citation chip, as the step's answers do"
    assert chip.group(1) == f"/knowledge/passages/{citation.passage_id}/"
    assert "knowledge_search" in page, "the search is shown as a tool step in the thread"
    exported = client.get(f"/api/v1/conversations/{conversation.pk}/export/?format=json").json()
    [stored] = [turn for turn in exported["turns"] if turn["id"] == answer.pk]
    assert [c["number"] for c in stored["citations"] if c["cited"]] == [number]


def test_a_second_search_numbers_on_and_a_passage_found_again_keeps_its_number(tool_model, user):
    conversation = chat_with(user, indexed_base(user, HANDBOOK))
    search_then_quote(tool_model, ["Heron launch code", "launch code and soup in the canteen"], "soup")

    run = answering.answer(conversation=conversation, user=user, content="The launch code, and is there soup?")

    results = [m["content"] for m in tool_model.chat_requests[-1].messages if m["role"] == "tool"]
    first = dict(PASSAGE.findall(results[0]))
    second = dict(PASSAGE.findall(results[1]))
    again = set(first.values()) & set(second.values())
    assert again and set(second.values()) - again, "the second search finds a passage again and a new one"
    for number, text in second.items():
        if text in again:
            assert first[number] == text, "a passage given before keeps its number"
        else:
            assert int(number) > max(int(n) for n in first), "a new passage is numbered after the earlier ones"
    citations = list(Citation.objects.filter(turn=run.assistant_turn))
    assert [c.number for c in citations] == list(range(1, len(citations) + 1))
    assert len({c.passage_id for c in citations}) == len(citations)
    assert {c.text for c in citations} == set(first.values()) | set(second.values())


def test_a_chat_without_knowledge_bases_is_not_offered_the_tool(tool_model, user):
    indexed_base(user, HANDBOOK)  # the user's, but not attached to this chat
    search_then_quote(tool_model, ["Heron launch code"], "launch code")

    answering.answer(conversation=chat_with(user), user=user, content="What is the launch code for Heron?")

    [request] = tool_model.chat_requests
    assert "tools" not in request.body
    assert TOOL_INSTRUCTIONS not in request.messages[0]["content"]
    assert not Citation.objects.exists()


def test_the_tool_finds_only_the_chat_owners_passages(tool_model, user, other_user):
    indexed_base(other_user, {"secret.md": b"The vault combination is ZEBRA-4471."}, name="Theirs")
    mine = indexed_base(user, {"notes.md": b"The vault is in the basement."}, name="Mine")
    conversation = chat_with(user, mine)
    search_then_quote(tool_model, ["vault combination ZEBRA-4471"], "ZEBRA")

    run = answering.answer(conversation=conversation, user=user, content="What is the vault combination?")

    results = [m["content"] for m in tool_model.chat_requests[-1].messages if m["role"] == "tool"]
    assert "ZEBRA-4471" not in json.dumps(results) and "basement" in results[0]
    assert "ZEBRA-4471" not in run.assistant_turn.content
    assert not Citation.objects.filter(text__contains="ZEBRA").exists()
    # The search looks the chat up with its owner: another user naming this chat finds nothing.
    assert knowledge_search(owner_id=other_user.pk, conversation_id=conversation.pk,
                            answer_id=run.assistant_turn.pk, query="vault") == TOOL_NOTHING_FOUND


@pytest.mark.parametrize(("mode", "tool_model_name", "server_tools", "expected"), [
    ("step", True, True, "step"),
    ("tool", True, True, "tool"),
    ("auto", True, True, "tool"),
    ("auto", False, True, "step"),  # a model that cannot call tools
    ("auto", True, False, "step"),  # a user whose groups do not allow server tools
    ("tool", False, True, "none"),  # "tool" gives a model that cannot call tools no passages
])
def test_the_setting_chooses_the_step_or_the_tool(
    settings, fake_upstream, user, mode, tool_model_name, server_tools, expected
):
    settings.KNOWLEDGE_RETRIEVAL = mode
    settings.CHAT_TOOL_MODELS = ["fake-model"] if tool_model_name else []
    settings.CHAT_SERVER_TOOLS = []
    features = ["share_links", "api_keys", "file_uploads"]
    settings.CHAT_DEFAULT_FEATURES = [*features, "server_tools"] if server_tools else features
    conversation = chat_with(user, indexed_base(user, HANDBOOK))
    search_then_quote(fake_upstream, ["Heron launch code"], "launch code")

    run = answering.answer(conversation=conversation, user=user, content="What is the launch code for Heron?")

    requests = fake_upstream.chat_requests
    system = requests[0].messages[0]["content"]
    given = Citation.objects.filter(turn=run.assistant_turn, text__contains="7-ALPHA-93").exists()
    if expected == "step":
        assert len(requests) == 1 and "tools" not in requests[0].body
        assert "7-ALPHA-93" in system and given
    elif expected == "tool":
        assert len(requests) == 2 and offered_tools(requests[0]) == ["knowledge_search"]
        assert "7-ALPHA-93" not in system and TOOL_INSTRUCTIONS in system and given
    else:
        assert len(requests) == 1 and "tools" not in requests[0].body
        assert "7-ALPHA-93" not in system and TOOL_INSTRUCTIONS not in system and not given
