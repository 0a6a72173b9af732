"""Conversation edits: create, rename and the like, delete, feedback, which branch is shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils import timezone

from conversations.models import Conversation, Feedback, Turn
from conversations.selectors import latest_leaf_id

if TYPE_CHECKING:
    from accounts.models import ApiKey, User

TITLE_MAX_CHARS = 60


def conversation_create(
    *, owner: User, title: str = "", model: str = "", system_prompt: str = "",
    source: str = Conversation.Source.WEB, api_key: ApiKey | None = None, web_search: bool = False,
    personal: bool = True,
) -> Conversation:
    return Conversation.objects.create(
        owner=owner, title=title.strip()[:200], model=model.strip(), system_prompt=system_prompt, source=source,
        api_key=api_key, web_search=web_search, personal=personal,
    )


EDITABLE_CONVERSATION_FIELDS = ("title", "model", "system_prompt", "archived", "web_search", "personal")


def conversation_update(*, conversation: Conversation, **changes: Any) -> Conversation:
    """Change the user-editable fields; anything else passed in is a programming error."""
    unknown = set(changes) - set(EDITABLE_CONVERSATION_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    for name, value in changes.items():
        setattr(conversation, name, value.strip() if isinstance(value, str) and name != "system_prompt" else value)
    conversation.updated_at = timezone.now()
    conversation.save(update_fields=[*changes, "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def feedback_set(*, turn: Turn, rating: int, comment: str = "") -> Feedback:
    if turn.role != Turn.Role.ASSISTANT:
        raise ValueError("feedback is only for answers")
    now = timezone.now()
    feedback, _ = Feedback.objects.update_or_create(
        turn=turn, defaults={"rating": rating, "comment": comment, "updated_at": now}
    )
    return feedback


def title_from_text(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= TITLE_MAX_CHARS:
        return words
    cut = words[: TITLE_MAX_CHARS - 1].rsplit(" ", 1)[0] or words[: TITLE_MAX_CHARS - 1]
    return cut + "…"


def conversation_switch(*, conversation: Conversation, turn_id: int) -> int:
    """Show the branch through `turn_id` (any turn of the conversation), down to its newest leaf.

    The choice is stored on the conversation, so it holds across reloads and devices. Returns the new
    current turn's id; Turn.DoesNotExist if `turn_id` is not a turn of this conversation.
    """
    leaf_id = latest_leaf_id(conversation, turn_id)
    if leaf_id is None:
        raise Turn.DoesNotExist
    Conversation.objects.filter(pk=conversation.pk).update(current_turn_id=leaf_id)
    conversation.current_turn_id = leaf_id
    return leaf_id
