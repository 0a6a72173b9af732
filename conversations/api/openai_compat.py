"""OpenAI-compatible endpoints (`/v1/chat/completions`, `/v1/models`) so the official client works unchanged.

Authenticated with a personal API key (`Authorization: Bearer cs_...`, which is what the client sends as
its `api_key`). Every call is a conversation of the key's owner (source "openai_api"): a new one from
the request's messages, or, when the request names one with the `X-Chatsite-Conversation` header or
`metadata.chatsite_conversation_id`, the caller's existing conversation continues with the last user message
(its stored history is what the model sees). With `store: false` the conversation is a temporary one (not listed,
deleted later), and so is every call of a key whose owner keeps its chats out of the history (ApiKey.store_chats).
Answers carry `X-Chatsite-Conversation`. The request's parameters (chat_parameters.py) are
validated as OpenAI does and sent to the model as given; a retried request lands on its first attempt
(idempotency.py).
"""

import json
import uuid
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response

from accounts.authentication import ApiKeyAuthentication
from accounts.models import ApiKey
from chatsite.api.errors import exception_handler
from chatsite.api.fields import StrictBooleanField, TextField
from conversations import answering, errors, llm, organizing, selectors, services
from conversations.api import idempotency, schema
from conversations.api.base import AnsweringView, AnswerPendingResponse, own_conversation
from conversations.api.chat_parameters import ChatParametersSerializer, model_options
from conversations.api.message_lists import (
    OpenAIMessageSerializer,
    conversation_from_messages,
    split_messages,
    upload_files,
    validate_message_list,
)
from conversations.api.streaming import event_stream_response, sse
from conversations.attachments import model_reads_images
from conversations.messages import RequestMessage, StoredMessage, ToolResult
from conversations.models import Conversation, Turn
from knowledge import services as knowledge_services
from personal import selectors as personal_selectors
from personal.models import Assistant
from teams.policy import Feature, policy_for

CONVERSATION_HEADER = "X-Chatsite-Conversation"
OPENAI_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error",
    415: "invalid_request_error", 429: "rate_limit_error",
}


def require_temporary_chats(user) -> None:
    """`store: false` makes a temporary chat: only for users whose groups allow them."""
    if not policy_for(user).allows(Feature.TEMPORARY_CHATS):
        raise errors.FeatureDisabled("Your account may not start temporary chats (store: false).")


def require_offered_model(user, name: str) -> None:
    """A model this user may use, or an assistant they may use (`assistant:<slug>`, personal app); else
    model_not_found (an unknown model and one their groups do not allow alike)."""
    if name not in selectors.models_offered(user) and personal_selectors.assistant_for_model_id(
            user=user, model_id=name) is None:
        raise errors.ModelNotFound(name)


def chat_fields(request, model: str) -> dict:
    """What a request's `model` sets on its conversation: the model, or an assistant with its model and tools."""
    assistant = personal_selectors.assistant_for_model_id(user=request.user, model_id=model)
    return assistant.chat_fields() if assistant is not None else {"model": model, "assistant": None}


def _apply_chat_fields(conversation: Conversation, fields: dict) -> None:
    if any(getattr(conversation, name) != value for name, value in fields.items()):
        services.conversation_update(conversation=conversation, **fields)


@dataclass
class TurnTarget:
    """Where a /v1 request's new input goes: the conversation, the turn it follows (None: the current turn),
    whether the conversation was created for this request, and the new input (split_messages)."""

    conversation: Conversation
    after_turn_id: int | None
    created: bool
    inputs: list[StoredMessage]


