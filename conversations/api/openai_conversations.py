"""OpenAI's Conversations API on the stored conversations: `/v1/conversations` and its items.

A conversation object is a chatsite conversation of the key's owner: its id is `conv_<the conversation's id as 32
hex digits>`, and the id a page shows (`/c/<uuid>/`) is taken as well, so an SDK can go on with a chat a person
started on the page (`responses.create(conversation=...)`), and the page shows what the SDK added. Someone
else's conversation is a 404. `metadata` is kept with the chat. Its items are the thread shown (the current
branch), oldest first by default as OpenAI's list is: user and system messages (`msg_<turn id>`), an answer's text
(`msg_<turn id>`) and tool calls (`fc_<turn id>_<n>`), tool results (`fco_<turn id>`). Creating a conversation
stores its `items` as its history; adding items to an existing one, or deleting one of its items, is refused
(400 `unsupported_operation`): chatsite keeps each message with the answer it got, as a tree of versions, so
messages are added by answering them (`POST /v1/responses` with `conversation`) and removed with the whole chat.
A key that keeps its chats out of the history (or `store`-less clients of such a key) makes temporary ones.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from chatsite.api.fields import TextField
from conversations import organizing, selectors, services
from conversations.api import response_items
from conversations.api.base import own_conversation
from conversations.api.message_lists import conversation_from_history, stored_messages
from conversations.api.openai_compat import OpenAIApiView, kept_out_of_history
from conversations.models import Conversation, Turn

MAX_CREATE_ITEMS = 20  # OpenAI's limit on the items a conversation is created with
METADATA_PAIRS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 16, 64, 512


def conversation_object_id(conversation: Conversation) -> str:
    return f"conv_{conversation.pk.hex}"


def own_openai_conversation(request, value: Any) -> Conversation:
    """The caller's conversation named `conv_<hex>` (or by its plain UUID, as the page shows it); else a 404."""
    text = value if isinstance(value, str) else ""
    try:
        conversation_id = uuid.UUID(text.removeprefix("conv_"))
    except ValueError:
        raise exceptions.NotFound(f"No conversation with id '{text}'.") from None
    return own_conversation(request, conversation_id)


def conversation_object(conversation: Conversation) -> dict:
    return {
        "id": conversation_object_id(conversation), "object": "conversation",
        "created_at": int(conversation.created_at.timestamp()), "metadata": conversation.metadata or {},
    }


@extend_schema_field({
    "type": "object", "maxProperties": METADATA_PAIRS,
    "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_CHARS},
})
class MetadataField(serializers.DictField):
    """OpenAI's metadata: at most 16 pairs, keys up to 64 characters, string values up to 512."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=TextField(max_length=METADATA_VALUE_CHARS, allow_blank=True), **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > METADATA_PAIRS:
            raise serializers.ValidationError(f"At most {METADATA_PAIRS} key-value pairs.")
        if any(len(key) > METADATA_KEY_CHARS for key in value):
            raise serializers.ValidationError(f"A key has at most {METADATA_KEY_CHARS} characters.")
        return value


@extend_schema_field({"type": "array", "items": {"type": "object"}, "maxItems": MAX_CREATE_ITEMS})
class CreateItemsField(serializers.Field):
    """Items to start the conversation with (as the Responses API's input items), stored as its history."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("Expected a list of items.")
        if len(data) > MAX_CREATE_ITEMS:
            raise serializers.ValidationError(f"At most {MAX_CREATE_ITEMS} items.")
        return response_items.check_items(data) if data else []

    def to_representation(self, value):
        return value


class ConversationCreateSerializer(serializers.Serializer):
    items = CreateItemsField(required=False, allow_null=True)
    metadata = MetadataField(required=False, allow_null=True)

    def validate(self, attrs):
        try:
            attrs["messages"] = response_items.checked_messages(attrs.get("items") or [], context=self.context)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"items": exc.detail}) from None
        return attrs


class ConversationUpdateSerializer(serializers.Serializer):
    metadata = MetadataField()


CONVERSATION_OBJECT = OpenApiResponse(OpenApiTypes.OBJECT, description="A `conversation` object.")
ID_PARAMETER = OpenApiParameter(
    "conversation_id", OpenApiTypes.STR, OpenApiParameter.PATH,
    description="`conv_<32 hex digits>`, or the conversation's UUID as the page shows it.",
)


class ConversationsView(OpenAIApiView):
    @extend_schema(
        summary="Create a conversation (OpenAI's Conversations API)", description=__doc__,
        operation_id="v1_conversations_create",
        request=ConversationCreateSerializer, responses={200: CONVERSATION_OBJECT},
    )
    def post(self, request):
        data = self.validated(request, ConversationCreateSerializer, context={"request": request})
        system_prompt, history = stored_messages(data["messages"])
        with transaction.atomic():
            conversation = conversation_from_history(
                owner=request.user, source=Conversation.Source.OPENAI_API, system_prompt=system_prompt,
                history=history, api_key=request.auth,
            )
            if data.get("metadata"):
                services.conversation_update(conversation=conversation, metadata=data["metadata"])
            if kept_out_of_history(request, None):
                organizing.conversation_make_temporary(conversation=conversation)
        return Response(conversation_object(conversation))


