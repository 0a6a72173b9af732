"""Helpers of the knowledge tests: a base with documents, indexed for real by the task worker."""

from django.core.files.uploadedfile import SimpleUploadedFile

from chatsite.task_worker import run_queued_tasks
from knowledge.models import Document, KnowledgeBase
from knowledge.services import document_upload, knowledge_base_create


def indexed_base(owner, documents: dict[str, bytes], name: str = "Handbook") -> KnowledgeBase:
    base = knowledge_base_create(owner=owner, name=name)
    for file_name, content in documents.items():
        document_upload(base=base, upload=SimpleUploadedFile(file_name, content))
    run_queued_tasks()
    assert set(Document.objects.filter(base=base).values_list("status", flat=True)) <= {Document.Status.READY}
    return base