def turn_target(request, messages: list[RequestMessage], model: str, *,
                conversation: Conversation | None = None, after_turn_id: int | None = None) -> TurnTarget:
    """The conversation given (an explicit id, a previous response), else one this API key started whose
    history `messages` resend (conversations.digests), else a new one holding the messages before the new input.
    Its model becomes `model`."""
    system_prompt, history, inputs = split_messages(messages)
    if conversation is None:
        resent = selectors.turn_continued_by(
            user=request.user, api_key=request.auth, system_prompt=system_prompt, history=history
        )
        if resent is not None:  # the history of a conversation this key started: go on from there
            conversation, after_turn_id = resent.conversation, resent.pk
    created = conversation is None
    if conversation is None:
        conversation = conversation_from_messages(
            owner=request.user, source=Conversation.Source.OPENAI_API, messages=messages, api_key=request.auth,
        )
    _apply_chat_fields(conversation, chat_fields(request, model))
    return TurnTarget(conversation, after_turn_id, created, inputs)


def temporary_target(request, target: TurnTarget, messages: list[RequestMessage], model: str) -> TurnTarget:
    """`store: false`: the chat is a temporary one (never listed, deleted after CHAT_TEMPORARY_HOURS). A resent
    history continues a temporary chat only; one that matches a stored chat starts a temporary copy instead. A
    new one is titled from its question's first words, so that no model call is spent on a title nobody sees."""
    if target.conversation.delete_after is not None:
        return target
    if not target.created:
        conversation = conversation_from_messages(
            owner=request.user, source=Conversation.Source.OPENAI_API, messages=messages, api_key=request.auth,
        )
        _apply_chat_fields(conversation, chat_fields(request, model))
        target = TurnTarget(conversation, None, True, split_messages(messages)[2])
    organizing.conversation_make_temporary(conversation=target.conversation)
    question = target.inputs[0]
    if not target.conversation.title and question["role"] == Turn.Role.USER:
        title = services.title_from_text(question["content"])
        services.conversation_update(conversation=target.conversation, title=title)
    return target


def kept_out_of_history(request, store: bool | None) -> bool:
    """`store: false`, or a key whose owner keeps its chats out of the history (ApiKey.store_chats: for clients
    that cannot send store: false)."""
    return store is False or (isinstance(request.auth, ApiKey) and not request.auth.store_chats)


def refuse_temporary_answer_in_stored(conversation: Conversation) -> None:
    if conversation.delete_after is None:
        raise exceptions.ValidationError({"store": [
            "This conversation is stored: store: false (or a key that keeps its chats out of the history) cannot "
            "continue it (omit the conversation's id and send the messages to start a temporary one)."
        ]})


@contextmanager
def nothing_left_if_refused(target: TurnTarget) -> Iterator[None]:
    """A request refused before the model was asked (busy, quota, a file) leaves no conversation it created.
    (An upstream failure keeps it: the message and the failed answer are stored.)"""
    try:
        yield
    except errors.ChatError as exc:
        if target.created and not isinstance(exc, errors.UpstreamError):
            services.conversation_delete(conversation=target.conversation)
        raise


def new_attachment_ids(request, target: TurnTarget) -> list[uuid.UUID]:
    """The files of the new user message, stored as the caller's attachments (checked like any upload)."""
    return [file.pk for file in upload_files(request.user, target.inputs[0].get("files") or [])]


def _first_field_error(fields, path: str = "") -> tuple[str, str] | None:
    """The first invalid field of a validation error, as ("messages[2].content", its message)."""
    if isinstance(fields, dict):
        for name, detail in fields.items():
            if isinstance(name, int) or str(name).isdigit():  # an item of a list (DRF keys them by index)
                found = _first_field_error(detail, f"{path}[{name}]")
            else:
                found = _first_field_error(detail, f"{path}.{name}" if path else str(name))
            if found:
                return found
    elif isinstance(fields, list):
        if fields and all(isinstance(item, str) for item in fields):
            return path, fields[0]
        for index, detail in enumerate(fields):
            found = _first_field_error(detail, f"{path}[{index}]")
            if found:
                return found
    return None


