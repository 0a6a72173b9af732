"""Hybrid ranking (KNOWLEDGE_EMBEDDINGS_MODEL): passages embedded by the indexing task through conversations.llm against
the fake upstream's /v1/embeddings (its topic vectors make words that share no letters near), the nearest vectors
fused with full text, the owner's passages only, and full text alone whenever the embeddings model fails."""

import io
import logging

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatsite.task_worker import run_queued_tasks
from conversations import answering
from conversations.services import conversation_create
from knowledge import vectors
from knowledge.models import Citation, Document, Passage, PassageVector
from knowledge.search import passages_search, reciprocal_rank_fusion
from knowledge.services import conversation_knowledge_set
from knowledge.tests.support import indexed_base
from knowledge.vectors import documents_to_embed, stored_vectors

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "text-embedding-3-small"
# "car" and "automobile" are one topic to the fake embeddings model, as are "holiday" and "vacation".
TOPICS = {"car": 0, "automobile": 0, "vehicle": 0, "holiday": 1, "vacation": 1}
OFFICE = {
    "garage.md": b"Every car goes to the basement garage, level minus two, before nine.",
    "leave.md": b"Holiday requests go to your manager two weeks ahead.",
    "canteen.txt": b"The canteen serves soup on Mondays and fish on Fridays.",
}
QUESTION = "Where should I put my automobile?"  # no word in common with the garage passage


@pytest.fixture
def hybrid(settings, fake_upstream):
    settings.KNOWLEDGE_EMBEDDINGS_MODEL = MODEL
    fake_upstream.behaviour.embedding_topics = dict(TOPICS)
    return fake_upstream


def search(owner, bases, query=QUESTION, limit=5):
    return passages_search(owner_ids=[owner.pk], base_ids=[base.pk for base in bases], query=query, limit=limit)


def test_a_passage_sharing_no_word_with_the_question_is_found_with_hybrid_and_not_without(user, hybrid, settings):
    base = indexed_base(user, OFFICE)

    # Embedded by the indexing task, one call per document (each is one batch), with the configured model.
    vectors = PassageVector.objects.filter(passage__document__base=base)
    assert vectors.count() == Passage.objects.filter(document__base=base).count() == 3
    assert set(vectors.values_list("model", flat=True)) == {MODEL}
    assert [r.body["model"] for r in hybrid.embedding_requests] == [MODEL] * 3
    assert len(bytes(vectors.first().vector)) == 4 * 8  # float32 x the fake's 8 dimensions

    found = search(user, [base])
    assert found[0].text.startswith("Every car goes to the basement garage")

    settings.KNOWLEDGE_EMBEDDINGS_MODEL = ""
    assert search(user, [base]) == []  # full text alone: no word of the question is in any passage


