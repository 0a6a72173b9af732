"""Requests that carry a whole message list (/api/chat, /v1/chat/completions): validation and storage.

The earlier messages are stored as the new conversation's history as they are (no model call); the
last user message then goes through the one chat service like any other message.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chatsite.api.fields import reject_unencodable
from conversations import attachments, services
from conversations.api.serializers import MessageContentField
from conversations.digests import next_digest, root_digest
from conversations.messages import RequestMessage, StoredMessage, ToolCall
from conversations.models import Attachment, Conversation, Turn

if TYPE_CHECKING:
    from accounts.models import ApiKey, User

MAX_MESSAGES = 500
HISTORY_ROLES = {
    "user": Turn.Role.USER, "assistant": Turn.Role.ASSISTANT, "system": Turn.Role.SYSTEM, "developer": Turn.Role.SYSTEM,
    "tool": Turn.Role.TOOL,
}
SYSTEM_ROLES = {"system", "developer"}  # "developer" is OpenAI's newer name for system instructions
MESSAGE_ROLES = sorted({*HISTORY_ROLES, *SYSTEM_ROLES} - {"tool"})


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

    def __init__(self, *, allow_parts: bool, **kwargs: Any) -> None:
        self.allow_parts = allow_parts
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
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

    def to_representation(self, value: Any) -> Any:
        return value


class ChatMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=MESSAGE_ROLES)
    content = MessageTextField(allow_parts=True)


@extend_schema_field({"type": "array", "items": {
    "type": "object", "required": ["id", "type", "function"],
    "properties": {"id": {"type": "string"}, "type": {"enum": ["function"]}, "function": {"type": "object"}},
}})
class ToolCallsField(serializers.Field):
    """An assistant message's `tool_calls`, as OpenAI returns them: [{id, type: "function", function: {name,
    arguments (a JSON string)}}]."""

    def to_internal_value(self, data: Any) -> list[ToolCall]:
        if not isinstance(data, list) or not 1 <= len(data) <= 128:
            raise serializers.ValidationError("Expected a list of 1 to 128 tool calls.")
        calls: list[ToolCall] = []
        for call in data:
            function = call.get("function") if isinstance(call, dict) else None
            if (
                not isinstance(function, dict) or not isinstance(call.get("id"), str) or not call["id"]
                or call.get("type", "function") != "function" or not isinstance(function.get("name"), str)
                or not isinstance(function.get("arguments"), str)
            ):
                raise serializers.ValidationError(
                    'Each tool call is {"id": str, "type": "function", "function": {"name": str, "arguments": str}}.'
                )
            calls.append({"id": call["id"], "type": "function",
                          "function": {"name": function["name"], "arguments": function["arguments"]}})
        return calls

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({
    "oneOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string", "enum": ["text", "image_url", "file"]}, "text": {"type": "string"},
            "image_url": {"type": "object", "properties": {"url": {"type": "string"}}},
            "file": {"type": "object", "properties": {"file_data": {"type": "string"}, "filename": {"type": "string"}}},
        }}},
    ]
})
class OpenAIContentField(serializers.Field):
    """Chat Completions content: a string, or parts: text, images (`image_url` with a data: URL) and files
    (`file.file_data`, a data: URL, with `file.filename`). The files become attachments of the message.

    Its value is {"text", "files"}: the text as MessageTextField reads it, and the files as (name, bytes)."""

    default_error_messages = MessageTextField.default_error_messages

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._text = MessageTextField(allow_parts=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        files = []
        if isinstance(data, list):
            texts = []
            for index, part in enumerate(data):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "image_url":
                    url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
                    files.append(_data_url_file(url, f"image-{index + 1}"))
                elif kind == "file":
                    spec = part.get("file") if isinstance(part.get("file"), dict) else {}
                    if spec.get("file_id"):
                        raise serializers.ValidationError(
                            "File ids are not supported: send the file itself as file.file_data (a data: URL)."
                        )
                    files.append(_data_url_file(spec.get("file_data"), spec.get("filename") or f"file-{index + 1}"))
                elif kind == "text":
                    texts.append(part)
                else:
                    raise serializers.ValidationError(
                        f"Content part {index}: only text, image_url and file parts are supported."
                    )
            data = texts
        return {"text": self._text.to_internal_value(data), "files": files}

    def to_representation(self, value: Any) -> Any:
        return value


def _data_url_file(url: Any, name: str) -> tuple[str, bytes]:
    """(name, bytes) of a `data:<type>;base64,<data>` URL; chatsite never fetches a URL itself."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise serializers.ValidationError(
            "Send images and files as data: URLs (data:image/png;base64,...): chatsite does not fetch URLs."
        )
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise serializers.ValidationError("A data: URL must be base64-encoded (data:<type>;base64,<data>).")
    if len(payload) > (settings.CHAT_ATTACHMENT_MAX_BYTES * 4) // 3 + 4:
        raise serializers.ValidationError(
            f"A file is larger than the limit ({settings.CHAT_ATTACHMENT_MAX_BYTES:,} bytes)."
        )
    try:
        return name, base64.b64decode(payload, validate=True)
    except ValueError:
        raise serializers.ValidationError("A data: URL's base64 data is invalid.") from None