def _with_openai_type(response, param: str | None = None):
    """OpenAI's error fields: "type", and "param" naming the invalid parameter, whose reason is the message."""
    body = response.data if isinstance(response, Response) else json.loads(response.content)
    error = body["error"]
    found = _first_field_error(error.pop("fields", None))
    if found and found[0] != "non_field_errors":
        param = found[0].removesuffix(".non_field_errors")  # a list's own error ("messages: []") names the list
        error["message"] = f"Invalid '{param}': {found[1]}"
    error.update({"type": OPENAI_ERROR_TYPES.get(response.status_code, "api_error"), "param": param})
    if not isinstance(response, Response):
        response.content = json.dumps(body)
    return response


def openai_exception_handler(exc, context):
    response = exception_handler(exc, context)
    return None if response is None else _with_openai_type(response, getattr(exc, "param", None))


class OpenAIApiView(AnsweringView):
    authentication_classes = [ApiKeyAuthentication]

    def get_exception_handler(self):
        return openai_exception_handler


class ChatsiteExtensionSerializer(serializers.Serializer):
    """`chatsite`: what chatsite adds to OpenAI's request (docs/api.md)."""

    knowledge_bases = serializers.ListField(
        child=serializers.IntegerField(min_value=1), max_length=100, required=False,
        help_text="Ids of your knowledge bases to attach to the conversation: its answers search them and cite the "
        "passages they use as [1], [2]. They stay attached to a continued conversation; `[]` detaches them.",
    )


def knowledge_attach(target: TurnTarget, extension: dict | None) -> None:
    """Attach the knowledge bases a /v1 request names (`chatsite.knowledge_bases`) before its answer begins."""
    if extension and "knowledge_bases" in extension:
        knowledge_services.conversation_knowledge_set(
            conversation=target.conversation, base_ids=extension["knowledge_bases"]
        )


class ChatCompletionRequestSerializer(ChatParametersSerializer):
    """A Chat Completions request: OpenAI's parameters, each validated; an unknown one is a 400."""

    model = TextField(max_length=100)
    # min_length goes to the ListSerializer that many=True makes; the stubs know only the child's arguments.
    messages = OpenAIMessageSerializer(many=True, min_length=1)  # type: ignore[call-arg]
    stream = StrictBooleanField(default=False)
    stream_options = serializers.DictField(required=False, allow_null=True)
    metadata = serializers.DictField(
        child=serializers.CharField(max_length=512, allow_blank=True), required=False, allow_null=True,
        help_text="Your own key-value pairs (kept with the request only); `chatsite_conversation_id` continues "
        "that conversation of yours.",
    )

    chatsite = ChatsiteExtensionSerializer(required=False, help_text="chatsite's own options (docs/api.md).")

    def validate_messages(self, messages):
        return validate_message_list(messages, tool_results=True)


OPENAI_FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def _finish_reason(turn: Turn) -> str:
    """The upstream's finish reason as stored ("length" when cut at max_tokens); "stop" for a stopped answer."""
    return turn.finish_reason if turn.finish_reason in OPENAI_FINISH_REASONS else "stop"


def _usage(turn: Turn) -> dict:
    return {
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
        "total_tokens": turn.prompt_tokens + turn.completion_tokens,
    }


def _message(turn: Turn) -> dict:
    message = {"role": "assistant", "content": turn.content, "refusal": None}
    if turn.tool_calls:
        message.update({"content": turn.content or None, "tool_calls": turn.tool_calls})
    return message


def completion_body(turn: Turn) -> dict:
    return {
        "id": f"chatcmpl-{turn.pk}",
        "object": "chat.completion",
        "created": int(turn.created_at.timestamp()),
        "model": turn.model,
        "choices": [{
            "index": 0,
            "message": _message(turn),
            "logprobs": None,
            "finish_reason": _finish_reason(turn),
        }],
        "usage": _usage(turn),
    }


def _requested_conversation_id(request, metadata: dict | None):
    value = request.headers.get(CONVERSATION_HEADER) or (metadata or {}).get("chatsite_conversation_id")
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise exceptions.NotFound("Conversation not found.") from None


