"""Search across what a user owns: the sources a search reads (chat titles, message text, the text of attached
files, the passages of knowledge documents), the indexes that serve them, and a snippet around each hit.

A chat source is a small class: a filter on the user's conversations (served by an index, so a page of results
stops when it is full) and, for the page's chats only, the text of one hit in each; adding one is adding a class to
SOURCES. A knowledge document belongs to no chat: KnowledgeSource finds the user's passages that hold the text, as
results of their own (DocumentHit), each linked to its document opened at that passage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from django.db import connection
from django.db.models import Max, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.lookups import IsNull
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from conversations.models import Attachment, Conversation, Turn
from knowledge.models import Passage

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

# FTS5's trigram tokenizer (migration 0017) matches substrings of at least three characters (and pg_trgm's index
# needs a trigram too).
FTS_MIN_CHARS = 3
# A text in at most this many turns of the whole site is rare: its conversations are listed from the index.
RARE_TEXT_TURNS = 500
# Knowledge documents listed beside a search's chats (the first matching passage of each).
DOCUMENT_HITS = 5
# Matching passages read to find them (newest documents first): a bound on the query, whatever the user's library.
DOCUMENT_PASSAGES_READ = 50
# A snippet: about this many characters of context before and after the hit.
SNIPPET_BEFORE = 60
SNIPPET_AFTER = 120


def _fts_phrase(text: str) -> str:
    # One FTS5 string: any text, operators and quotes included, is matched as written.
    return '"' + text.replace('"', '""') + '"'


def _indexed(text: str) -> bool:
    return connection.vendor == "sqlite" and len(text) >= FTS_MIN_CHARS


def turn_text_matches(text: str) -> Q:
    """Turns whose content contains `text`, case-insensitively (as `content__icontains`), through the index.

    PostgreSQL: `icontains` compares UPPER(content), which the trigram GIN index turn_content_trgm_idx covers.
    SQLite: the FTS5 table conversations_turn_fts, asked for `text` as one phrase (a substring, with the
    trigram tokenizer); a text shorter than a trigram cannot use it and falls back to a scan.
    """
    if not _indexed(text):
        return Q(content__icontains=text)
    return Q(pk__in=RawSQL(
        "SELECT rowid FROM conversations_turn_fts WHERE conversations_turn_fts MATCH %s", [_fts_phrase(text)]
    ))


def conversation_text_matches(text: str) -> Q:
    """Conversations with a turn whose content contains `text` (as turn_text_matches), for a Conversation filter.

    PostgreSQL: one query first asks the trigram index for the conversations of at most RARE_TEXT_TURNS matching
    turns. A rare text stops there: the filter is those conversations. A common one is the first matching turn of
    each conversation, a scalar subquery (its index range of turns, up to the first hit), so the walk over the
    user's conversations (newest first, on conversation_owner_recent_idx) stops once a page is full. (An EXISTS is
    planned as a hashed subplan that first collects every matching turn of the site: 2.3 s for a common word at a
    million turns; the walk alone costs a rare word every turn of the user's.)
    SQLite re-runs an FTS query inside a correlated subquery for every conversation, so there the matching
    conversations are read once from the FTS table (a cost that follows the matches).
    """
    if connection.vendor == "postgresql" and len(text) >= FTS_MIN_CHARS:
        matching = Turn.objects.filter(turn_text_matches(text)).order_by()  # unsorted: the LIMIT stops the scan
        hits = list(matching.values_list("conversation_id", flat=True)[: RARE_TEXT_TURNS + 1])
        if len(hits) <= RARE_TEXT_TURNS:
            return Q(pk__in=set(hits))
    if not _indexed(text):
        first_hit = Turn.objects.filter(turn_text_matches(text), conversation=OuterRef("pk")).values("pk")[:1]
        return Q(IsNull(Subquery(first_hit), False))
    return Q(pk__in=RawSQL(
        """SELECT t.conversation_id FROM conversations_turn_fts f JOIN conversations_turn t ON t.id = f.rowid
           WHERE f.conversations_turn_fts MATCH %s""",
        [_fts_phrase(text)],
    ))


def attachment_text_matches(text: str) -> Q:
    """Attachments whose extracted text contains `text`, through the index of migration 0020 (as turn_text_matches:
    pg_trgm on UPPER(text), FTS5 with the trigram tokenizer on SQLite)."""
    if not _indexed(text):
        return Q(text__icontains=text)
    return Q(pk__in=RawSQL(
        "SELECT a.id FROM conversations_attachment_fts f JOIN conversations_attachment a ON a.rowid = f.rowid "
        "WHERE f.conversations_attachment_fts MATCH %s",
        [_fts_phrase(text)],
    ))


# --- Sources ------------------------------------------------------------------------------------------------------


class SearchSource(Protocol):
    kind: ClassVar[str]

    def conversations(self, text: str) -> Q:
        """A filter on Conversation: the chats this source finds `text` in."""

    def hits(self, conversation_ids: Sequence, text: str) -> dict:
        """For these chats (a page of results), the text of one hit in each that has one: {conversation id: text}.
        A fixed number of queries, whatever the number of chats and hits."""


class TitleSource:
    kind: ClassVar[str] = "title"

    def conversations(self, text: str) -> Q:
        return Q(title__icontains=text)

    def hits(self, conversation_ids: Sequence, text: str) -> dict:
        return {}  # the title is shown (and marked) in the result itself


class MessageSource:
    kind: ClassVar[str] = "message"

    def conversations(self, text: str) -> Q:
        return conversation_text_matches(text)

    def hits(self, conversation_ids: Sequence, text: str) -> dict:
        """The newest matching turn of each chat. PostgreSQL: a first-hit subquery per chat of the page (an index
        range of its turns). SQLite: one grouped read of the FTS matches of these chats (a correlated FTS query would
        run once per chat), then their text."""
        if not conversation_ids:
            return {}
        if _indexed(text):
            newest = dict(
                Turn.objects.filter(turn_text_matches(text), conversation_id__in=conversation_ids).order_by()
                .values("conversation_id").annotate(newest=Max("pk")).values_list("conversation_id", "newest")
            )
            contents = dict(Turn.objects.filter(pk__in=newest.values()).values_list("pk", "content"))
            return {conversation_id: contents[pk] for conversation_id, pk in newest.items()}
        first_hit = Turn.objects.filter(turn_text_matches(text), conversation=OuterRef("pk")).order_by("-pk")
        rows = Conversation.objects.filter(pk__in=conversation_ids).annotate(
            hit=Subquery(first_hit.values("content")[:1])
        ).values_list("pk", "hit")
        return {pk: hit for pk, hit in rows if hit is not None}


class AttachmentSource:
    """The text extracted from the files sent in a chat (unsent uploads belong to no chat yet)."""

    kind: ClassVar[str] = "file"

    def _matching(self, text: str):
        return Attachment.objects.filter(attachment_text_matches(text), turn__isnull=False).order_by()

    def conversations(self, text: str) -> Q:
        return Q(pk__in=self._matching(text).values("turn__conversation_id"))

    def hits(self, conversation_ids: Sequence, text: str) -> dict:
        if not conversation_ids:
            return {}
        rows = self._matching(text).filter(turn__conversation_id__in=conversation_ids).values_list(
            "turn__conversation_id", "name", "text"
        )
        found: dict = {}
        for conversation_id, name, file_text in rows:
            found.setdefault(conversation_id, f"{name}: {file_text}")
        return found


def passage_text_matches(text: str) -> Q:
    """Passages whose words include those of `text`, through knowledge migration 0002's index: PostgreSQL's
    tsvector (English stemming, plainto_tsquery: every word, parsed safely), SQLite's FTS5 table (porter stemming,
    `text` as one phrase). Words, not substrings (unlike turn_text_matches): the index stems whole words."""
    if connection.vendor == "postgresql":
        return Q(pk__in=RawSQL(
            "SELECT id FROM knowledge_passage WHERE search_vector @@ plainto_tsquery('english', %s)", [text]
        ))
    return Q(pk__in=RawSQL(
        "SELECT rowid FROM knowledge_passage_fts WHERE knowledge_passage_fts MATCH %s", [_fts_phrase(text)]
    ))


# In the order a chat's snippet is taken from: a message first, then a file.
SOURCES: tuple[SearchSource, ...] = (TitleSource(), MessageSource(), AttachmentSource())


def conversations_matching(text: str) -> Q:
    """A filter on Conversation: `text` is in any source."""
    found = Q()
    for source in SOURCES:
        found |= source.conversations(text)
    return found


# --- Snippets -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    source: str  # a SearchSource.kind
    text: str  # the plain text around the hit, "…" where it was cut
    html: SafeString  # the same, escaped, each occurrence of the search in <mark>

    def as_dict(self) -> dict:
        return {"source": self.source, "text": self.text, "html": str(self.html)}


def snippet(text: str, search: str, *, source: str = "message") -> Snippet | None:
    """The part of `text` around the first occurrence of `search` (case-insensitive), cut at word boundaries, with
    every occurrence in it marked. None if `search` is not in `text`."""
    pattern = re.compile(re.escape(search), re.IGNORECASE)
    found = pattern.search(text)
    if found is None or not search:
        return None
    start, end = max(0, found.start() - SNIPPET_BEFORE), min(len(text), found.end() + SNIPPET_AFTER)
    if start > 0:
        space = text.find(" ", start, found.start())
        start = space + 1 if space != -1 else start
    if end < len(text):
        space = text.rfind(" ", found.end(), end)
        end = space if space != -1 else end
    window = " ".join(text[start:end].split())  # newlines and runs of spaces read as one line
    prefix, suffix = ("…" if start > 0 else ""), ("…" if end < len(text) else "")
    html: list[str] = []
    last = 0
    for match in pattern.finditer(window):
        html.append(escape(window[last : match.start()]))
        html.append(f"<mark>{escape(match.group())}</mark>")
        last = match.end()
    html.append(escape(window[last:]))
    return Snippet(
        source=source, text=f"{prefix}{window}{suffix}",
        html=mark_safe(escape(prefix) + "".join(html) + escape(suffix)),  # noqa: S308 (every piece is escaped)
    )


def attach_snippets(conversations: Iterable[Conversation], search: str) -> None:
    """Give each chat of a page of search results its `search_snippet` (a Snippet or None): the first source, in
    SOURCES order, with a hit in it. A fixed number of queries per source, whatever the page holds."""
    conversations = list(conversations)
    search = search.strip()
    for conversation in conversations:
        conversation.search_snippet = None
    if not search or not conversations:
        return
    waiting = {conversation.pk: conversation for conversation in conversations}
    for source in SOURCES:
        if not waiting:
            break
        for pk, text in source.hits(list(waiting), search).items():
            found = snippet(text, search, source=source.kind)
            if found is not None and pk in waiting:
                waiting.pop(pk).search_snippet = found


def _opening(text: str, source: str) -> Snippet:
    """The start of `text` as a snippet with nothing marked: a stemmed match (the search "gardens", the passage
    "garden") has no literal occurrence to centre on."""
    window = " ".join(text[: SNIPPET_BEFORE + SNIPPET_AFTER].split())
    suffix = "…" if len(text) > SNIPPET_BEFORE + SNIPPET_AFTER else ""
    return Snippet(source=source, text=window + suffix, html=escape(window + suffix))


# --- Knowledge documents ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentHit:
    """A passage of one of the user's knowledge documents that holds the search."""

    document_id: int
    document_name: str
    base_id: int
    base_name: str
    passage_id: int
    page: int
    url: str  # the document opened at this passage (the page a citation opens)
    snippet: Snippet

    def as_dict(self) -> dict:
        return {
            "document_id": self.document_id, "document_name": self.document_name, "knowledge_base_id": self.base_id,
            "knowledge_base_name": self.base_name, "passage_id": self.passage_id, "page": self.page, "url": self.url,
            "snippet": self.snippet.as_dict(),
        }


