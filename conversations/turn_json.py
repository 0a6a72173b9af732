"""A turn as JSON, the one wire form of the REST API, its event streams and the answer engine's Redis streams.

Built by hand (not a DRF serializer): the answer path sends two per answer, and the engine must not depend on
the API layer. conversations.api.serializers.TurnSerializer describes the same fields for the schema.
"""

from django.urls import reverse
from rest_framework import serializers

from conversations.models import Attachment, Turn

TURN_FIELDS = (
    "id", "parent_id", "position", "role", "content", "status", "model", "prompt_tokens", "completion_tokens",
    "finish_reason", "error", "tool_calls", "tool_call_id", "created_at",
)
# Versions: turns with the same parent. Carried by path reads (selectors.turn_path) and new turns.
VERSION_FIELDS = ("sibling_count", "sibling_index", "previous_sibling_id", "next_sibling_id")

_TURN_DATETIME = serializers.DateTimeField()


def turn_data(turn: Turn) -> dict:
    """TurnSerializer(turn).data without DRF's per-call field machinery: the SSE path sends two per answer."""
    data = {name: getattr(turn, name) for name in TURN_FIELDS}
    data.update({name: getattr(turn, name, None) for name in VERSION_FIELDS})
    data["created_at"] = _TURN_DATETIME.to_representation(turn.created_at)
    data["attachments"] = attachment_list_data(turn)
    return data


def attachment_fields(attachment: Attachment) -> dict:
    """What a file sent with a message shows of itself (no storage path, nothing of its owner)."""
    return {"id": str(attachment.pk), "name": attachment.name, "kind": attachment.kind,
            "content_type": attachment.content_type, "size": attachment.size}


def attachment_list_data(turn: Turn) -> list[dict]:
    """The files sent with a message, as loaded with it (`attachment_list`: selectors.turn_path, the service)."""
    return [
        {**attachment_fields(a), "url": reverse("api:attachment-content", args=[a.pk])}
        for a in getattr(turn, "attachment_list", None) or ()
    ]
