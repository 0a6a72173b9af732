"""Writes: knowledge bases, their documents (stored with the attachments' checks and storage quota, then indexed on
the task queue), and which chats a base is attached to. Short transactions; refusals are KnowledgeRefused or
AttachmentRefused (what and why)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from conversations import attachments, errors
from knowledge.errors import KnowledgeRefused
from knowledge.indexing import index_document
from knowledge.models import Document, KnowledgeBase

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.core.files.uploadedfile import UploadedFile

    from accounts.models import User
    from conversations.models import Conversation, Project


def knowledge_base_create(*, owner: User, name: str, description: str = "") -> KnowledgeBase:
    limit = settings.KNOWLEDGE_BASES_PER_USER
    if KnowledgeBase.objects.filter(owner=owner).count() >= limit:
        raise KnowledgeRefused(f"You have {limit} knowledge bases, the most one account may have. Delete one first.")
    return KnowledgeBase.objects.create(owner=owner, name=name.strip(), description=description.strip())


def knowledge_base_update(*, base: KnowledgeBase, **fields: Any) -> KnowledgeBase:
    for name in ("name", "description"):
        if name in fields:
            setattr(base, name, fields[name].strip())
    base.updated_at = timezone.now()
    base.save(update_fields=["name", "description", "updated_at"])
    return base


def knowledge_base_delete(*, base: KnowledgeBase) -> None:
    """The base, its documents (their files leave the storage and the quota) and passages."""
    for document in base.documents.all():
        document_delete(document=document)
    base.delete()


def document_upload(*, base: KnowledgeBase, upload: UploadedFile) -> Document:
    """Check and store a file in `base`, then queue its indexing (in the same transaction: the task runs once the
    document is committed). Refused files cost nothing: their quota is given back and no bytes are kept."""
    limit = settings.KNOWLEDGE_DOCUMENTS_PER_BASE
    if base.documents.count() >= limit:
        raise KnowledgeRefused(f"This knowledge base has {limit} documents, the most one base may hold.")
    size = upload.size or 0
    if size > settings.KNOWLEDGE_DOCUMENT_MAX_BYTES:
        raise errors.AttachmentTooLarge(
            f"The file is {size:,} bytes; the limit is {settings.KNOWLEDGE_DOCUMENT_MAX_BYTES:,} bytes."
        )
    if size == 0:
        raise errors.AttachmentRefused("The file is empty.")
    owner = base.owner
    attachments.storage_reserve(owner=owner, size=size)
    try:
        with transaction.atomic():
            return _document_store(base, upload, size)
    except BaseException:
        attachments.storage_release(owner_id=owner.pk, size=size)
        raise


def project_document_upload(*, project: Project, upload: UploadedFile) -> Document:
    """Upload a file straight into a project: it goes into the project's own knowledge base (its owner's, attached to
    the project), made on the first upload and named after the project. A refused first upload leaves no base."""
    base, created = _project_upload_base(project)
    try:
        return document_upload(base=base, upload=upload)
    except BaseException:
        if created:
            base.delete()
        raise


def _project_upload_base(project: Project) -> tuple[KnowledgeBase, bool]:
    base = KnowledgeBase.objects.filter(owner_id=project.owner_id, upload_project=project).first()
    created = base is None
    if base is None:
        try:
            with transaction.atomic():
                base = knowledge_base_create(owner=project.owner, name=project.name[:100])
                base.upload_project = project
                base.save(update_fields=["upload_project"])
        except IntegrityError:  # a parallel first upload made it
            base, created = KnowledgeBase.objects.get(owner_id=project.owner_id, upload_project=project), False
    base.projects.add(project)  # a file put in the project is one of its files, even if its base was detached
    return base, created


def _document_store(base: KnowledgeBase, upload: UploadedFile, size: int) -> Document:
    # The type and hostile-file checks (a PDF's pages, a zip bomb, binary or non-UTF-8 text) before anything is
    # kept; the text itself is read by the indexing task.
    checked = attachments.document_text(upload, max_chars=settings.KNOWLEDGE_DOCUMENT_MAX_CHARS)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    name = attachments.clean_file_name(upload.name)
    document = Document(
        base=base, name=name, content_type=checked.content_type, size=size, sha256=digest.hexdigest(),
        pages_total=checked.page_count,
    )
    document.file.save(name, upload, save=False)
    try:
        document.save()
    except BaseException:
        if document.file.name:
            document.file.storage.delete(document.file.name)
        raise
    index_document.enqueue(document.pk)
    KnowledgeBase.objects.filter(pk=base.pk).update(updated_at=timezone.now())
    return document


def document_delete(*, document: Document) -> None:
    document.delete()


@receiver(post_delete, sender=Document)
def _delete_file(sender: type[Document], instance: Document, **kwargs: Any) -> None:
    """The bytes go with the row (a deleted document, base or account), and give their room in the quota back."""
    attachments.storage_release(owner_id=instance.base.owner_id, size=instance.size)
    name = instance.file.name
    if name:
        transaction.on_commit(lambda: instance.file.storage.delete(name))


def conversation_knowledge_set(*, conversation: Conversation, base_ids: Iterable[int]) -> list[KnowledgeBase]:
    """Attach exactly these bases of the chat's owner to the chat; KnowledgeRefused naming an id that is not one."""
    return _attach_exactly(owner_id=conversation.owner_id, base_ids=base_ids, to=conversation, relation="conversations")


def project_knowledge_set(*, project: Project, base_ids: Iterable[int]) -> list[KnowledgeBase]:
    """Make exactly these bases of the project's owner the project's files (every chat in it searches them)."""
    return _attach_exactly(owner_id=project.owner_id, base_ids=base_ids, to=project, relation="projects")


def _attach_exactly(*, owner_id: int, base_ids: Iterable[int], to, relation: str) -> list[KnowledgeBase]:
    wanted = [int(pk) for pk in dict.fromkeys(base_ids)]
    bases = list(KnowledgeBase.objects.filter(owner_id=owner_id, pk__in=wanted))
    missing = sorted(set(wanted) - {base.pk for base in bases})
    if missing:
        raise KnowledgeRefused(f"No such knowledge base of yours: {', '.join(map(str, missing))}.")
    with transaction.atomic():
        for base in KnowledgeBase.objects.filter(owner_id=owner_id, **{relation: to}):
            if base.pk not in wanted:
                getattr(base, relation).remove(to)
        for base in bases:
            getattr(base, relation).add(to)
    return bases
