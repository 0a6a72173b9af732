"""Writes that organize a user's chats from the page: pins, folders, temporary chats, feedback taken back.

The chat turn itself stays in the answering package and the services; these are small updates on objects the
views have already looked up through their owner.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import Conversation, Feedback, Folder, Turn


class FolderNameTaken(Exception):
    pass


def feedback_clear(*, turn: Turn) -> None:
    """Take back a rating (and its comment): the answer is as if never rated."""
    Feedback.objects.filter(turn=turn).delete()


def conversation_pin(*, conversation: Conversation, pinned: bool) -> Conversation:
    """Pinning does not count as activity: the chat keeps its place in the date groups when unpinned."""
    conversation.pinned_at = timezone.now() if pinned else None
    conversation.save(update_fields=["pinned_at"])
    return conversation


def conversation_file(*, conversation: Conversation, folder: Folder | None) -> Conversation:
    """Put a chat in one of its owner's folders, or take it out (None). The caller checks the folder's owner."""
    if folder is not None and folder.owner_id != conversation.owner_id:
        raise ValueError("a chat goes only in its owner's folders")
    conversation.folder = folder
    conversation.save(update_fields=["folder"])
    return conversation


def folder_create(*, owner, name: str) -> Folder:
    try:
        with transaction.atomic():
            return Folder.objects.create(owner=owner, name=" ".join(name.split())[:80])
    except IntegrityError:
        raise FolderNameTaken from None


def folder_delete(*, folder: Folder) -> None:
    """The folder goes; its chats stay, out of any folder (SET_NULL)."""
    folder.delete()


def conversation_make_temporary(*, conversation: Conversation) -> Conversation:
    """Never listed; deleted CHAT_TEMPORARY_HOURS after it starts (temporary_chats_delete_expired)."""
    conversation.delete_after = conversation.created_at + timedelta(hours=settings.CHAT_TEMPORARY_HOURS)
    conversation.save(update_fields=["delete_after"])
    return conversation


def temporary_chats_delete_expired() -> int:
    """Delete temporary chats past their time, with their turns. Returns how many chats went."""
    deleted, per_model = Conversation.objects.expired().delete()
    return per_model.get(Conversation._meta.label, 0)
