"""Indexing a document, on the task queue (django-tasks): its text is read page by page, split into overlapping
passages at headings, paragraphs and sentences, and stored in batches, each batch one short transaction that also
records the progress (pages done of pages total) the page and the API show. With an embeddings model configured,
the passages' vectors are computed once the document is ready (knowledge.vectors).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from conversations import attachments, errors
from knowledge.models import Document, Passage
from knowledge.vectors import embed_document_passages

logger = logging.getLogger(__name__)

PAGES_PER_BATCH = 10
PASSAGES_PER_BATCH = 200
PAGE_SEPARATOR = "\n\n"
# Where a passage may end, best first: before a Markdown heading, at a paragraph, a sentence, a line, a word.
BREAKS = ("\n#", "\n\n", ". ", "? ", "! ", "\n", " ")


def passage_spans(text: str, *, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each passage of `text`: at most `size` characters, ending at the best break in its second
    half, the next one starting `overlap` characters earlier (at a word) unless it starts a new section."""
    length = len(text)
    start = 0
    while start < length:
        while start < length and text[start].isspace():
            start += 1
        if start >= length:
            return
        end = min(start + size, length)
        at_heading = False
        if end < length:
            window = text[start:end]
            for mark in BREAKS:
                cut = window.rfind(mark, size // 2)
                if cut > 0:
                    at_heading = mark == "\n#"
                    end = start + cut + (1 if at_heading else len(mark))
                    break
        yield start, end
        if end >= length:
            return
        if at_heading:
            start = end
        else:
            following = max(end - overlap, start + 1)
            space = text.find(" ", following, end)
            start = space + 1 if space != -1 else following


@task()
def index_document(document_id: int) -> int:
    """Index a queued document; returns how many passages it has (0 if it was deleted or failed)."""
    claimed = Document.objects.filter(pk=document_id, status=Document.Status.QUEUED).update(
        status=Document.Status.INDEXING
    )
    if not claimed:
        return 0
    document = Document.objects.get(pk=document_id)
    try:
        count = _index(document)
    except errors.AttachmentRefused as exc:
        Document.objects.filter(pk=document_id).update(status=Document.Status.FAILED, error=exc.message)
        Passage.objects.filter(document_id=document_id).delete()
        return 0
    if count:  # ready for full-text search already; the vectors come after, and may fail without undoing that
        embed_document_passages(document_id)
    return count


def _index(document: Document) -> int:
    pages_text: list[str] = []
    batch: list[Passage] = []
    offset = ordinal = pages_done = 0

    def store(pages_done: int) -> bool:
        """One short transaction: this batch and the progress; False if the document was deleted meanwhile."""
        with transaction.atomic():
            if not Document.objects.filter(pk=document.pk).update(pages_done=pages_done, passage_count=ordinal):
                return False
            Passage.objects.bulk_create(batch)
        batch.clear()
        return True

    with document.file.open("rb") as file:
        extracted = attachments.document_text(file, max_chars=settings.KNOWLEDGE_DOCUMENT_MAX_CHARS)
        Document.objects.filter(pk=document.pk).update(pages_total=extracted.page_count)
        for page_number, page in enumerate(extracted.pages, start=1):
            page = page.replace("\x00", "")  # PostgreSQL stores no NUL; a PDF's text may hold one
            for start, end in passage_spans(
                page, size=settings.KNOWLEDGE_PASSAGE_CHARS, overlap=settings.KNOWLEDGE_PASSAGE_OVERLAP
            ):
                batch.append(Passage(
                    document_id=document.pk, ordinal=ordinal, text=page[start:end], start=offset + start,
                    end=offset + end, page=page_number,
                ))
                ordinal += 1
            pages_text.append(page)
            offset += len(page) + len(PAGE_SEPARATOR)
            pages_done = page_number
            if (page_number % PAGES_PER_BATCH == 0 or len(batch) >= PASSAGES_PER_BATCH) and not store(pages_done):
                return 0
    if not store(pages_done):
        return 0
    if ordinal == 0:
        raise errors.AttachmentRefused("This document has no text to index (a scanned PDF?).")
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.READY, text=PAGE_SEPARATOR.join(pages_text), pages_done=extracted.page_count,
        indexed_at=timezone.now(),
    )
    logger.info("indexed knowledge document %s: %s pages, %s passages", document.pk, pages_done, ordinal)
    return ordinal