class ChatCompletionsView(OpenAIApiView):
    chat_methods = ("POST",)

    def max_body_bytes(self) -> int:
        # Images and files travel inside the JSON as base64 (4/3 of their size), a few per message.
        return max(super().max_body_bytes(), 2 * settings.CHAT_ATTACHMENT_MAX_BYTES)

    @extend_schema(
        summary="OpenAI-compatible chat completion (stream or not)",
        description=(
            "Works with the official `openai` client: `base_url=<site>/v1`, `api_key=<your chatsite key>`. "
            "Each call is stored as a conversation of the key's owner. A call that resends the history of a "
            "conversation the same key started (every message so far, as returned) continues it; an edited "
            "last question becomes a new branch there, any other edit a new conversation. To continue one "
            f"explicitly, send its id in the `{CONVERSATION_HEADER}` header (or "
            "`metadata.chatsite_conversation_id`): then only the last user message is used and the stored "
            "conversation is the history. The response's "
            f"`{CONVERSATION_HEADER}` header names the conversation. With `stream: true` the answer is "
            "OpenAI's `chat.completion.chunk` events, then a usage chunk if `stream_options.include_usage`, "
            "then `data: [DONE]`. `store: false` keeps the call out of the history list (a temporary chat). "
            "Errors: `{\"error\": {\"code\", \"message\", \"type\", \"param\"}}`."
        ),
        parameters=[
            OpenApiParameter(CONVERSATION_HEADER, OpenApiTypes.UUID, OpenApiParameter.HEADER,
                             description="Continue this conversation of yours."),
        ],
        request=ChatCompletionRequestSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="A `chat.completion` object."),
            (200, "text/event-stream"): OpenApiResponse(
                schema.completion_stream_schema(), description="`chat.completion.chunk`s."
            ),
        },
    )
    def post(self, request):
        data = self.validated(request, ChatCompletionRequestSerializer)
        require_offered_model(request.user, data["model"])
        if data.get("store") is False:
            require_temporary_chats(request.user)
        attempt = idempotency.attempt_of(request, request.data)
        earlier = idempotency.earlier_answer(request, attempt)
        if earlier is not None:
            return replayed_completion(earlier, data)
        with idempotency.claimed(attempt):
            return self._answer(request, data, attempt)

    def _answer(self, request, data: dict, attempt: idempotency.Attempt) -> Response:
        conversation_id = _requested_conversation_id(request, data.get("metadata"))
        named = own_conversation(request, conversation_id) if conversation_id is not None else None
        temporary = kept_out_of_history(request, data.get("store"))
        if named is not None and temporary:
            refuse_temporary_answer_in_stored(named)
        target = turn_target(request, data["messages"], data["model"], conversation=named)
        if temporary:
            target = temporary_target(request, target, data["messages"], data["model"])
        conversation, inputs = target.conversation, target.inputs
        content = inputs[0]["content"] if inputs[0]["role"] == Turn.Role.USER else None
        tool_results: list[ToolResult] | None = None if content is not None else [
            {"tool_call_id": message["tool_call_id"], "content": message["content"]} for message in inputs
        ]
        turn = {"conversation": conversation, "user": request.user, "content": content, "options": model_options(data),
                "after_turn_id": target.after_turn_id, "tool_results": tool_results}
        with nothing_left_if_refused(target):
            knowledge_attach(target, data.get("chatsite"))
            turn["attachment_ids"] = new_attachment_ids(request, target)
            answer = answering.begin(**turn)
        idempotency.record(attempt, answer.turn_id)
        headers = {CONVERSATION_HEADER: str(conversation.pk)}
        if data["stream"]:  # as OpenAI: the body decides, not the Accept header
            include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
            return AnswerPendingResponse(answer, lambda begun: completion_stream(begun, include_usage, headers),
                                         until_output=True)
        return AnswerPendingResponse(
            answer, lambda stored: completion_body(stored.result().assistant_turn), headers=headers
        )