class OpenAIMessageSerializer(serializers.Serializer):
    """A Chat Completions message: text (or text, image and file parts); an assistant's tool calls; a tool's
    result."""

    role = serializers.ChoiceField(choices=[*MESSAGE_ROLES, "tool"])
    content = OpenAIContentField(allow_null=True, required=False)
    tool_calls = ToolCallsField(required=False)
    tool_call_id = serializers.CharField(max_length=200, required=False)
    name = serializers.CharField(max_length=64, required=False, help_text="Accepted; not sent to the model.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        content = attrs.get("content")
        if content is not None:
            if content["files"] and attrs["role"] != "user":
                raise serializers.ValidationError({"content": ["Only user messages carry images and files."]})
            attrs["content"], attrs["files"] = content["text"], content["files"]
        role, content = attrs["role"], attrs.get("content")
        if attrs.get("tool_calls") and role != "assistant":
            raise serializers.ValidationError({"tool_calls": ["Only an assistant message has tool calls."]})
        if role == "tool" and not attrs.get("tool_call_id"):
            raise serializers.ValidationError({"tool_call_id": ["A tool message names the call it answers."]})
        if content is None and not (role == "assistant" and attrs.get("tool_calls")):
            raise serializers.ValidationError({"content": ["This message needs content."]})
        attrs["content"] = content or ""
        return attrs


def validate_message_list(messages: list[RequestMessage], *, tool_results: bool = False) -> list[RequestMessage]:
    """Shared rules: at most MAX_MESSAGES, and the last one is a non-empty user message (or, with
    `tool_results`, the results of every tool call of the assistant message before them)."""
    if not messages:
        raise serializers.ValidationError("Send at least one message.")
    if len(messages) > MAX_MESSAGES:
        raise serializers.ValidationError(f"At most {MAX_MESSAGES} messages.")
    last = messages[-1]
    if tool_results and last["role"] == "tool":
        inputs = _new_inputs_start(messages)
        calls = messages[inputs - 1].get("tool_calls") if inputs > 0 else None
        if not calls:
            raise serializers.ValidationError("Tool messages must follow an assistant message with tool_calls.")
        answered = {message["tool_call_id"] for message in messages[inputs:]}
        if answered != {call["id"] for call in calls}:
            raise serializers.ValidationError("Send one tool message for each tool call of the assistant message.")
        return messages
    if last["role"] != "user":
        expected = "'user' or 'tool'" if tool_results else "'user'"
        raise serializers.ValidationError(f"The last message must be the user's (role {expected}).")
    MessageContentField().run_validation(last["content"])  # not blank, within the limit
    return messages


def _new_inputs_start(messages: list[RequestMessage]) -> int:
    """Where the new input starts: the trailing run of tool results, or else the last message."""
    start = len(messages) - 1
    while start > 0 and messages[-1]["role"] == "tool" and messages[start - 1]["role"] == "tool":
        start -= 1
    return start


class ChatRequestSerializer(serializers.Serializer):
    """`POST /api/chat`: the original backend's contract."""

    # min_length goes to the ListSerializer that many=True makes; the stubs know only the child's arguments.
    messages = ChatMessageSerializer(many=True, min_length=1)  # type: ignore[call-arg]

    def validate_messages(self, messages: list[RequestMessage]) -> list[RequestMessage]:
        return validate_message_list(messages)


class ChatReplySerializer(serializers.Serializer):
    role = serializers.CharField(default="assistant")
    content = serializers.CharField()


def _as_stored(message: RequestMessage) -> StoredMessage:
    stored: StoredMessage = {"role": HISTORY_ROLES[message["role"]], "content": message["content"]}
    files = message.get("files")
    if files:
        stored["files"] = files
        stored["attachments"] = [hashlib.sha256(data).hexdigest() for _, data in files]
    tool_calls = message.get("tool_calls")
    if tool_calls:
        stored["tool_calls"] = tool_calls
    if message["role"] == "tool":
        stored["tool_call_id"] = message["tool_call_id"]
    return stored


def stored_messages(messages: list[RequestMessage]) -> tuple[str, list[StoredMessage]]:
    """(the system prompt, the rest) of a validated message list all of which is history (none is new input)."""
    leading = 0
    while leading < len(messages) and messages[leading]["role"] in SYSTEM_ROLES:
        leading += 1
    return "\n\n".join(m["content"] for m in messages[:leading]), [_as_stored(m) for m in messages[leading:]]


def split_messages(messages: list[RequestMessage]) -> tuple[str, list[StoredMessage], list[StoredMessage]]:
    """(the system prompt, the history, the new input) of a validated message list, roles as stored.

    The system messages that open the list, joined, are the system prompt (a later system or developer
    message stays in its place as "system"); the new input is the last message, or the trailing tool results.
    """
    end = _new_inputs_start(messages)
    leading = 0
    while leading < end and messages[leading]["role"] in SYSTEM_ROLES:
        leading += 1
    return (
        "\n\n".join(m["content"] for m in messages[:leading]),
        [_as_stored(m) for m in messages[leading:end]],
        [_as_stored(m) for m in messages[end:]],
    )


def conversation_from_messages(
    *, owner: User, source: str, messages: list[RequestMessage], model: str = "", api_key: ApiKey | None = None
) -> Conversation:
    """A new conversation holding every message but the new input (split_messages) as stored history.

    The system messages that open the list become the conversation's system prompt; the rest (a later
    system message included, in its place) become a single branch of turns 1..n (complete, no usage: they
    were not produced here), each with its history digest. The caller then sends the new input with
    answering.begin.
    """
    system_prompt, history, _ = split_messages(messages)
    return conversation_from_history(
        owner=owner, source=source, system_prompt=system_prompt, history=history, model=model, api_key=api_key
    )


def conversation_from_history(
    *, owner: User, source: str, system_prompt: str, history: list[StoredMessage], model: str = "",
    api_key: ApiKey | None = None,
) -> Conversation:
    """A new conversation whose system prompt and single branch of turns are these (each turn complete, with its
    history digest, no usage); titled from its first user message."""
    first_user = next((m["content"] for m in history if m["role"] == Turn.Role.USER), "")
    now = timezone.now()
    with transaction.atomic():
        conversation = services.conversation_create(
            owner=owner, source=source, model=model, system_prompt=system_prompt,
            title=services.title_from_text(first_user) if first_user else "", api_key=api_key,
        )
        parent: Turn | None = None
        digest = root_digest(system_prompt)
        for position, message in enumerate(history, start=1):
            digest = next_digest(digest, message)
            parent = Turn.objects.create(
                conversation=conversation, parent=parent, position=position, role=message["role"],
                content=message["content"], tool_calls=message.get("tool_calls"),
                tool_call_id=message.get("tool_call_id"), digest=digest, status=Turn.Status.COMPLETE,
                created_at=now, completed_at=now,
            )
            files = message.get("files")
            if files:
                attachments.bind(upload_files(owner, files), parent)
        if history:
            Conversation.objects.filter(pk=conversation.pk).update(turn_count=len(history), current_turn=parent)
            conversation.turn_count = len(history)
            conversation.current_turn = parent
    return conversation


def upload_files(owner: User, files: list[tuple[str, bytes]]) -> list[Attachment]:
    """Attachments of `owner` from a message's (name, bytes) files (checked as any upload)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return [attachments.attachment_create(owner=owner, upload=SimpleUploadedFile(name, data)) for name, data in files]