def test_a_long_documents_passages_are_embedded_in_batches(user, hybrid, settings, monkeypatch):
    monkeypatch.setattr(vectors, "EMBED_BATCH", 2)
    settings.KNOWLEDGE_PASSAGE_CHARS, settings.KNOWLEDGE_PASSAGE_OVERLAP = 40, 0
    text = "\n\n".join(f"Paragraph {n} is about item number {n} of the list." for n in range(5))
    base = indexed_base(user, {"long.md": text.encode()})

    count = Passage.objects.filter(document__base=base).count()
    assert count >= 5
    assert [len(r.body["input"]) for r in hybrid.embedding_requests] == [2] * (count // 2) + [1] * (count % 2)
    assert PassageVector.objects.filter(passage__document__base=base).count() == count


def test_an_answer_cites_the_synonym_only_passage(user, hybrid):
    base = indexed_base(user, OFFICE)
    conversation = conversation_create(owner=user, title="")
    conversation_knowledge_set(conversation=conversation, base_ids=[base.pk])

    run = answering.answer(conversation=conversation, user=user, content=QUESTION)

    [request] = hybrid.chat_requests
    assert "basement garage" in request.messages[0]["content"]
    assert Citation.objects.get(turn=run.assistant_turn, number=1).document_name == "garage.md"


def test_another_users_passages_never_come_back_through_the_vector_path(user, other_user, hybrid):
    mine = indexed_base(user, {"canteen.txt": OFFICE["canteen.txt"]}, name="mine")
    theirs = indexed_base(other_user, {"car.md": b"My vehicle is on the roof: marker QX-4417."}, name="theirs")

    # Their passage is the question's nearest vector, and its base id is asked for: the owner filter keeps it out.
    found = passages_search(owner_ids=[user.pk], base_ids=[mine.pk, theirs.pk], query=QUESTION, limit=5)
    assert [p.document.name for p in found] == ["canteen.txt"]
    assert stored_vectors(owner_ids=[user.pk], base_ids=[theirs.pk]) == ([], [])
    # The other user's own search does find it: the vector is there.
    assert "QX-4417" in search(other_user, [theirs])[0].text

    # Through an answer: a chat of mine whose own base is mine only.
    conversation = conversation_create(owner=user, title="")
    conversation_knowledge_set(conversation=conversation, base_ids=[mine.pk])
    answering.answer(conversation=conversation, user=user, content="Which automobile vehicle is on the roof?")
    assert "QX-4417" not in hybrid.chat_requests[-1].messages[0]["content"]


def test_a_failing_embeddings_model_leaves_full_text_search(user, hybrid, settings, caplog):
    hybrid.behaviour.fail_status = 503  # every embeddings call, until reset
    with caplog.at_level(logging.WARNING, logger="knowledge.vectors"):
        base = indexed_base(user, OFFICE)
    assert set(Document.objects.filter(base=base).values_list("status", flat=True)) == {Document.Status.READY}
    assert not PassageVector.objects.exists()
    assert "embeddings model 'text-embedding-3-small' failed" in caplog.text

    # Vectors from a time the model worked: the question's own vector fails now, full text answers alone.
    hybrid.behaviour.fail_status = None
    call_command("knowledge_embed", stdout=io.StringIO())
    run_queued_tasks()
    assert PassageVector.objects.count() == 3
    hybrid.behaviour.fail_status = 503
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="knowledge.vectors"):
        found = search(user, [base], query="Which day is fish served in the canteen?")
    assert [p.document.name for p in found] == ["canteen.txt"]
    assert "full-text ranking only" in caplog.text

    # The embedded model computes no embeddings: refused at once, full text still answers.
    settings.LLM_BACKEND = "local"
    assert [p.document.name for p in search(user, [base], query="fish canteen")] == ["canteen.txt"]


def test_a_change_of_model_embeds_the_passages_again(user, hybrid, settings):
    base = indexed_base(user, OFFICE)
    assert list(documents_to_embed()) == []
    settings.KNOWLEDGE_EMBEDDINGS_MODEL = "text-embedding-3-large"
    assert len(documents_to_embed()) == 3
    assert search(user, [base], query="fish canteen")[0].document.name == "canteen.txt"  # old vectors: not compared

    call_command("knowledge_embed", stdout=io.StringIO())
    run_queued_tasks()
    assert set(PassageVector.objects.values_list("model", flat=True)) == {"text-embedding-3-large"}
    assert PassageVector.objects.count() == 3
    assert search(user, [base])[0].document.name == "garage.md"


def test_the_query_count_of_a_search_is_pinned(user, hybrid, settings):
    base = indexed_base(user, OFFICE)
    with CaptureQueriesContext(connection) as hybrid_queries:
        assert len(search(user, [base], query="automobile canteen")) == 3
    # The full-text candidates, the vectors of the allowed passages, the passages with their documents.
    assert len(hybrid_queries) == 3

    settings.KNOWLEDGE_EMBEDDINGS_MODEL = ""
    with CaptureQueriesContext(connection) as full_text_queries:
        assert len(search(user, [base], query="automobile canteen")) == 1
    assert len(full_text_queries) == 2  # the full-text matches, the passages with their documents


def test_reciprocal_rank_fusion_rewards_agreement():
    assert reciprocal_rank_fusion([[1, 2, 3], [3, 4]]) == [3, 1, 2, 4]
    assert reciprocal_rank_fusion([[5, 6], []]) == [5, 6]
