"""Retrieval at answer time, in one of two ways (KNOWLEDGE_RETRIEVAL):

- the step (the default): before the model call the chat's knowledge bases are searched with the question, the best
  passages go into the system prompt numbered [1], [2]... (as many as the model's context has room for, a line
  saying how many were left out), and are stored as the answer's citations;
- the tool: the model is offered the `knowledge_search` server tool (conversations/answering/tools.py) and searches
  with queries of its own; each search's passages are numbered after those the answer was already given and stored
  as its citations, so both ways show the same chips.

Why the step is the default: it works with every model, the embedded one included, which cannot call tools, and it
costs no extra model round; the two measured side by side: bench/KNOWLEDGE.md.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef

from conversations.models import Conversation
from knowledge.models import Citation, Passage
from knowledge.search import knowledge_bases_for_conversation, passages_search

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from conversations.models import Turn

# KNOWLEDGE_RETRIEVAL's values: "auto" is the tool for an answer that may be offered server tools, else the step.
STEP, TOOL, AUTO = "step", "tool", "auto"
INSTRUCTIONS = (
    "Passages from the user's documents that may answer the question follow, numbered. Use them where they are "
    "relevant and cite each passage you use by its number in brackets, like [1]. If they do not hold the answer, "
    "say so rather than guessing."
)
TOOL_INSTRUCTIONS = (
    "This chat has the user's documents. When a question may be answered from them, search them with the "
    "knowledge_search tool, and cite each passage you use by its number in brackets, like [1]. If they do not hold "
    "the answer, say so rather than guessing."
)
# What the model is told of passages that matched but did not fit in its context (knowledge_prompt's `room`).
LEFT_OUT = "({count} more matching passages were left out to fit the model's context.)"
LEFT_OUT_ALL = (
    "Passages from the user's documents matched the question, but none fit in the model's context ({count} left "
    "out). If the question needs them, say so."
)
TOOL_NOTHING_FOUND = "No passage of the user's documents matches that search."
_MARKER = re.compile(r"\[(\d{1,3})\]")


def knowledge_section(
    *, conversation: Conversation, question: str, answer_turn: Turn, tools_offered: bool,
    room: TokenRoom | None = None,
) -> tuple[str, bool]:
    """The system prompt's knowledge section for this answer ("" when there is none), and whether the answer is
    offered the knowledge_search tool: KNOWLEDGE_RETRIEVAL chooses, `tools_offered` saying whether this answer's
    model may be offered server tools at all ("tool" gives an answer that may not none of the chat's passages).
    `room`: what the model's context has left for the section (knowledge_prompt)."""
    mode = settings.KNOWLEDGE_RETRIEVAL
    if mode == STEP or (mode == AUTO and not tools_offered):
        return knowledge_prompt(conversation=conversation, question=question, answer_turn=answer_turn, room=room), False
    if not tools_offered or not knowledge_bases_for_conversation(conversation).exists():
        return "", False
    return TOOL_INSTRUCTIONS, True


@dataclass(frozen=True)
class TokenRoom:
    """What is left of the model's context for a section of the system prompt: `tokens`, counted by `count` (the
    model backend's own count, conversations.llm)."""

    tokens: int
    count: Callable[[str], int]


def knowledge_prompt(
    *, conversation: Conversation, question: str, answer_turn: Turn, room: TokenRoom | None = None
) -> str:
    """The retrieval step: the system prompt's knowledge section for this answer ("" when the chat has no base or
    nothing matched); the passages given are stored as `answer_turn`'s citations. With `room`, the best passages
    that fit in it are given, and a line tells the model how many were left out (never silently)."""
    bases = dict(knowledge_bases_for_conversation(conversation).values_list("pk", "owner_id"))
    if not bases:
        return ""
    passages = passages_search(
        owner_ids=bases.values(), base_ids=bases, query=question, limit=settings.KNOWLEDGE_PASSAGES_PER_ANSWER
    )
    if not passages:
        return ""
    citations = [
        Citation(turn=answer_turn, number=number, passage=passage, document_name=passage.document.name,
                 page=passage.page, text=passage.text)
        for number, passage in enumerate(passages, start=1)
    ]
    if room is not None:
        citations = _fitting(citations, room)
    Citation.objects.filter(turn=answer_turn).delete()  # a retried begin gives the same answer its passages again
    Citation.objects.bulk_create(citations)
    left_out = len(passages) - len(citations)
    if not left_out:
        return f"{INSTRUCTIONS}\n\n{_numbered(citations)}"
    if not citations:
        return LEFT_OUT_ALL.format(count=left_out)
    return f"{INSTRUCTIONS}\n\n{_numbered(citations)}\n\n{LEFT_OUT.format(count=left_out)}"


def _fitting(citations: list[Citation], room: TokenRoom) -> list[Citation]:
    """The best passages (the first) whose section, with the line saying how many were left out, fits in `room`.
    Each piece is counted on its own, with a token for the blank line that joins it to the next."""
    used = room.count(INSTRUCTIONS) + 1 + room.count(LEFT_OUT.format(count=len(citations))) + 1
    for kept, citation in enumerate(citations):
        used += room.count(_numbered([citation])) + 1
        if used > room.tokens:
            return citations[:kept]
    return citations


def knowledge_search(*, owner_id: int, conversation_id: uuid.UUID | str, answer_id: int, query: str) -> str:
    """The knowledge_search tool's result: the passages of the chat's bases that best match `query`, numbered, and
    stored as the answer's citations. The numbers go on after those the answer was already given (a passage given
    before keeps its number), so every [n] of the answer names one passage. The chat is looked up with its owner:
    another user's chat finds nothing, and the bases searched are the chat's (knowledge_bases_for_conversation)."""
    conversation = Conversation.objects.filter(pk=conversation_id, owner_id=owner_id).first()
    if conversation is None:
        return TOOL_NOTHING_FOUND
    bases = dict(knowledge_bases_for_conversation(conversation).values_list("pk", "owner_id"))
    passages = passages_search(
        owner_ids=bases.values(), base_ids=bases, query=query, limit=settings.KNOWLEDGE_PASSAGES_PER_ANSWER
    ) if bases else []
    if not passages:
        return TOOL_NOTHING_FOUND
    for attempt in range(3):  # the calls of one round run at once: a number taken meanwhile is taken again
        try:
            with transaction.atomic():
                given = _numbered_for_answer(answer_id, passages)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return f"Cite each passage you use by its number in brackets, like [1].\n\n{_numbered(given)}"


def _numbered_for_answer(answer_id: int, passages: list[Passage]) -> list[Citation]:
    """These passages as citations of the answer: those it was given before with their numbers, the others stored
    with the next ones."""
    earlier = Citation.objects.filter(turn_id=answer_id)
    numbers = dict(earlier.filter(passage__in=passages).values_list("passage_id", "number"))
    last = earlier.aggregate(last=Max("number"))["last"] or 0
    citations, new = [], []
    for passage in passages:
        citation = Citation(turn_id=answer_id, number=numbers.get(passage.pk, 0), passage=passage,
                            document_name=passage.document.name, page=passage.page, text=passage.text)
        if not citation.number:
            last += 1
            citation.number = last
            new.append(citation)
        citations.append(citation)
    Citation.objects.bulk_create(new)
    return citations


def _numbered(citations: list[Citation]) -> str:
    return "\n\n".join(
        f'<passage number="{c.number}" document="{_attribute(c.document_name)}" page="{c.page}">\n{c.text}\n</passage>'
        for c in citations
    )


def _attribute(name: str) -> str:
    return name.replace('"', "'")


def cited_numbers(text: str) -> set[int]:
    return {int(number) for number in _MARKER.findall(text or "")}


def citations_by_turn(turn_ids: Iterable[int]) -> dict[int, list[Citation]]:
    """Every citation (passage given) of these turns, by turn, in number order: one query. Each has
    `opens_for_chat_owner`: its passage is in a base of the chat's owner, who may open it in its document; a passage
    of a shared assistant's base is the assistant owner's, shown to the chat's owner as the cited text only."""
    found: dict[int, list[Citation]] = {}
    opens_for_chat_owner = Exists(Passage.objects.filter(
        pk=OuterRef("passage_id"), document__base__owner_id=OuterRef("turn__conversation__owner_id")
    ))
    for citation in Citation.objects.filter(turn_id__in=list(turn_ids)).annotate(
        opens_for_chat_owner=opens_for_chat_owner
    ):
        found.setdefault(citation.turn_id, []).append(citation)
    return found


def answer_citations(
    turns: Iterable[Turn], given: dict[int, list[Citation]] | None = None
) -> dict[int, list[Citation]]:
    """For each answer of `turns`, the citations to show under it, in number order: those its text cites ([n]), or,
    when it cites none, every passage it was given (small models often answer from a passage without a marker, and
    the reader should still see that documents were searched). Each has `cited`. One query, none when the caller
    passes the citations `given` (citations_by_turn of a batch)."""
    by_id = {turn.pk: turn for turn in turns}
    found: dict[int, list[Citation]] = {}
    for turn_id, citations in (citations_by_turn(by_id) if given is None else given).items():
        if turn_id not in by_id:
            continue
        cited = cited_numbers(by_id[turn_id].content)
        for citation in citations:
            citation.cited = citation.number in cited
        found[turn_id] = [citation for citation in citations if citation.cited] or citations
    return found