def replayed_completion(turn: Turn, data: dict) -> HttpResponseBase:
    """The outcome of a retried request's earlier attempt (conversations.api.idempotency): its failure again, or its
    stored answer, as JSON or as one stream of chunks."""
    idempotency.raise_if_failed(turn)
    headers = {CONVERSATION_HEADER: str(turn.conversation_id)}
    if not data["stream"]:
        return Response(completion_body(turn), headers=headers)
    include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
    return event_stream_response(replayed_chunks(turn, include_usage=include_usage), headers=headers)


async def replayed_chunks(turn: Turn, *, include_usage: bool) -> AsyncGenerator[bytes, None]:
    base = {"id": f"chatcmpl-{turn.pk}", "object": "chat.completion.chunk",
            "created": int(turn.created_at.timestamp()), "model": turn.model}
    delta: dict = {"role": "assistant", "content": turn.content}
    if turn.tool_calls:
        delta["tool_calls"] = [{"index": index, **call} for index, call in enumerate(turn.tool_calls)]
    for piece, finish_reason in ((delta, None), ({}, _finish_reason(turn))):
        yield sse(None, {**base, "choices": [
            {"index": 0, "delta": piece, "logprobs": None, "finish_reason": finish_reason}
        ]})
    if include_usage:
        yield sse(None, {**base, "choices": [], "usage": _usage(turn)})
    yield b"data: [DONE]\n\n"


def completion_stream(answer: answering.Answer, include_usage: bool, headers: dict[str, str]) -> HttpResponseBase:
    """The stream of a just-begun answer; one that failed before writing anything is an HTTP error instead (nothing
    is sent yet: the status says it, so 429 and 5xx are retried)."""
    failed = answer.failed_before_output()
    if failed is not None:
        raise failed.error
    return event_stream_response(completion_chunks(answer, include_usage=include_usage), headers=headers)


