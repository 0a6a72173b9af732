"""Writes that organize a user's chats: pins, projects, temporary chats, feedback taken back.

The chat turn itself stays in the answering package and the services; these are small updates on objects the
views have already looked up through their owner.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations import account_data, notifications, services
from conversations.models import Conversation, Feedback, Project, Turn, review_totals


class ProjectNameTaken(Exception):
    pass


def feedback_clear(*, turn: Turn) -> None:
    """Take back a rating (and its comment): the answer is as if never rated."""
    with transaction.atomic():
        Feedback.objects.filter(turn=turn).delete()
        Conversation.objects.filter(pk=turn.conversation_id).update(**review_totals())


def conversation_pin(*, conversation: Conversation, pinned: bool) -> Conversation:
    """Pinning does not count as activity: the chat keeps its place in the date groups when unpinned."""
    conversation.pinned_at = timezone.now() if pinned else None
    conversation.save(update_fields=["pinned_at"])
    notifications.conversation_changed(conversation)
    return conversation


def conversation_move(*, conversation: Conversation, project: Project | None) -> Conversation:
    """Move a chat into one of its owner's projects, or out of any (None). The caller checks the project's owner."""
    if project is not None and project.owner_id != conversation.owner_id:
        raise ValueError("a chat goes only in its owner's projects")
    conversation.project = project
    conversation.save(update_fields=["project"])
    notifications.conversation_changed(conversation)
    return conversation


def project_create(*, owner, name: str, instructions: str = "", model: str = "") -> Project:
    try:
        with transaction.atomic():
            project = Project.objects.create(
                owner=owner, name=" ".join(name.split())[:80], instructions=instructions.strip(), model=model.strip()
            )
    except IntegrityError:
        raise ProjectNameTaken from None
    notifications.project_created(project)
    return project


def project_update(*, project: Project, **changes: str) -> Project:
    """Change a project's name, instructions or default model."""
    unknown = set(changes) - {"name", "instructions", "model"}
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    if "name" in changes:
        changes["name"] = " ".join(changes["name"].split())[:80]
    for name, value in changes.items():
        setattr(project, name, value.strip())
    try:
        with transaction.atomic():
            project.save(update_fields=list(changes))
    except IntegrityError:
        raise ProjectNameTaken from None
    notifications.project_changed(project)
    return project


def project_delete(*, project: Project, delete_chats: bool = False) -> None:
    """The project goes. Its chats stay, back in the main list (SET_NULL), unless `delete_chats`: then they go too,
    each as a chat deleted by its owner (a long one in batches, off the request path; each told to open windows)."""
    if delete_chats:
        for conversation in project.conversations.only("pk", "owner_id", "turn_count"):
            services.conversation_delete(conversation=conversation)
    owner_id, project_id = project.owner_id, project.pk
    project.delete()
    notifications.project_deleted(owner_id=owner_id, project_id=project_id, chats_deleted=delete_chats)


def conversation_make_temporary(*, conversation: Conversation) -> Conversation:
    """Never listed; deleted CHAT_TEMPORARY_HOURS after it starts (temporary_chats_delete_expired)."""
    conversation.delete_after = conversation.created_at + timedelta(hours=settings.CHAT_TEMPORARY_HOURS)
    conversation.save(update_fields=["delete_after"])
    return conversation


def temporary_chats_delete_expired() -> int:
    """Delete temporary chats past their time (and long chats whose deletion is under way), with their turns, in
    batches of short transactions. Returns how many chats went."""
    deleted = 0
    short: list[tuple] = []
    expired = Conversation.objects.expired().order_by("pk").values_list("pk", "turn_count", "owner_id")
    for pk, turn_count, owner_id in list(expired):
        if turn_count > account_data.BATCH_TURNS:
            account_data.conversation_delete_in_batches(pk)
            _tell_expired([(pk, owner_id)])
        else:
            short.append((pk, owner_id))
        deleted += 1
    for start in range(0, len(short), account_data.BATCH_CHATS):  # short chats, a batch in one transaction
        batch = short[start : start + account_data.BATCH_CHATS]
        account_data.conversations_delete([pk for pk, _owner_id in batch])
        _tell_expired(batch)
    return deleted


def _tell_expired(chats: list[tuple]) -> None:
    # An open window of the chat says it is gone; its owner's sidebars drop it. (A long chat whose deletion by its
    # owner was under way is told twice: the page takes a deletion it already knows as no news.)
    for pk, owner_id in chats:
        notifications.conversation_deleted(owner_id=owner_id, conversation_id=pk, expired=True)
