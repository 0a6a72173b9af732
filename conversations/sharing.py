"""Share links: a read-only snapshot of a conversation behind an unguessable token, revocable, optionally expiring,
with the files sent in it only if the owner includes them."""

import secrets
import uuid
from datetime import timedelta

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from conversations import selectors
from conversations.models import Attachment, Conversation, ShareLink, Turn
from conversations.turn_json import attachment_fields

# The choices the page offers (days); None = until revoked.
EXPIRY_DAYS = (None, 1, 7, 30)
SHARED_ROLES = (Turn.Role.USER, Turn.Role.ASSISTANT)


class TemporaryChatNotShareable(Exception):
    """A temporary chat is the owner's alone until it is deleted: it has no share links."""


def share_link_create(*, conversation: Conversation, display_name: str = "", expires_in_days: int | None = None,
                      include_files: bool = False) -> ShareLink:
    """Snapshot the thread shown (what the owner sees now) into a new link.

    Only the user's messages and the answers are copied: never the system prompt, tool results, feedback, usage
    or anything about the owner but the display name they typed. With `include_files`, each user message lists
    the files sent with it (name, type, size: never where they are stored) and the link opens those files.
    """
    if expires_in_days not in EXPIRY_DAYS:
        raise ValueError(f"expires_in_days must be one of {EXPIRY_DAYS}")
    if conversation.delete_after is not None:
        raise TemporaryChatNotShareable
    turns = [
        turn for turn in selectors.turn_path(conversation)
        if turn.role in SHARED_ROLES and not turn.is_running and (turn.content or turn.role == Turn.Role.USER)
    ]
    messages, files = [], []
    for turn in turns:
        message: dict[str, object] = {"role": turn.role, "content": turn.content}
        if include_files and turn.attachment_list:
            message["attachments"] = [attachment_fields(a) for a in turn.attachment_list]
            files += turn.attachment_list
        messages.append(message)
    now = timezone.now()
    with transaction.atomic():
        link = ShareLink.objects.create(
            token=secrets.token_urlsafe(24),
            conversation=conversation,
            title=conversation.title,
            display_name=display_name.strip()[:100],
            messages=messages,
            include_files=include_files,
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        link.files.set(files)
    return link


def share_link_revoke(*, link: ShareLink) -> ShareLink:
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
    return link


def shared_messages(link: ShareLink) -> list[dict]:
    """The snapshot as the shared page shows it: each file with its public URL, or marked gone when it no longer
    exists (its row, or its bytes in the storage). One query for the files, none without them."""
    if not link.include_files:
        return [{"role": m["role"], "content": m["content"]} for m in link.messages]
    stored = {str(a.pk): a for a in link.files.all()}
    shown = []
    for message in link.messages:
        files = []
        for entry in message.get("attachments", ()):
            attachment = stored.get(entry["id"])
            name = attachment.file.name if attachment is not None else None  # None: no file (or no such attachment)
            available = attachment is not None and name is not None and attachment.file.storage.exists(name)
            files.append({
                **entry, "available": available,
                "url": reverse("conversations:share-file", kwargs={"token": link.token, "attachment_id": entry["id"]}),
            })
        shown.append({"role": message["role"], "content": message["content"], "attachments": files})
    return shown


def shared_attachment(*, token: str, attachment_id: uuid.UUID) -> Attachment | None:
    """A file through a share link, or None: the link must still open, include files, and have this file in its
    snapshot. One query, which is the whole check."""
    links = ShareLink.objects.live().filter(token=token, include_files=True)
    return Attachment.objects.filter(pk=attachment_id, share_links__in=links).first()
