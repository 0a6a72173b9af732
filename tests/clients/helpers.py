"""What the client tests read back from the database."""

from conversations.models import Conversation


def stored_conversations(user) -> list[list[tuple[str, str]]]:
    """Each of the user's conversations, oldest first, as its turns' (role, content) in order."""
    conversations = Conversation.objects.filter(owner=user).order_by("created_at").prefetch_related("turns")
    return [
        [(turn.role, turn.content) for turn in sorted(c.turns.all(), key=lambda turn: turn.position)]
        for c in conversations
    ]
