"""Test and benchmark data that more than one module needs."""

from conversations.models import Turn
from conversations.services import conversation_create


def conversation_with_history(user, turns: int, *, title: str = "history"):
    """A conversation holding `turns` complete turns (user and assistant alternating), made in bulk."""
    conversation = conversation_create(owner=user, title=title)
    Turn.objects.bulk_create(
        Turn(
            conversation=conversation,
            position=position,
            role=Turn.Role.USER if position % 2 else Turn.Role.ASSISTANT,
            content=f"turn {position}",
        )
        for position in range(1, turns + 1)
    )
    conversation.turn_count = turns
    conversation.save(update_fields=["turn_count"])
    return conversation
