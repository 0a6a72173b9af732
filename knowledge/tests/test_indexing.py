"""Indexing on the task queue: passages, offsets, pages, progress, limits, hostile files."""

import io

import pypdf
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatsite.task_worker import run_queued_tasks
from conversations import errors
from conversations.models import StorageUsage
from knowledge.errors import KnowledgeRefused
from knowledge.indexing import passage_spans
from knowledge.models import Document, Passage
from knowledge.search import passages_search
from knowledge.services import document_upload, knowledge_base_create, knowledge_base_delete
from knowledge.tests.support import indexed_base

pytestmark = pytest.mark.django_db(transaction=True)


def pdf_with_pages(texts: list[str]) -> bytes:
    """A real PDF whose pages hold these texts (Helvetica, one line each)."""
    writer = pypdf.PdfWriter()
    for text in texts:
        page = writer.add_blank_page(612, 792)
        font = pypdf.generic.DictionaryObject({
            pypdf.generic.NameObject("/Type"): pypdf.generic.NameObject("/Font"),
            pypdf.generic.NameObject("/Subtype"): pypdf.generic.NameObject("/Type1"),
            pypdf.generic.NameObject("/BaseFont"): pypdf.generic.NameObject("/Helvetica"),
        })
        page[pypdf.generic.NameObject("/Resources")] = pypdf.generic.DictionaryObject({
            pypdf.generic.NameObject("/Font"): pypdf.generic.DictionaryObject(
                {pypdf.generic.NameObject("/F1"): writer._add_object(font)}),
        })
        stream = pypdf.generic.DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
        page[pypdf.generic.NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_spans_cover_the_text_at_breaks_with_overlap():
    paragraphs = [f"Paragraph {n} " + "word " * 60 for n in range(20)]
    text = "\n\n".join(paragraphs)
    spans = list(passage_spans(text, size=1000, overlap=150))
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (start, end), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert end - start <= 1000
        assert next_start < end  # overlap
        assert end - next_start <= 150
    covered = set()
    for start, end in spans:
        covered.update(range(start, end))
    assert all(i in covered or text[i].isspace() for i in range(len(text)))


def test_a_heading_starts_a_passage():
    text = "Intro " + "x " * 300 + "\n# Refunds\nRefunds take five days. " + "y " * 200
    spans = list(passage_spans(text, size=1000, overlap=150))
    assert any(text[start:].startswith("# Refunds") for start, _ in spans)


def test_a_document_is_indexed_off_the_request_path_with_progress(user):
    base = knowledge_base_create(owner=user, name="Manuals")
    document = document_upload(base=base, upload=SimpleUploadedFile("guide.md", b"# Guide\n\nThe zebra code is 4411."))
    document.refresh_from_db()
    assert document.status == Document.Status.QUEUED and document.passage_count == 0
    assert not Passage.objects.exists()

    run_queued_tasks()

    document.refresh_from_db()
    assert document.status == Document.Status.READY
    assert (document.pages_done, document.pages_total, document.progress_percent) == (1, 1, 100)
    [passage] = Passage.objects.filter(document=document)
    assert document.text[passage.start:passage.end] == passage.text
    found = passages_search(owner_ids=[user.pk], base_ids=[base.pk], query="zebra?", limit=5)
    assert [p.pk for p in found] == [passage.pk]


def test_a_pdf_is_indexed_page_by_page_in_batches(user):
    texts = [f"Page {n} tells about topic{n} in plain words." for n in range(1, 26)]
    base = knowledge_base_create(owner=user, name="Report")
    document = document_upload(base=base, upload=SimpleUploadedFile("report.pdf", pdf_with_pages(texts)))
    assert document.pages_total == 25
    with CaptureQueriesContext(connection) as queries:
        run_queued_tasks()
    document.refresh_from_db()
    assert document.status == Document.Status.READY and document.pages_done == 25
    # Batches of ten pages: three inserts of passages, not one per page.
    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "knowledge_passage"')]
    assert len(inserts) == 3
    [found] = passages_search(owner_ids=[user.pk], base_ids=[base.pk], query="topic17", limit=5)
    assert found.page == 17 and "topic17" in found.text


def test_limits_refuse_clearly(user, settings):
    settings.KNOWLEDGE_BASES_PER_USER = 1
    settings.KNOWLEDGE_DOCUMENTS_PER_BASE = 1
    base = knowledge_base_create(owner=user, name="One")
    with pytest.raises(KnowledgeRefused, match="1 knowledge bases"):
        knowledge_base_create(owner=user, name="Two")
    document_upload(base=base, upload=SimpleUploadedFile("a.txt", b"alpha"))
    with pytest.raises(KnowledgeRefused, match="1 documents"):
        document_upload(base=base, upload=SimpleUploadedFile("b.txt", b"beta"))
    settings.KNOWLEDGE_DOCUMENTS_PER_BASE = 5
    settings.KNOWLEDGE_DOCUMENT_MAX_BYTES = 10
    with pytest.raises(errors.AttachmentTooLarge):
        document_upload(base=base, upload=SimpleUploadedFile("c.txt", b"x" * 11))


def test_documents_count_against_the_storage_quota_and_give_it_back(user, settings):
    settings.CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES = 100
    base = knowledge_base_create(owner=user, name="Quota")
    document_upload(base=base, upload=SimpleUploadedFile("a.txt", b"a" * 60))
    assert StorageUsage.objects.get(user=user).bytes == 60
    with pytest.raises(errors.AttachmentTooLarge, match="storage quota"):
        document_upload(base=base, upload=SimpleUploadedFile("b.txt", b"b" * 60))
    assert StorageUsage.objects.get(user=user).bytes == 60
    knowledge_base_delete(base=base)
    assert StorageUsage.objects.get(user=user).bytes == 0


HOSTILE = {
    "binary.txt": (b"MZ\x90\x00\x03\x00\x00\x00", "not supported"),
    "latin1.txt": ("caf\xe9 cr\xe8me".encode("latin-1"), "not UTF-8"),
    "broken.pdf": (b"%PDF-1.7\n1 0 obj <<", "could not be read"),
    "image.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "no text to index"),
    "fake.docx": (b"PK\x03\x04not really a zip", "not a Word document"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_documents_are_refused_and_cost_nothing(user, name):
    content, reason = HOSTILE[name]
    base = knowledge_base_create(owner=user, name="Hostile")
    with pytest.raises(errors.AttachmentRefused, match=reason):
        document_upload(base=base, upload=SimpleUploadedFile(name, content))
    assert not Document.objects.exists()
    assert StorageUsage.objects.get(user=user).bytes == 0


def test_markup_in_a_document_is_indexed_as_text(user):
    base = indexed_base(user, {"evil.html": b"<script>alert('kb')</script><p onclick=x>The otter count is 12.</p>"})
    [passage] = passages_search(owner_ids=[user.pk], base_ids=[base.pk], query="otter", limit=5)
    assert "<script>" in passage.text  # kept as text: every place that shows it escapes it (test_pages)


def test_a_document_deleted_while_queued_is_skipped(user):
    base = knowledge_base_create(owner=user, name="Gone")
    document = document_upload(base=base, upload=SimpleUploadedFile("a.txt", b"short-lived"))
    document.delete()
    run_queued_tasks()
    assert not Passage.objects.exists()
