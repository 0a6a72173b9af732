"""Attachments: what a file is (from its content, never its name), its text (once, at upload), and how a
message with files reads to the model (documents as delimited text, images as `image_url` parts for models
marked vision-capable in CHAT_VISION_MODELS; the others refuse images before anything is sent).
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import itertools
import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Greatest
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import FileResponse, Http404
from django.utils import timezone

from conversations import errors, llm
from conversations.llm import IMAGE_TOKENS
from conversations.messages import ContentPart
from conversations.models import Attachment, Conversation, StorageUsage, Turn
from teams.policy import Feature, policy_for

if TYPE_CHECKING:
    import uuid

    from accounts.models import User

logger = logging.getLogger(__name__)

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# What a stored file is served as (file_response): the type detected at upload, one of these.
SERVED_TYPES = (*sorted(IMAGE_TYPES), "application/pdf", DOCX_TYPE, "text/plain")
DOCX_MAX_XML_BYTES = 20 * 1024 * 1024  # word/document.xml unpacked
ZIP_MAX_RATIO = 100  # unpacked / packed: a zip bomb is far above this
UNSENT_FILE_HOURS = 24  # an upload not sent with a message within this long is deleted (housekeeping)
_WORD = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _detect(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    return None


# Unicode categories that are never part of a name a person reads: control characters (Cc), format characters
# (Cf: the right-to-left override that makes "invoice\u202egpj.exe" read "invoiceexe.jpg", other bidi controls,
# zero-width characters), line and paragraph separators, surrogates and private use.
_UNSHOWN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def clean_file_name(name: str | None) -> str:
    """The one cleaning of a file's name, however the file arrives (REST upload, /v1 file parts): characters that
    hide or reorder what is shown are removed, path separators become "_", and at most 200 characters are kept
    (the end, with the extension)."""
    shown = "".join(char for char in (name or "") if unicodedata.category(char) not in _UNSHOWN_CATEGORIES)
    shown = re.sub(r"[/\\]", "_", unicodedata.normalize("NFC", shown)).strip()[-200:].strip()
    return shown or "file"


def attachment_create(*, owner: User, upload: UploadedFile) -> Attachment:
    """Check, read and store an uploaded file for `owner`. Raises errors.AttachmentRefused (what and why), or
    errors.FeatureDisabled when the owner's groups do not allow file uploads."""
    if not policy_for(owner).allows(Feature.FILE_UPLOADS):
        raise errors.FeatureDisabled("Your account may not attach files.")
    size = upload.size or 0
    if size > settings.CHAT_ATTACHMENT_MAX_BYTES:
        raise errors.AttachmentTooLarge(
            f"The file is {size:,} bytes; the limit is {settings.CHAT_ATTACHMENT_MAX_BYTES:,} bytes."
        )
    if size == 0:
        raise errors.AttachmentRefused("The file is empty.")
    # Held before anything is read: an upload past the quota costs no text extraction.
    storage_reserve(owner=owner, size=size)
    try:
        with transaction.atomic():  # a savepoint: a failed insert leaves a caller's transaction usable
            return _attachment_store(owner=owner, upload=upload, size=size)
    except BaseException:
        storage_release(owner_id=owner.pk, size=size)
        raise


def _attachment_store(*, owner: User, upload: UploadedFile, size: int) -> Attachment:
    digest = hashlib.sha256()
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    content_type = _detect(head)
    name = clean_file_name(upload.name)
    text, truncated = "", False
    if content_type in IMAGE_TYPES:
        kind = Attachment.Kind.IMAGE
    elif content_type == "application/pdf":
        kind, (text, truncated) = Attachment.Kind.DOCUMENT, _pdf_text(upload)
    elif content_type == "application/zip":
        content_type = DOCX_TYPE
        kind, (text, truncated) = Attachment.Kind.DOCUMENT, _docx_text(upload)
    else:
        content_type = "text/plain"
        kind, (text, truncated) = Attachment.Kind.DOCUMENT, _plain_text(upload)
    upload.seek(0)
    attachment = Attachment(
        owner=owner, name=name, content_type=content_type, kind=kind, size=size, sha256=digest.hexdigest(),
        text=text, text_truncated=truncated,
    )
    attachment.file.save(name, upload, save=False)  # streamed to storage in chunks
    try:
        attachment.save()
    except BaseException:
        if attachment.file.name:  # no row will point at these bytes
            attachment.file.storage.delete(attachment.file.name)
        raise
    return attachment


