"""Requests that carry a whole message list (/api/chat, /v1/chat/completions): validation and storage.

The earlier messages are stored as the new conversation's history as they are (no model call); the
last user message then goes through the one chat service like any other message.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations import services
from conversations.api.serializers import MessageContentField, reject_unencodable
from conversations.digests import next_digest, root_digest
from conversations.models import Conversation, Turn

MAX_MESSAGES = 500
HISTORY_ROLES = {
    "user": Turn.Role.USER, "assistant": Turn.Role.ASSISTANT, "system": Turn.Role.SYSTEM, "developer": Turn.Role.SYSTEM,
}
SYSTEM_ROLES = {"system", "developer"}  # "developer" is OpenAI's newer name for system instructions
MESSAGE_ROLES = sorted({*HISTORY_ROLES, *SYSTEM_ROLES})


@extend_schema_field({
    "oneOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "object", "required": ["type", "text"], "properties": {
            "type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}}}},
    ]
})
class MessageTextField(serializers.Field):
    """A message's text: a string, or (OpenAI style) a list of `{"type": "text", "text": ...}` parts."""

    default_error_messages = {
        "invalid": "Content must be a string or a list of text parts.",
        "not_text": "Only text content is supported.",
        "null": "Content may not be null.",
    }

    def __init__(self, *, allow_parts: bool, **kwargs):
        self.allow_parts = allow_parts
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, list) and self.allow_parts:
            texts = []
            for part in data:
                if not isinstance(part, dict) or part.get("type") != "text":
                    self.fail("not_text")
                if not isinstance(part.get("text"), str):
                    self.fail("invalid")
                texts.append(part["text"])
            data = "".join(texts)
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            raise serializers.ValidationError("Null characters are not allowed.")
        reject_unencodable(data)
        if len(data) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise serializers.ValidationError(
                f"A message is too long (the limit is {settings.CHAT_MAX_MESSAGE_CHARS} characters)."
            )
        return data

    def to_representation(self, value):
        return value


class ChatMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=MESSAGE_ROLES)
    content = MessageTextField(allow_parts=False)


class OpenAIMessageSerializer(ChatMessageSerializer):
    content = MessageTextField(allow_parts=True)


def validate_message_list(messages: list[dict]) -> list[dict]:
    """Shared rules: at most MAX_MESSAGES, and the last one is a non-empty user message."""
    if not messages:
        raise serializers.ValidationError("Send at least one message.")
    if len(messages) > MAX_MESSAGES:
        raise serializers.ValidationError(f"At most {MAX_MESSAGES} messages.")
    last = messages[-1]
    if last["role"] != "user":
        raise serializers.ValidationError("The last message must be the user's (role 'user').")
    MessageContentField().run_validation(last["content"])  # not blank, within the limit
    return messages


class ChatRequestSerializer(serializers.Serializer):
    """`POST /api/chat`: the original backend's contract."""

    messages = ChatMessageSerializer(many=True, min_length=1)

    def validate_messages(self, messages):
        return validate_message_list(messages)


class ChatReplySerializer(serializers.Serializer):
    role = serializers.CharField(default="assistant")
    content = serializers.CharField()


def split_system_prompt(messages: list[dict]) -> tuple[str, list[dict]]:
    """(the system prompt, the history): the system messages that open the list, joined, and the rest but the
    last message, with roles as stored (a later system or developer message stays in its place as "system")."""
    leading = 0
    while leading < len(messages) - 1 and messages[leading]["role"] in SYSTEM_ROLES:
        leading += 1
    history = [{"role": HISTORY_ROLES[m["role"]], "content": m["content"]} for m in messages[leading:-1]]
    return "\n\n".join(m["content"] for m in messages[:leading]), history


def conversation_from_messages(
    *, owner, source: str, messages: list[dict], model: str = "", api_key=None
) -> Conversation:
    """A new conversation holding every message but the last as stored history.

    The system messages that open the list become the conversation's system prompt; the rest (a later
    system message included, in its place) become a single branch of turns 1..n (complete, no usage: they
    were not produced here), each with its history digest. The caller then sends the last message with
    chat_turn.
    """
    system_prompt, history = split_system_prompt(messages)
    first_user = next((m["content"] for m in history if m["role"] == Turn.Role.USER), "")
    now = timezone.now()
    with transaction.atomic():
        conversation = services.conversation_create(
            owner=owner, source=source, model=model, system_prompt=system_prompt,
            title=services.title_from_text(first_user) if first_user else "", api_key=api_key,
        )
        parent, digest = None, root_digest(system_prompt)
        for position, message in enumerate(history, start=1):
            digest = next_digest(digest, message["role"], message["content"])
            parent = Turn.objects.create(
                conversation=conversation, parent=parent, position=position, role=message["role"],
                content=message["content"], digest=digest, status=Turn.Status.COMPLETE, created_at=now,
                completed_at=now,
            )
        if history:
            Conversation.objects.filter(pk=conversation.pk).update(turn_count=len(history), current_turn=parent)
            conversation.turn_count = len(history)
            conversation.current_turn = parent
    return conversation
