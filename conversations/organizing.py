"""Writes that organize a user's chats from the page (feedback clearing, pins, folders, temporary chats).

The chat turn itself stays in services.py; these are small, owner-checked updates the views call.
"""

from conversations.models import Feedback, Turn


def feedback_clear(*, turn: Turn) -> None:
    """Take back a rating (and its comment): the answer is as if never rated."""
    Feedback.objects.filter(turn=turn).delete()