def storage_reserve(*, owner: User, size: int) -> None:
    """Hold `size` bytes of the owner's storage quota before the file is written, or AttachmentTooLarge.

    One conditional UPDATE of the owner's StorageUsage row: the database applies parallel ones one after the
    other, so uploads on any number of workers never pass the quota together (reading the sum of stored files,
    then writing, let them all through)."""
    quota = settings.CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES
    StorageUsage.objects.get_or_create(user=owner)  # a new user's row (the migration made the others')
    if size <= quota and StorageUsage.objects.filter(user=owner, bytes__lte=quota - size).update(
        bytes=F("bytes") + size
    ):
        return
    used = StorageUsage.objects.get(user=owner).bytes
    raise errors.AttachmentTooLarge(
        f"Your files would use {used + size:,} bytes; your storage quota is {quota:,} bytes. Delete chats with "
        "files to make room."
    )


def storage_release(*, owner_id: int, size: int) -> None:
    """Give back bytes held by storage_reserve: a failed upload's, a deleted file's."""
    # Never below zero: a row counts no less than nothing, whatever deleted the files (an account, a chat).
    StorageUsage.objects.filter(user_id=owner_id).update(bytes=Greatest(F("bytes") - size, Value(0)))


def _limit(text: str, limit: int | None = None) -> tuple[str, bool]:
    limit = settings.CHAT_ATTACHMENT_MAX_TEXT_CHARS if limit is None else limit
    return (text[:limit], True) if len(text) > limit else (text, False)


def _plain_text(upload: File, limit: int | None = None) -> tuple[str, bool]:
    """The file's text, read chunk by chunk: the whole file is checked (UTF-8, no NUL), only the part the model
    reads (`limit`, CHAT_ATTACHMENT_MAX_TEXT_CHARS by default) is kept in memory."""
    limit = settings.CHAT_ATTACHMENT_MAX_TEXT_CHARS if limit is None else limit
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    kept, length = [], 0
    upload.seek(0)
    try:
        for chunk in itertools.chain(upload.chunks(), [None]):  # None: the end (what the decoder still holds)
            if chunk is not None and b"\x00" in chunk:
                raise errors.AttachmentRefused(
                    "This file type is not supported: attach text (Markdown, code, CSV, JSON, HTML), PDF, DOCX, "
                    "or PNG, JPEG, WebP and GIF images."
                )
            text = decoder.decode(b"", final=True) if chunk is None else decoder.decode(chunk)
            if length < limit:
                kept.append(text[: limit - length])
            length += len(text)
    except UnicodeDecodeError:
        raise errors.AttachmentRefused("This text file is not UTF-8: save it as UTF-8 and attach it again.") from None
    return "".join(kept), length > limit


def _pdf_reader(upload: File) -> Any:
    """An open pypdf reader of a PDF whose page count is within CHAT_ATTACHMENT_MAX_PDF_PAGES, and its page count."""
    import pypdf

    upload.seek(0)
    try:
        reader = pypdf.PdfReader(upload)
        # Any: a hostile file may hold anything here, and whatever fails is caught below.
        root: Any = reader.trailer["/Root"]
        declared = root["/Pages"].get("/Count", 0)  # before walking a hostile page tree
        pages = max(int(declared), 0) if int(declared) > settings.CHAT_ATTACHMENT_MAX_PDF_PAGES else len(reader.pages)
    except Exception as exc:  # pypdf raises many kinds on a damaged or hostile file
        logger.info("unreadable PDF: %s", type(exc).__name__)
        raise errors.AttachmentRefused("This PDF could not be read (damaged or encrypted).") from None
    if pages > settings.CHAT_ATTACHMENT_MAX_PDF_PAGES:
        raise errors.AttachmentRefused(
            f"The PDF has {pages:,} pages; at most {settings.CHAT_ATTACHMENT_MAX_PDF_PAGES:,} are read."
        )
    return reader, pages