class ConversationDetailView(OpenAIApiView):
    @extend_schema(summary="A conversation", operation_id="v1_conversation_retrieve", parameters=[ID_PARAMETER],
                   responses={200: CONVERSATION_OBJECT})
    def get(self, request, conversation_id: str):
        return Response(conversation_object(own_openai_conversation(request, conversation_id)))

    @extend_schema(
        summary="Set a conversation's metadata", operation_id="v1_conversation_update", parameters=[ID_PARAMETER],
        request=ConversationUpdateSerializer,
        responses={200: CONVERSATION_OBJECT},
    )
    def post(self, request, conversation_id: str):
        conversation = own_openai_conversation(request, conversation_id)
        data = self.validated(request, ConversationUpdateSerializer)
        services.conversation_update(conversation=conversation, metadata=data["metadata"])
        return Response(conversation_object(conversation))

    @extend_schema(
        summary="Delete a conversation (with all its messages and answers)", operation_id="v1_conversation_delete",
        parameters=[ID_PARAMETER],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="`conversation.deleted`.")},
    )
    def delete(self, request, conversation_id: str):
        conversation = own_openai_conversation(request, conversation_id)
        object_id = conversation_object_id(conversation)
        services.conversation_delete(conversation=conversation)
        return Response({"id": object_id, "object": "conversation.deleted", "deleted": True})


class UnsupportedOperation(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "unsupported_operation"


ITEMS_ARE_ANSWERED = (
    "chatsite keeps each message with the answer it got: add a message by answering it (POST /v1/responses with "
    "this conversation), or start a conversation with its items (POST /v1/conversations)."
)
ITEMS_STAY = (
    "chatsite keeps a conversation's messages as a tree of versions with their answers: one item cannot be taken "
    "out. Delete the whole conversation, or edit the message on the page (a new version)."
)


def _turn_items(turn: Turn) -> list[Any]:
    if turn.role == Turn.Role.ASSISTANT:
        if turn.is_running:
            return [response_items.message_item(turn, done=False)]
        return list(response_items.output_items(turn))
    if turn.role == Turn.Role.TOOL:
        return [{"type": "function_call_output", "id": f"fco_{turn.pk}", "call_id": turn.tool_call_id,
                 "output": turn.content, "status": "completed"}]
    return [{"type": "message", "id": f"msg_{turn.pk}", "status": "completed", "role": turn.role,
             "content": [{"type": "input_text", "text": turn.content}]}]


def conversation_items(conversation: Conversation) -> list[Any]:
    """The thread shown (the current branch) as OpenAI's conversation items, oldest first."""
    return [item for turn in selectors.turn_path(conversation) for item in _turn_items(turn)]


class ItemListQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    order = serializers.ChoiceField(choices=["asc", "desc"], default="desc")
    after = serializers.CharField(required=False, max_length=80, help_text="An item id: the page starts after it.")
    include = serializers.ListField(child=serializers.CharField(max_length=100), required=False)


class ConversationItemsView(OpenAIApiView):
    @extend_schema(
        summary="A conversation's items (the thread shown), a page at a time",
        operation_id="v1_conversation_items_list", parameters=[ID_PARAMETER, ItemListQuery],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="A `list` of items.")},
    )
    def get(self, request, conversation_id: str):
        conversation = own_openai_conversation(request, conversation_id)
        query = ItemListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        items = conversation_items(conversation)
        if query.validated_data["order"] == "desc":
            items.reverse()
        after = query.validated_data.get("after")
        if after is not None:
            ids = [item["id"] for item in items]
            if after not in ids:
                raise exceptions.ValidationError({"after": [f"No item with id '{after}' in this conversation."]})
            items = items[ids.index(after) + 1:]
        page = items[: query.validated_data["limit"]]
        return Response({
            "object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": len(items) > len(page),
        })

    @extend_schema(
        summary="Add items to a conversation: refused (messages are added by answering them)",
        operation_id="v1_conversation_items_create",
        parameters=[ID_PARAMETER], request=OpenApiTypes.OBJECT,
        responses={400: OpenApiResponse(OpenApiTypes.OBJECT, description="`unsupported_operation`.")},
    )
    def post(self, request, conversation_id: str):
        own_openai_conversation(request, conversation_id)
        raise UnsupportedOperation(ITEMS_ARE_ANSWERED)


class ConversationItemView(OpenAIApiView):
    def get_item(self, request, conversation_id: str, item_id: str) -> dict:
        conversation = own_openai_conversation(request, conversation_id)
        for item in conversation_items(conversation):
            if item["id"] == item_id:
                return item
        raise exceptions.NotFound(f"No item with id '{item_id}' in this conversation.")

    @extend_schema(
        summary="One item of a conversation", operation_id="v1_conversation_item_retrieve", parameters=[ID_PARAMETER],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="An item.")},
    )
    def get(self, request, conversation_id: str, item_id: str):
        return Response(self.get_item(request, conversation_id, item_id))

    @extend_schema(
        summary="Delete an item: refused (a message goes with its whole conversation)",
        operation_id="v1_conversation_item_delete", parameters=[ID_PARAMETER],
        responses={400: OpenApiResponse(OpenApiTypes.OBJECT, description="`unsupported_operation`.")},
    )
    def delete(self, request, conversation_id: str, item_id: str):
        self.get_item(request, conversation_id, item_id)
        raise UnsupportedOperation(ITEMS_STAY)
