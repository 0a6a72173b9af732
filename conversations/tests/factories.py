"""Test and benchmark data that more than one module needs."""

from conversations.models import Turn
from conversations.services import conversation_create


def conversation_with_history(user, turns: int, *, title: str = "history"):
    """A conversation holding one branch of `turns` complete turns (user and assistant alternating)."""
    conversation = conversation_create(owner=user, title=title)
    parent = None
    for position in range(1, turns + 1):
        parent = Turn.objects.create(
            conversation=conversation, parent=parent, position=position,
            role=Turn.Role.USER if position % 2 else Turn.Role.ASSISTANT, content=f"turn {position}",
        )
    conversation.turn_count = turns
    conversation.current_turn = parent
    conversation.save(update_fields=["turn_count", "current_turn"])
    return conversation


def add_turns(conversation, *pairs, **fields):
    """Append (role, content) turns below the current turn, as one branch; `fields` go on each turn."""
    parent = conversation.current_turn
    for role, content in pairs:
        parent = Turn.objects.create(
            conversation=conversation, parent=parent, position=parent.position + 1 if parent else 1,
            role=role, content=content, **fields,
        )
    conversation.turn_count += len(pairs)
    conversation.current_turn = parent
    conversation.save(update_fields=["turn_count", "current_turn"])
    return parent