def _pdf_pages(reader: Any, limit: int) -> Iterator[str]:
    """The text of each page in turn, until `limit` characters are read."""
    length = 0
    for page in reader.pages:
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # a hostile page: the same refusal as an unreadable file
            logger.info("unreadable PDF page: %s", type(exc).__name__)
            raise errors.AttachmentRefused("This PDF could not be read (damaged or encrypted).") from None
        yield text
        length += len(text)
        if length > limit:
            return


def _pdf_text(upload: File) -> tuple[str, bool]:
    reader, _ = _pdf_reader(upload)
    text = "\n\n".join(_pdf_pages(reader, settings.CHAT_ATTACHMENT_MAX_TEXT_CHARS)).strip()
    if not text:
        raise errors.AttachmentRefused("This PDF has no text to read (a scan?). Attach its pages as images.")
    return _limit(text)


def _docx_text(upload: File, limit: int | None = None) -> tuple[str, bool]:
    upload.seek(0)
    try:
        with zipfile.ZipFile(upload) as archive:
            info = archive.getinfo("word/document.xml")
            if info.file_size > DOCX_MAX_XML_BYTES or info.file_size > ZIP_MAX_RATIO * max(info.compress_size, 1):
                raise errors.AttachmentRefused("This document unpacks to far more than its size: it is refused.")
            with archive.open(info) as xml:
                data = xml.read(DOCX_MAX_XML_BYTES + 1)
        if len(data) > DOCX_MAX_XML_BYTES:
            raise errors.AttachmentRefused("This document unpacks to far more than its size: it is refused.")
        root = ElementTree.fromstring(data)  # noqa: S314 (expat limits entity expansion; no external entities)
    except errors.AttachmentRefused:
        raise
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError, OSError, ValueError):
        raise errors.AttachmentRefused(
            "This archive is not a Word document (.docx) chatsite can read. Zip files are not supported."
        ) from None
    paragraphs = ["".join(node.text or "" for node in p.iter(f"{_WORD}t")) for p in root.iter(f"{_WORD}p")]
    return _limit("\n".join(paragraphs).strip(), limit)


@dataclass
class DocumentText:
    """A document's text as pages (a PDF's own pages; one page for the other kinds), read lazily: the file's type
    and hostile-file checks are done when this is made, the pages' text as they are iterated."""

    content_type: str
    page_count: int
    pages: Iterator[str]


def document_text(file: File, *, max_chars: int) -> DocumentText:
    """The text of a document (PDF, DOCX, or UTF-8 text) with the same checks as an attached file, up to
    `max_chars` characters; AttachmentRefused for an image or a file that fails them. For knowledge bases."""
    file.seek(0)
    content_type = _detect(file.read(16))
    file.seek(0)
    if content_type in IMAGE_TYPES:
        raise errors.AttachmentRefused("An image has no text to index: add PDF, DOCX, Markdown, HTML or text files.")
    if content_type == "application/pdf":
        reader, pages = _pdf_reader(file)
        return DocumentText(content_type, pages, _pdf_pages(reader, max_chars))
    if content_type == "application/zip":
        text, _ = _docx_text(file, max_chars)
        return DocumentText(DOCX_TYPE, 1, iter([text]))
    text, _ = _plain_text(file, max_chars)
    return DocumentText("text/plain", 1, iter([text]))


def unsent_attachments() -> QuerySet[Attachment]:
    """Files uploaded but never sent for UNSENT_FILE_HOURS: an abandoned draft's, or an upload that was never used."""
    return Attachment.objects.filter(
        turn__isnull=True, created_at__lt=timezone.now() - timedelta(hours=UNSENT_FILE_HOURS)
    )


def unsent_attachments_delete() -> int:
    """Delete the files never sent for UNSENT_FILE_HOURS (housekeeping, prune_conversations); how many went."""
    deleted = 0
    for attachment in unsent_attachments().iterator():  # one by one: each file leaves the storage with its row
        attachment.delete()
        deleted += 1
    return deleted


@receiver(post_delete, sender=Attachment)
def _delete_file(sender: type[Attachment], instance: Attachment, **kwargs: Any) -> None:
    """The bytes go with the row (a deleted message, conversation, account, or prune_conversations), and give
    their room in the storage quota back."""
    storage_release(owner_id=instance.owner_id, size=instance.size)
    name = instance.file.name  # none: no file (a FieldFile is false then)
    if name:
        transaction.on_commit(lambda: instance.file.storage.delete(name))


