"""Share links: a read-only snapshot of a conversation behind an unguessable token, revocable, optionally expiring."""

import secrets
from datetime import timedelta

from django.utils import timezone

from conversations import selectors
from conversations.models import Conversation, ShareLink, Turn

# The choices the page offers (days); None = until revoked.
EXPIRY_DAYS = (None, 1, 7, 30)
SHARED_ROLES = (Turn.Role.USER, Turn.Role.ASSISTANT)


def share_link_create(*, conversation: Conversation, display_name: str = "", expires_in_days: int | None = None
                      ) -> ShareLink:
    """Snapshot the thread shown (what the owner sees now) into a new link.

    Only the user's messages and the answers are copied: never the system prompt, tool results, feedback, usage
    or anything about the owner but the display name they typed.
    """
    if expires_in_days not in EXPIRY_DAYS:
        raise ValueError(f"expires_in_days must be one of {EXPIRY_DAYS}")
    turns = selectors.turn_path(conversation)
    messages = [
        {"role": turn.role, "content": turn.content}
        for turn in turns
        if turn.role in SHARED_ROLES and not turn.is_running and (turn.content or turn.role == Turn.Role.USER)
    ]
    now = timezone.now()
    return ShareLink.objects.create(
        token=secrets.token_urlsafe(24),
        conversation=conversation,
        title=conversation.title,
        display_name=display_name.strip()[:100],
        messages=messages,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )


def share_link_revoke(*, link: ShareLink) -> ShareLink:
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
    return link
