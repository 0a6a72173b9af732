"""Reads: a user's knowledge bases, documents and passages, and passage search: full text (SQLite FTS5 ranked by bm25,
PostgreSQL full-text ranked by ts_rank_cd; the indexes are made by migration 0002), fused with the nearest vectors
when an embeddings model is configured (knowledge.vectors).

Every read filters by the owner in the query itself: another user's id finds nothing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from knowledge import vectors
from knowledge.models import Document, KnowledgeBase, Passage

if TYPE_CHECKING:
    from collections.abc import Iterable

    from conversations.models import Conversation

MAX_QUERY_TERMS = 32
# Hybrid ranking: each list (full text, vectors) brings this many candidates per place asked for (at least
# MIN_CANDIDATES), and reciprocal rank fusion's constant (60, as in its paper: a low rank in one list still counts).
CANDIDATES_PER_PLACE = 4
MIN_CANDIDATES = 20
RRF_K = 60
# Words that say nothing about what a passage holds; dropped from a question before it is searched (an OR of
# every word would otherwise rank passages by how many "the" they hold, less the bm25 weighting).
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from", "has", "have", "how",
    "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "please", "so",
    "tell", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to", "us", "was",
    "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your", "about",
})


def knowledge_base_list(*, user) -> QuerySet[KnowledgeBase]:
    return KnowledgeBase.objects.for_user(user).annotate(document_count=Count("documents"))


def knowledge_base_get(*, user, base_id: int) -> KnowledgeBase:
    """The user's base; KnowledgeBase.DoesNotExist for another user's id."""
    return knowledge_base_list(user=user).get(pk=base_id)


def document_list(*, base: KnowledgeBase) -> QuerySet[Document]:
    return Document.objects.filter(base=base).defer("text")


def document_get(*, user, document_id: int) -> Document:
    """The user's document; Document.DoesNotExist for another user's id."""
    return Document.objects.for_user(user).get(pk=document_id)


def passage_get(*, user, passage_id: int) -> Passage:
    """The user's passage, with its document; Passage.DoesNotExist for another user's id."""
    return Passage.objects.select_related("document__base").get(pk=passage_id, document__base__owner=user)


def knowledge_bases_for_conversation(
    conversation: Conversation, *, extra_base_ids: Iterable[int] | QuerySet | None = None
) -> QuerySet[KnowledgeBase]:
    """The bases a chat's answers search: those attached to the chat, those of its project, and `extra_base_ids`,
    the chat owner's only; and those of the chat's assistant, which are its owner's (who may not be the chat's: the
    owner of an assistant shared by link or with a group gives its users passages of the bases they chose for it)."""
    attached = Q(pk__in=KnowledgeBase.conversations.through.objects.filter(conversation_id=conversation.pk).values(
        "knowledgebase_id"
    ))
    if conversation.project_id is not None:
        attached |= Q(pk__in=KnowledgeBase.projects.through.objects.filter(project_id=conversation.project_id).values(
            "knowledgebase_id"
        ))
    if extra_base_ids is not None:
        attached |= Q(pk__in=extra_base_ids)
    mine = Q(attached, owner_id=conversation.owner_id)
    if conversation.assistant_id is None:
        return KnowledgeBase.objects.filter(mine)
    # One join: the base is the assistant's, and its owner is the assistant's owner.
    of_assistant = KnowledgeBase.objects.filter(
        assistants__pk=conversation.assistant_id, assistants__owner_id=F("owner_id")
    ).values("pk")
    return KnowledgeBase.objects.filter(mine | Q(pk__in=of_assistant))


def knowledge_bases_linked() -> Q:
    """For a Conversation query (an annotation or a filter): whether the chat is linked to a base, through itself, its
    project or its assistant. A superset of knowledge_bases_for_conversation (which also checks the bases' owners):
    false means that chat has no base to search, and its answers skip the search without a query of their own."""
    through_chat = KnowledgeBase.conversations.through.objects.filter(conversation_id=OuterRef("pk"))
    through_project = KnowledgeBase.projects.through.objects.filter(project_id=OuterRef("project_id"))
    through_assistant = KnowledgeBase.assistants.through.objects.filter(assistant_id=OuterRef("assistant_id"))
    return Q(Exists(through_chat)) | Q(Exists(through_project)) | Q(Exists(through_assistant))


def search_terms(text: str) -> list[str]:
    """The words of a question worth searching for, lower-cased, each once, in order."""
    words = dict.fromkeys(w for w in re.findall(r"\w+", text.lower()) if w not in STOP_WORDS and len(w) > 1)
    return list(words)[:MAX_QUERY_TERMS]


def passages_search(*, owner_ids: Iterable[int], base_ids: Iterable[int], query: str, limit: int) -> list[Passage]:
    """The passages of the bases `base_ids` owned by one of `owner_ids` that best match `query`, best first, with their
    documents. Full text: any of its words, ranked by bm25 on SQLite, ts_rank_cd on PostgreSQL. With an embeddings
    model (KNOWLEDGE_EMBEDDINGS_MODEL), the passages whose vectors are nearest the question's too, the two lists fused
    by reciprocal rank; if the model fails, full text alone. Queries: the full-text one, the vectors (hybrid), the
    passages."""
    base_ids = [int(pk) for pk in base_ids]
    owner_ids = sorted({int(pk) for pk in owner_ids})
    hybrid = bool(vectors.embeddings_model())
    terms = search_terms(query)
    if not base_ids or not owner_ids or not (terms or (hybrid and query.strip())) or limit <= 0:
        return []
    candidates = max(limit * CANDIDATES_PER_PLACE, MIN_CANDIDATES) if hybrid else limit
    ids = _full_text_ids(owner_ids=owner_ids, base_ids=base_ids, terms=terms, limit=candidates) if terms else []
    if hybrid:
        vector_ids, blobs = vectors.stored_vectors(owner_ids=owner_ids, base_ids=base_ids)
        question = vectors.question_vector(query) if vector_ids else None
        if question is not None:
            ids = reciprocal_rank_fusion([ids, vectors.nearest(vector_ids, blobs, question, candidates)])
        ids = ids[:limit]
    found = Passage.objects.select_related("document").in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]


def reciprocal_rank_fusion(rankings: list[list[int]]) -> list[int]:
    """The ids of several rankings in one order: each scores the sum of 1 / (RRF_K + its rank) over the rankings that
    hold it (Cormack, Clarke and Buettcher, SIGIR 2009); ties keep the first ranking's order."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, pk in enumerate(ranking, start=1):
            scores[pk] = scores.get(pk, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda pk: -scores[pk])


def _full_text_ids(*, owner_ids: list[int], base_ids: list[int], terms: list[str], limit: int) -> list[int]:
    placeholders = ", ".join(["%s"] * len(base_ids))
    owners = ", ".join(["%s"] * len(owner_ids))
    if connection.vendor == "sqlite":
        # Each term quoted: FTS5 reads it as a plain word, never as query syntax.
        match = " OR ".join(f'"{term}"' for term in terms)
        sql = f"""
            SELECT p.id FROM knowledge_passage_fts f
            JOIN knowledge_passage p ON p.id = f.rowid
            JOIN knowledge_document d ON d.id = p.document_id
            JOIN knowledge_knowledgebase b ON b.id = d.base_id
            WHERE knowledge_passage_fts MATCH %s AND b.owner_id IN ({owners}) AND b.id IN ({placeholders})
            ORDER BY bm25(knowledge_passage_fts), p.id LIMIT %s"""  # noqa: S608 (placeholders only)
        params: list[str | int] = [match, *owner_ids, *base_ids, limit]
    elif connection.vendor == "postgresql":
        # plainto_tsquery parses the words safely; its ANDs become ORs: a passage needs only some of them.
        sql = f"""
            SELECT p.id FROM knowledge_passage p
            JOIN knowledge_document d ON d.id = p.document_id
            JOIN knowledge_knowledgebase b ON b.id = d.base_id
            CROSS JOIN (SELECT replace(plainto_tsquery('english', %s)::text, '&', '|')::tsquery AS query) q
            WHERE p.search_vector @@ q.query AND b.owner_id IN ({owners}) AND b.id IN ({placeholders})
            ORDER BY ts_rank_cd(p.search_vector, q.query) DESC, p.id LIMIT %s"""  # noqa: S608
        params = [" ".join(terms), *owner_ids, *base_ids, limit]
    else:
        raise NotImplementedError(f"passage search has no index on {connection.vendor}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]