# --- At send time ------------------------------------------------------------------------------------


def model_reads_images(model: str) -> bool:
    if llm.get_backend().name == "local":
        return False
    return model in settings.CHAT_VISION_MODELS


def attachments_to_send(*, owner: User, ids: list[uuid.UUID], model: str) -> list[Attachment]:
    """The user's unsent attachments `ids`, checked for this model; AttachmentRefused otherwise."""
    if not ids:
        return []
    if len(ids) > settings.CHAT_ATTACHMENTS_PER_MESSAGE:
        raise errors.AttachmentRefused(f"At most {settings.CHAT_ATTACHMENTS_PER_MESSAGE} files per message.")
    found = {a.pk: a for a in Attachment.objects.filter(pk__in=ids, owner=owner, turn__isnull=True)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise errors.AttachmentRefused(f"No such unsent attachment of yours: {', '.join(missing)}.")
    attachments = [found[i] for i in ids]
    backend = llm.get_backend()
    images = sum(a.kind == Attachment.Kind.IMAGE for a in attachments)
    tokens = sum(backend.count_tokens(a.text) for a in attachments if a.text) + IMAGE_TOKENS * images
    budget = backend.context_tokens(model) - settings.CHAT_MAX_ANSWER_TOKENS
    if tokens > budget:
        raise errors.AttachmentRefused(
            f"The files are too long for this model: about {tokens:,} tokens, and it reads {budget:,} at most "
            "with its answer. Attach fewer files, or a part of one."
        )
    if any(a.kind == Attachment.Kind.IMAGE for a in attachments) and not model_reads_images(model):
        who = "The embedded model (SmolLM2)" if backend.name == "local" else f"The model {model}"
        raise errors.AttachmentRefused(f"{who} reads text only: it cannot see images. Remove the image to send.")
    return attachments


def bind(attachments: list[Attachment], turn: Turn) -> None:
    """Attach to the stored user turn (inside the turn-start transaction)."""
    if not attachments:
        return
    Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(turn=turn)
    Conversation.objects.filter(pk=turn.conversation_id).update(has_attachments=True)
    turn.conversation.has_attachments = True


# --- What the model reads --------------------------------------------------------------------------


def document_block(attachment: Attachment) -> str:
    note = (
        f"\n[Only the first {len(attachment.text):,} characters of this file are included.]"
        if attachment.text_truncated else ""
    )
    return f'\n\n<file name="{attachment.name}">\n{attachment.text}\n</file>{note}'


def message_content(text: str, attachments: list[Attachment], *, vision: bool) -> str | list[ContentPart]:
    """A user message's content for the model: its text and documents, and images as parts when `vision`."""
    documents = "".join(document_block(a) for a in attachments if a.kind == Attachment.Kind.DOCUMENT)
    images = [a for a in attachments if a.kind == Attachment.Kind.IMAGE]
    if not images:
        return text + documents
    if not vision:
        shown = "".join(f'\n\n[image "{a.name}": not shown, this model reads text only]' for a in images)
        return text + documents + shown
    parts: list[ContentPart] = [{"type": "text", "text": text + documents}]
    parts += [{"type": "image_url", "image_url": {"url": data_url(a)}} for a in images]
    return parts


def data_url(attachment: Attachment) -> str:
    with attachment.file.open("rb") as file:
        return f"data:{attachment.content_type};base64,{base64.b64encode(file.read()).decode()}"


def file_response(attachment: Attachment, *, cache_control: str = "private, max-age=3600") -> FileResponse:
    """The file, streamed, inert: images inline with their own type; anything else as a download; never
    sniffed, and sandboxed even if a browser opened it. A file no longer in storage is a 404."""
    inline = attachment.content_type in IMAGE_TYPES
    try:
        stored = attachment.file.open("rb")
    except FileNotFoundError:  # the row outlived its bytes (storage emptied by hand, a restore without media)
        raise Http404("The file is no longer stored.") from None
    response = FileResponse(
        stored, as_attachment=not inline, filename=attachment.name,
        content_type=attachment.content_type if inline or attachment.content_type != "text/plain"
        else "text/plain; charset=utf-8",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["Cache-Control"] = cache_control
    return response