class KnowledgeSource:
    """The passages of the user's knowledge documents: the first matching passage of each of the newest documents
    that hold the text. One query, whatever the user's library; the owner in it, as knowledge.search.passage_get."""

    kind: ClassVar[str] = "knowledge"

    def documents(self, user, text: str, limit: int = DOCUMENT_HITS) -> list[DocumentHit]:
        text = text.strip()
        if not user.is_authenticated or not re.search(r"\w", text):
            return []
        passages = (
            Passage.objects.filter(passage_text_matches(text), document__base__owner=user)
            .select_related("document__base").defer("document__text")  # a whole document's text
            .order_by("-document_id", "ordinal")[:DOCUMENT_PASSAGES_READ]
        )
        hits: dict[int, DocumentHit] = {}
        for passage in passages:
            if passage.document_id in hits:
                continue
            document = passage.document
            hits[document.pk] = DocumentHit(
                document_id=document.pk, document_name=document.name, base_id=document.base_id,
                base_name=document.base.name, passage_id=passage.pk, page=passage.page,
                url=passage.get_absolute_url(),
                snippet=snippet(passage.text, text, source=self.kind) or _opening(passage.text, self.kind),
            )
            if len(hits) == limit:
                break
        return list(hits.values())


DOCUMENT_SOURCE = KnowledgeSource()


def documents_matching(user, text: str) -> list[DocumentHit]:
    """The user's knowledge documents that hold `text` (at most DOCUMENT_HITS), each with its snippet and link."""
    return DOCUMENT_SOURCE.documents(user, text)
