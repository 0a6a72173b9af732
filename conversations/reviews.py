"""Staff reviews of conversations: record an admin visit, and tell the owner their chat was reviewed."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from conversations.models import Conversation, ReviewLog


@dataclass(frozen=True)
class ReviewNotice:
    """What the owner may know about the latest review: when, and by whom only if CHAT_SHOW_REVIEWER."""

    reviewed_at: datetime
    reviewer_name: str | None


def staff_may_read_chats() -> bool:
    """STAFF_CAN_READ_CHATS: off, the admin shows chats' metadata only and its review pages refuse."""
    return settings.STAFF_CAN_READ_CHATS


def review_record(*, conversation_id, reviewer) -> ReviewLog:
    """Store one review: `reviewer` opened the conversation in the admin just now."""
    return ReviewLog.objects.create(conversation_id=conversation_id, reviewer=reviewer)


def review_record_many(*, conversation_ids, reviewer) -> None:
    """One review per conversation whose text a staff page just showed (a list of turns or feedback)."""
    ReviewLog.objects.bulk_create(
        ReviewLog(conversation_id=conversation_id, reviewer=reviewer) for conversation_id in set(conversation_ids)
    )


def last_review_for(conversation: Conversation) -> ReviewLog | None:
    return (
        ReviewLog.objects.filter(conversation=conversation)
        .select_related("reviewer")
        .order_by("-created_at", "-pk")
        .first()
    )


def review_notice_for(conversation: Conversation) -> ReviewNotice | None:
    """The notice shown to the owner (HTML page and API detail), or None if nobody reviewed the chat."""
    review = last_review_for(conversation)
    if review is None:
        return None
    # reviewer is None once the reviewer's account is deleted: the notice then says "staff".
    return ReviewNotice(reviewed_at=review.created_at, reviewer_name=reviewer_name(review))


def reviews_for_owner(owner) -> QuerySet[ReviewLog]:
    """Every review of the owner's chats, newest first, with the chat and the reviewer (one query per page)."""
    return (
        ReviewLog.objects.filter(conversation__owner=owner, conversation__delete_after__isnull=True)
        .select_related("conversation", "reviewer")
        .only("created_at", "conversation__id", "conversation__title", "reviewer__username",
              "reviewer__first_name", "reviewer__last_name")
        .order_by("-created_at", "-pk")
    )


def reviewer_name(review: ReviewLog) -> str | None:
    """Who reviewed, as owners may see it: the name when CHAT_SHOW_REVIEWER, else None ("staff")."""
    if not settings.CHAT_SHOW_REVIEWER or review.reviewer is None:
        return None
    return review.reviewer.get_full_name() or review.reviewer.get_username()