async def completion_chunks(answer: answering.Answer, *, include_usage: bool) -> AsyncGenerator[bytes, None]:
    """The answer as OpenAI `chat.completion.chunk` server-sent events: its text, and the calls of the tools
    the client sent (server tools run on the server: their steps are not sent).

    As with OpenAI, a client that goes away stops the answer (stored as cancelled with its partial text).
    """
    turn = answer.assistant_turn
    base = {"id": f"chatcmpl-{turn.pk}", "object": "chat.completion.chunk",
            "created": int(turn.created_at.timestamp()), "model": turn.model}

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        return sse(None, {**base, "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ]})

    try:
        async with aclosing(answer.follow()) as entries:
            async for entry in entries:
                event = entry.event
                if isinstance(event, answering.AnswerDelta):
                    yield chunk({"content": event.text})
                elif isinstance(event, answering.TurnStored):
                    yield chunk({"role": "assistant", "content": ""})
                elif isinstance(event, answering.AnswerToolCall):
                    yield chunk({"tool_calls": event.tool_calls})  # as the model sent them
                elif isinstance(event, answering.AnswerDone):
                    yield chunk({}, _finish_reason(event.assistant_turn))
                    if include_usage:
                        yield sse(None, {**base, "choices": [], "usage": _usage(event.assistant_turn)})
                    yield b"data: [DONE]\n\n"
                elif isinstance(event, answering.AnswerFailed):
                    error = event.error
                    yield sse(None, {"error": {
                        "code": error.code, "message": error.message, "param": None,
                        "type": OPENAI_ERROR_TYPES.get(error.status, "api_error"),
                    }})
                    yield b"data: [DONE]\n\n"
                # A TitleSet may follow; the client has its [DONE] already.
    finally:
        if answer.outcome() is None:
            answering.stop(answer.turn_id)  # the client left mid-answer

def _model_object(name: str, assistant: Assistant | None = None) -> dict:
    """OpenAI's model object, with what clients read to size and shape their requests (as OpenRouter and LiteLLM
    name them): the context, the longest answer (CHAT_MAX_ANSWER_TOKENS), and whether it reads images and calls
    tools here; `purpose` says which endpoints take it. An assistant is listed under its id (`assistant:<slug>`)
    with its model's figures."""
    backend = llm.get_backend()
    if assistant is not None:
        name = assistant.model or backend.default_model
    return {
        "id": assistant.model_id if assistant is not None else name, "object": "model",
        "created": int(assistant.created_at.timestamp()) if assistant is not None else 0, "owned_by": "chatsite",
        "purpose": "chat",
        "context_length": backend.context_tokens(name), "max_output_tokens": settings.CHAT_MAX_ANSWER_TOKENS,
        "capabilities": {"vision": model_reads_images(name), "tools": backend.refused_option({"tools": []}) is None},
    }


def _embedding_model_object(name: str) -> dict:
    """An embedding model (EMBEDDING_MODELS) as a model object: for /v1/embeddings only. It writes no answer, and
    its input limit is the upstream's (stated only when CHAT_CONTEXT_TOKENS_BY_MODEL names it)."""
    return {
        "id": name, "object": "model", "created": 0, "owned_by": "chatsite", "purpose": "embeddings",
        "context_length": settings.CHAT_CONTEXT_TOKENS_BY_MODEL.get(name), "max_output_tokens": None,
        "capabilities": {"vision": False, "tools": False},
    }


MODEL_FIELDS: dict[str, serializers.Field] = {
    "id": serializers.CharField(), "object": serializers.CharField(), "created": serializers.IntegerField(),
    "owned_by": serializers.CharField(),
    "purpose": serializers.ChoiceField(
        choices=["chat", "embeddings"],
        help_text="chatsite's: `chat` for /v1/chat/completions and /v1/responses, `embeddings` for /v1/embeddings.",
    ),
    "context_length": serializers.IntegerField(
        allow_null=True, help_text="Tokens of context (null for an embedding model: the upstream's limit).",
    ),
    "max_output_tokens": serializers.IntegerField(
        allow_null=True, help_text="The longest answer (CHAT_MAX_ANSWER_TOKENS); null for an embedding model.",
    ),
    "capabilities": inline_serializer("ModelCapabilities", {
        "vision": serializers.BooleanField(), "tools": serializers.BooleanField(),
    }),
}


def _embedding_models(user) -> list[str]:
    """The embedding models listed for this user: those not also offered as a chat model (one entry per id)."""
    chat = set(selectors.models_offered(user))
    return [name for name in selectors.embedding_models_offered(user) if name not in chat]


class ModelsView(OpenAIApiView):
    @extend_schema(
        summary="OpenAI-compatible model list",
        description="The chat models offered to you, the embedding models offered to you (`purpose: "
        "\"embeddings\"`: for /v1/embeddings), then the assistants you may use, as `assistant:<slug>`: yours, "
        "featured ones, and shared ones you have chatted with.",
        responses=inline_serializer("ModelList", {
            "object": serializers.CharField(),
            "data": inline_serializer("ModelListItem", MODEL_FIELDS, many=True),
        }),
    )
    def get(self, request):
        return Response({
            "object": "list",
            "data": [_model_object(name) for name in selectors.models_offered(request.user)]
            + [_embedding_model_object(name) for name in _embedding_models(request.user)]
            + [_model_object("", assistant) for assistant in personal_selectors.assistants_listed(user=request.user)],
        }, status=status.HTTP_200_OK)


class ModelDetailView(OpenAIApiView):
    @extend_schema(
        operation_id="v1_model_retrieve",
        summary="OpenAI-compatible model",
        responses=inline_serializer("Model", MODEL_FIELDS),
    )
    def get(self, request, model_id: str):
        if model_id in _embedding_models(request.user):
            return Response(_embedding_model_object(model_id))
        require_offered_model(request.user, model_id)
        return Response(_model_object(
            model_id, personal_selectors.assistant_for_model_id(user=request.user, model_id=model_id)
        ))


class UnknownPathView(OpenAIApiView):
    """Any other path under /v1/: OpenAI's 404 error (JSON, also with DEBUG on), for anyone."""

    schema = None  # not in the API schema
    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    def _not_found(self, request, *args, **kwargs):
        raise exceptions.NotFound(f"Unknown path: {request.method} {request.path}.")

    get = post = put = patch = delete = _not_found
