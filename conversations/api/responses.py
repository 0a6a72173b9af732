"""OpenAI's Responses API on stored conversations: `POST /v1/responses`, `GET /v1/responses/{id}`.

A response is an answer turn: its id is `resp_<turn id>` (looked up through the owner, so someone else's id is
a 404). `input` (a string, or items: messages with text, image and file parts, `function_call` and
`function_call_output` items, `item_reference`s to this server's own output items) is stored like a Chat
Completions request: without `previous_response_id` a new conversation (or, when the items resend a history
this key started, that conversation); with it, the new input (a user message, or the results of that
response's function calls) follows that response in its conversation, as a new branch if the chat has moved on
since. With `conversation` (a Conversations API id, `conv_...`, or a chat's UUID as the page shows it), the new
input follows that conversation's thread as shown (openai_conversations.py). `instructions` are the conversation's
system prompt. Function `tools`, `tool_choice` and `text.format` (JSON) go to the model in their Chat Completions
shapes; its function calls come back as `function_call` output items. `store: false` (or a key that keeps its
chats out of the history) keeps the chat out of the history list, as a temporary chat. Streaming sends OpenAI's
semantic events (`response.created` ... `response.completed`), numbered by `sequence_number`.

`background: true` answers at once with the response `queued`; the answer runs on without the request: poll
`GET /v1/responses/{id}` (`in_progress`, then `completed`, `incomplete`, `failed` or `cancelled`), stop it with
`POST /v1/responses/{id}/cancel`, or follow it with `GET /v1/responses/{id}?stream=true&starting_after=<n>`: the
events after number n, as numbered when it began (while it runs, and for a while after; later, the stored answer
as one text delta). A background stream whose client leaves does not stop the answer.

What chatsite cannot honour (hosted tools, reasoning summaries) is a 400 naming the parameter.
`reasoning.effort` goes to the model as `reasoning_effort`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from chatsite.api.fields import StrictBooleanField, TextField
from conversations import answering, errors, services
from conversations.api import idempotency, response_items
from conversations.api.base import AnswerPendingResponse, PendingResponse
from conversations.api.chat_parameters import JsonValueField, StrictNumberField, capped_answer_tokens
from conversations.api.message_lists import validate_message_list
from conversations.api.openai_compat import (
    CONVERSATION_HEADER,
    OPENAI_ERROR_TYPES,
    ChatsiteExtensionSerializer,
    OpenAIApiView,
    kept_out_of_history,
    knowledge_attach,
    new_attachment_ids,
    nothing_left_if_refused,
    require_offered_model,
    require_temporary_chats,
    temporary_target,
    turn_target,
)
from conversations.api.openai_conversations import MetadataField, conversation_object_id, own_openai_conversation
from conversations.api.streaming import event_stream_response, sse
from conversations.messages import ToolCall
from conversations.models import Conversation, Turn

# Known to OpenAI's Responses API and refused here (unless null), with the reason.
REFUSED = {
    "prompt": "Prompt templates are not supported.",
    "top_logprobs": "chatsite does not relay log probabilities.",
    "max_tool_calls": "A limit on built-in tool calls has no meaning here: chatsite runs no hosted tools.",
}
ACCEPTED = {
    "model", "input", "instructions", "stream", "previous_response_id", "store", "max_output_tokens", "temperature",
    "top_p", "metadata", "user", "parallel_tool_calls", "truncation", "text", "include", "service_tier",
    "stream_options", "safety_identifier", "prompt_cache_key", "tools", "tool_choice", "reasoning", "background",
    "conversation", "chatsite",
}
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]})
class InputField(serializers.Field):
    """`input`: a string (one user message) or a list of items (response_items.check_items)."""

    def to_internal_value(self, data):
        return response_items.check_items(data)

    def to_representation(self, value):
        return value


@extend_schema_field({"oneOf": [
    {"type": "string"}, {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
]})
class ConversationReferenceField(serializers.Field):
    """`conversation`: its id, or `{"id": ...}`."""

    def to_internal_value(self, data):
        value = data.get("id") if isinstance(data, dict) else data
        if not isinstance(value, str) or not value or len(value) > 80:
            raise serializers.ValidationError("Expected a conversation id (a string), or {\"id\": ...}.")
        return value

    def to_representation(self, value):
        return value


class ResponseRequestSerializer(serializers.Serializer):
    """A Responses API request. Its `messages` are the input items as Chat Completions messages, each checked
    as /v1/chat/completions checks them (the list's own rules wait for the view: they depend on
    `previous_response_id`); its `options` are what goes to the model."""

    model = TextField(max_length=100)
    input = InputField()
    instructions = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False,
        max_length=settings.CHAT_MAX_MESSAGE_CHARS,
    )
    service_tier = serializers.CharField(required=False, allow_null=True, max_length=50)
    safety_identifier = serializers.CharField(required=False, allow_null=True, max_length=256)
    prompt_cache_key = serializers.CharField(required=False, allow_null=True, max_length=256)
    stream = StrictBooleanField(default=False)
    stream_options = serializers.DictField(required=False, allow_null=True)
    background = StrictBooleanField(default=False, help_text="Answer at once (`queued`); poll, cancel or stream it.")
    previous_response_id = serializers.CharField(required=False, allow_null=True, max_length=40)
    conversation = ConversationReferenceField(required=False, allow_null=True)
    store = StrictBooleanField(required=False, allow_null=True)
    max_output_tokens = StrictNumberField(min_value=16, integer=True)  # OpenAI's own minimum
    temperature = StrictNumberField(min_value=0, max_value=2)
    top_p = StrictNumberField(min_value=0, max_value=1)
    metadata = MetadataField(required=False, allow_null=True)
    user = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=256)
    text = serializers.DictField(required=False, allow_null=True)
    truncation = serializers.ChoiceField(choices=["auto", "disabled"], required=False, allow_null=True)
    include = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    tools = JsonValueField(kinds=(list,), description="a list of tools")
    tool_choice = JsonValueField(kinds=(str, dict), description="'none', 'auto', 'required' or a function tool")
    parallel_tool_calls = StrictBooleanField(required=False, allow_null=True)
    reasoning = serializers.DictField(required=False, allow_null=True)
    chatsite = ChatsiteExtensionSerializer(required=False, help_text="chatsite's own options (docs/api.md).")

    def validate_reasoning(self, reasoning):
        """Only the effort, sent as Chat Completions' `reasoning_effort`: summaries have no way back from there."""
        if reasoning is None:
            return None
        for name, value in reasoning.items():
            if name in ("summary", "generate_summary") and value is not None:
                raise serializers.ValidationError(
                    f"{name}: reasoning summaries are not relayed (chatsite's model calls return none)."
                )
            if name not in ("effort", "summary", "generate_summary"):
                raise serializers.ValidationError(f"Unknown field {name!r}: reasoning has effort (and summary).")
        if reasoning.get("effort") is not None and reasoning["effort"] not in REASONING_EFFORTS:
            raise serializers.ValidationError(f"effort is one of {', '.join(REASONING_EFFORTS)}.")
        return reasoning

    def validate_tools(self, tools):
        return response_items.chat_tools(tools) if tools is not None else None

    def validate_tool_choice(self, choice):
        return response_items.chat_tool_choice(choice) if choice is not None else None

    def validate_include(self, include):
        response_items.check_include(include or [])
        return include

    def validate_text(self, text):
        if text is None:
            return None
        unknown = set(text) - {"format", "verbosity"}
        if unknown:
            raise serializers.ValidationError(f"Unknown field {sorted(unknown)[0]!r}: text has format and verbosity.")
        if text.get("verbosity") is not None and text["verbosity"] not in ("low", "medium", "high"):
            raise serializers.ValidationError("verbosity is 'low', 'medium' or 'high'.")
        response_items.chat_response_format(text.get("format") or {"type": "text"})
        return text

    def validate(self, attrs):
        for name in self.initial_data:
            if name in REFUSED and self.initial_data[name] is not None:
                raise serializers.ValidationError({name: [REFUSED[name]]})
            if name not in ACCEPTED and name not in REFUSED:
                raise serializers.ValidationError({name: [f"Unrecognized request argument supplied: {name}"]})
        if attrs.get("conversation") and attrs.get("previous_response_id"):
            raise serializers.ValidationError({"conversation": [
                "conversation and previous_response_id cannot be used together: either names what the input follows."
            ]})
        if attrs.get("max_output_tokens") is not None:  # echoed capped: the limit the answer had
            attrs["max_output_tokens"] = capped_answer_tokens(attrs["max_output_tokens"])
        attrs["options"] = self._options(attrs)
        try:
            attrs["messages"] = response_items.checked_messages(attrs["input"], context=self.context)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"input": exc.detail}) from None
        return attrs

    @staticmethod
    def _options(attrs: dict) -> dict:
        """The Chat Completions parameters for the model: the forwarded ones, function tools, JSON output."""
        forwarded = ("temperature", "top_p", "user", "service_tier", "safety_identifier", "prompt_cache_key")
        options: dict[str, Any] = {name: attrs[name] for name in forwarded if attrs.get(name) is not None}
        if attrs.get("max_output_tokens") is not None:
            options["max_completion_tokens"] = attrs["max_output_tokens"]
        tools, choice = attrs.get("tools") or [], attrs.get("tool_choice")
        if tools:
            options["tools"] = tools
            if attrs.get("parallel_tool_calls") is not None:
                options["parallel_tool_calls"] = attrs["parallel_tool_calls"]
        if isinstance(choice, dict) and choice["function"]["name"] not in {t["function"]["name"] for t in tools}:
            raise serializers.ValidationError({"tool_choice": [
                f"No function tool named {choice['function']['name']!r} in tools."
            ]})
        if choice == "required" and not tools:
            raise serializers.ValidationError({"tool_choice": ["'required' needs at least one tool in tools."]})
        if choice is not None and tools:  # without tools, 'none' and 'auto' mean what no tool_choice means
            options["tool_choice"] = choice
        text = attrs.get("text") or {}
        response_format = response_items.chat_response_format(text.get("format") or {"type": "text"})
        if response_format is not None:
            options["response_format"] = response_format
        if text.get("verbosity") is not None:
            options["verbosity"] = text["verbosity"]
        if (attrs.get("reasoning") or {}).get("effort") is not None:
            options["reasoning_effort"] = attrs["reasoning"]["effort"]
        return options


def response_id(turn: Turn) -> str:
    return f"resp_{turn.pk}"


def _turn_id(value: str) -> int | None:
    number = value.removeprefix("resp_")
    return int(number) if value.startswith("resp_") and number.isascii() and number.isdigit() else None


def own_response(request, value: str) -> Turn:
    """The caller's answer turn `resp_<id>` or 404 (someone else's is 'not found')."""
    turn_id = _turn_id(value or "")
    turn = (
        Turn.objects.for_user(request.user).select_related("conversation", "parent__parent")
        .filter(pk=turn_id, role=Turn.Role.ASSISTANT).first()
        if turn_id is not None else None
    )
    if turn is None:
        raise exceptions.NotFound(f"No response with id '{value}'.")
    return turn


def previous_response_of(turn: Turn) -> str | None:
    """The response this one followed: the answer before its user message (needs `parent__parent` loaded)."""
    before = turn.parent.parent if turn.parent is not None else None
    return response_id(before) if before is not None and before.role == Turn.Role.ASSISTANT else None


def response_body(turn: Turn, *, previous: str | None = None, status: str | None = None, error=None,
                  request: dict | None = None) -> dict:
    """A stored answer as OpenAI's `response` object; `request` (the validated request, when there is one) gives
    the settings it echoes."""
    statuses: dict[str, str] = {
        Turn.Status.COMPLETE: "incomplete" if turn.finish_reason == "length" else "completed",
        Turn.Status.FAILED: "failed", Turn.Status.CANCELLED: "cancelled",
    }
    status = status or statuses.get(turn.status, "in_progress")
    done = status not in ("queued", "in_progress")
    request = request or {}
    tools = request.get("tools") or []
    choice = request.get("tool_choice") or "auto"
    return {
        "id": response_id(turn), "object": "response", "created_at": int(turn.created_at.timestamp()),
        "status": status, "model": turn.model,
        "error": failed_response_error(turn, error) if status == "failed" else None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": turn.conversation.system_prompt or None, "previous_response_id": previous,
        "output": response_items.output_items(turn) if done else [],
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "tool_choice": {"type": "function", "name": choice["function"]["name"]} if isinstance(choice, dict) else choice,
        "tools": [{"type": "function", "name": tool["function"]["name"],
                   "description": tool["function"].get("description"),
                   "parameters": tool["function"].get("parameters"), "strict": tool["function"].get("strict")}
                  for tool in tools],
        "temperature": request.get("temperature"), "top_p": request.get("top_p"),
        "max_output_tokens": request.get("max_output_tokens"),
        "reasoning": {"effort": (request.get("reasoning") or {}).get("effort"), "summary": None},
        "store": turn.conversation.delete_after is None,
        "text": {"format": (request.get("text") or {}).get("format") or {"type": "text"}},
        "truncation": request.get("truncation") or "auto", "metadata": request.get("metadata") or {},
        "user": request.get("user"), "usage": _usage(turn) if done else None,
        "background": request.get("background"),
        "conversation": {"id": conversation_object_id(turn.conversation)} if request.get("conversation") else None,
    }


def failed_response_error(turn: Turn, error: errors.ChatError | None = None) -> dict:
    """OpenAI's `error` of a failed response: why it failed, as the code stored with the answer (the code a
    request answered in the foreground gets in its HTTP error: `upstream_rate_limited`, `context_length_exceeded`,
    `interrupted`...), its message, and the OpenAI error type of that HTTP error. An answer stored before codes
    were kept says `server_error`."""
    code = turn.error_code or getattr(error, "code", "") or "server_error"
    kind = errors.error_class(code)
    return {
        "code": code, "message": turn.error or getattr(error, "message", ""), "param": None,
        "type": OPENAI_ERROR_TYPES.get(kind.status, "api_error") if kind is not None else "api_error",
    }


def _usage(turn: Turn) -> dict:
    return {
        "input_tokens": turn.prompt_tokens, "output_tokens": turn.completion_tokens,
        "total_tokens": turn.prompt_tokens + turn.completion_tokens,
        "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0},
    }


def _message_list(messages: list) -> list:
    """The Chat Completions list rules (validate_message_list, tool results allowed), as errors of `input`."""
    try:
        return validate_message_list(messages, tool_results=True)
    except serializers.ValidationError as exc:
        raise exceptions.ValidationError({"input": exc.detail}) from None


def _check_input_after(earlier: Turn | None, messages: list, *, temporary: bool, conversation: Conversation) -> None:
    """With previous_response_id or conversation, the input is the new user message, or the results of every
    function call of the answer it follows (`earlier`); a temporary answer (store: false, or the key's setting)
    cannot go on in a stored chat."""
    if any(message["role"] not in ("user", "tool") for message in messages) or (
        messages[-1]["role"] == "user" and len(messages) > 1
    ):
        raise exceptions.ValidationError({"input": [
            "With previous_response_id or conversation, send only the new user message (or the "
            "function_call_output items of the last response's calls): the conversation has the rest."
        ]})
    if earlier is not None and earlier.tool_calls:
        earlier_answer = {"role": "assistant", "content": earlier.content, "tool_calls": earlier.tool_calls}
        _message_list([earlier_answer, *messages])
    else:
        _message_list(messages)
    if temporary and conversation.delete_after is None:
        raise exceptions.ValidationError({"store": [
            "This conversation is stored: store: false (or a key that keeps its chats out of the history) cannot "
            "continue it (send the items without previous_response_id or conversation to start a temporary one)."
        ]})


def _answer_at_end(conversation: Conversation) -> Turn | None:
    """The answer that ends the conversation's thread as shown, if it ends with one (what new input follows)."""
    turn = conversation.current_turn
    return turn if turn is not None and turn.role == Turn.Role.ASSISTANT else None


class ResponsesView(OpenAIApiView):
    chat_methods = ("POST",)

    def max_body_bytes(self) -> int:
        # Images and files travel inside the JSON as base64 (4/3 of their size), as for Chat Completions.
        return max(super().max_body_bytes(), 2 * settings.CHAT_ATTACHMENT_MAX_BYTES)

    @extend_schema(
        summary="OpenAI-compatible Responses API (stream or not), on stored conversations",
        description=__doc__,
        request=ResponseRequestSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="A `response` object."),
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="`response.*` events."),
        },
    )
    def post(self, request):
        data = self.validated(request, ResponseRequestSerializer, context={"request": request})
        require_offered_model(request.user, data["model"])
        if data.get("store") is False:
            require_temporary_chats(request.user)
        attempt = idempotency.attempt_of(request, request.data)
        earlier = idempotency.earlier_answer(request, attempt)
        if earlier is not None:
            return replayed_response(request, earlier, data)
        with idempotency.claimed(attempt):
            return self._answer(request, data, attempt)

    def _answer(self, request, data: dict, attempt: idempotency.Attempt) -> HttpResponseBase:
        messages = data["messages"]
        previous = data.get("previous_response_id")
        temporary = kept_out_of_history(request, data.get("store"))
        earlier = own_response(request, previous) if previous else None
        conversation = earlier.conversation if earlier is not None else None
        if data.get("conversation"):
            conversation = own_openai_conversation(request, data["conversation"])
            earlier = _answer_at_end(conversation)
        if conversation is not None:
            _check_input_after(earlier, messages, temporary=temporary, conversation=conversation)
            if data.get("instructions") is not None and data["instructions"] != conversation.system_prompt:
                services.conversation_update(conversation=conversation, system_prompt=data["instructions"])
        else:
            _message_list(messages)
        if data.get("instructions"):
            messages = [{"role": "system", "content": data["instructions"]}, *messages]
        target = turn_target(
            request, messages, data["model"], conversation=conversation,
            after_turn_id=earlier.pk if previous and earlier else None,
        )
        if temporary:
            target = temporary_target(request, target, messages, data["model"])
        inputs = target.inputs
        content = inputs[0]["content"] if inputs[0]["role"] == Turn.Role.USER else None
        turn = {
            "conversation": target.conversation, "user": request.user, "content": content,
            "options": data["options"], "after_turn_id": target.after_turn_id,
            "tool_results": None if content is not None else [
                {"tool_call_id": message["tool_call_id"], "content": message["content"]} for message in inputs
            ],
        }
        headers = {CONVERSATION_HEADER: str(target.conversation.pk)}
        with nothing_left_if_refused(target):
            knowledge_attach(target, data.get("chatsite"))
            turn["attachment_ids"] = new_attachment_ids(request, target)
            answer = answering.begin(**turn)
        idempotency.record(attempt, answer.turn_id)
        if data["background"]:  # the answer runs on detached: the client polls, cancels or follows it
            if data["stream"]:
                return event_stream_response(response_events(
                    answer.assistant_turn, answer.follow(), previous=previous, request=data, stop_on_leave=False,
                ), headers=headers)
            return Response(response_body(answer.assistant_turn, previous=previous, status="queued", request=data),
                            headers=headers)

        def respond(ready: answering.Answer) -> dict | HttpResponseBase:
            # An answer that failed before writing anything is an HTTP error (429 and 5xx are retried); one cut
            # short keeps its text and says so in the response.
            failed = ready.failed_before_output()
            if failed is not None:
                raise failed.error
            if data["stream"]:
                return event_stream_response(
                    response_events(ready.assistant_turn, ready.follow(), previous=previous, request=data),
                    headers=headers,
                )
            return response_body(ready.assistant_turn, previous=previous, request=data)

        return AnswerPendingResponse(answer, respond, until_output=data["stream"], headers=headers)


def replayed_response(request, turn: Turn, data: dict) -> Response:
    """The outcome of a retried request's earlier attempt (conversations.api.idempotency): its failure again, or
    its stored response (a stream's events are not replayed: the response is named for a GET)."""
    idempotency.raise_if_failed(turn)
    if data["stream"]:
        raise idempotency.AnsweredBefore(
            f"This request was answered as {response_id(turn)}: read it with GET /v1/responses/{response_id(turn)}."
        )
    turn = own_response(request, response_id(turn))  # with the turns before it, for previous_response_id
    return Response(response_body(turn, previous=previous_response_of(turn)),
                    headers={CONVERSATION_HEADER: str(turn.conversation_id)})


class ResponseQuery(serializers.Serializer):
    stream = serializers.BooleanField(
        default=False, help_text="Follow the answer as `response.*` events (a background one, while it runs)."
    )
    starting_after = serializers.IntegerField(
        min_value=-1, max_value=2**31 - 1, required=False,
        help_text="With stream: only the events after this sequence_number (to resume a broken stream).",
    )
    include = serializers.ListField(child=serializers.CharField(max_length=100), required=False)


class ResponseDetailView(OpenAIApiView):
    @extend_schema(
        summary="A stored response (or, with stream=true, its events)", parameters=[ResponseQuery],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="A `response` object."),
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="`response.*` events."),
        },
    )
    def get(self, request, response_id: str):
        turn = own_response(request, response_id)
        query = ResponseQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        if turn.is_running:
            answering.fail_if_abandoned(turn)
        headers = {CONVERSATION_HEADER: str(turn.conversation_id)}
        previous = previous_response_of(turn)
        if query.validated_data["stream"]:
            # From the answer's first event, numbered as when it began; the stored answer once its log is gone.
            entries = answering.follow(turn.pk)
            return event_stream_response(response_events(
                turn, entries or stored_entries(turn), previous=previous, request={}, stop_on_leave=False,
                starting_after=query.validated_data.get("starting_after", -1),
            ), headers=headers)
        return Response(response_body(turn, previous=previous), headers=headers)


class CancelledResponse(PendingResponse):
    """A cancelled response, once its answer has stopped and been stored (on the event loop)."""

    def __init__(self, turn: Turn, headers: dict[str, str]):
        super().__init__(None, headers=headers)
        self.turn = turn

    async def outcome(self) -> dict:
        entries = answering.follow(self.turn.pk)
        if entries is not None:
            async with aclosing(entries) as following:
                async for entry in following:
                    if entry.name in ("done", "error"):
                        break
        turn = await sync_to_async(stored_response_turn, thread_sensitive=True)(self.turn.pk)
        return response_body(turn, previous=previous_response_of(turn))


def stored_response_turn(turn_id: int) -> Turn:
    return Turn.objects.select_related("conversation", "parent__parent").get(pk=turn_id)


class ResponseCancelView(OpenAIApiView):
    @extend_schema(
        summary="Cancel a background response",
        description="Stops the answer (its text so far is kept, as `cancelled`) and returns the response. A response "
        "that has already ended is returned as it is.",
        request=None, responses=OpenApiResponse(OpenApiTypes.OBJECT, description="A `response` object."),
    )
    def post(self, request, response_id: str):
        turn = own_response(request, response_id)
        headers = {CONVERSATION_HEADER: str(turn.conversation_id)}
        if not turn.is_running:
            return Response(response_body(turn, previous=previous_response_of(turn)), headers=headers)
        answering.stop_conversation(turn.conversation)
        return CancelledResponse(turn, headers)


@dataclass
class OpenedCall:
    """A function call being streamed: its place in the output, and the call as streamed so far."""

    output_index: int
    call: ToolCall


class _ResponseEvents:
    """Numbers the Responses API's events (from 0, as OpenAI) and keeps the output items as they open: the
    answer's text (opened at its first delta) and each function call (opened at its first piece)."""

    def __init__(self, turn: Turn, *, starting_after: int = -1) -> None:
        self.turn = turn
        self.starting_after = starting_after  # events up to this number were sent before: made, not sent again
        self.sequence = -1
        self.message_index: int | None = None
        self.calls: dict[int, OpenedCall] = {}  # by the model's index for the call
        self.opened = 0

    def event(self, kind: str, **fields) -> bytes:
        self.sequence += 1
        if self.sequence <= self.starting_after:
            return b""
        return sse(kind, {"type": kind, "sequence_number": self.sequence, **fields})

    def open_message(self) -> list[bytes]:
        if self.message_index is not None:
            return []
        self.message_index, self.opened = self.opened, self.opened + 1
        item_id = f"msg_{self.turn.pk}"
        return [
            self.event("response.output_item.added", output_index=self.message_index,
                       item=response_items.message_item(self.turn, done=False)),
            self.event("response.content_part.added", item_id=item_id, output_index=self.message_index,
                       content_index=0, part={"type": "output_text", "text": "", "annotations": [], "logprobs": []}),
        ]

    def text_delta(self, text: str) -> list[bytes]:
        return [*self.open_message(), self.event(
            "response.output_text.delta", item_id=f"msg_{self.turn.pk}", output_index=self.message_index,
            content_index=0, delta=text, logprobs=[],
        )]

    def tool_call_pieces(self, pieces: list[dict]) -> list[bytes]:
        events = []
        for piece in pieces:
            index = piece.get("index", 0)
            function = piece.get("function") or {}
            if index not in self.calls:
                call: ToolCall = {"id": piece.get("id") or "", "type": "function",
                                  "function": {"name": function.get("name") or "", "arguments": ""}}
                self.calls[index] = OpenedCall(self.opened, call)
                self.opened += 1
                events.append(self.event(
                    "response.output_item.added", output_index=self.calls[index].output_index,
                    item=response_items.function_call_item(self.turn, index, call, status="in_progress"),
                ))
            if function.get("arguments"):
                opened = self.calls[index]
                opened.call["function"]["arguments"] += function["arguments"]
                events.append(self.event(
                    "response.function_call_arguments.delta", item_id=f"fc_{self.turn.pk}_{index}",
                    output_index=opened.output_index, delta=function["arguments"],
                ))
        return events

    def close(self, stored: Turn) -> list[bytes]:
        """The `.done` events of every item opened, with the stored answer's text and calls."""
        if not self.calls:
            self.open_message()  # an answer without text or calls still has its (empty) message
        events = []
        if self.message_index is not None:
            item_id = f"msg_{stored.pk}"
            events += [
                self.event("response.output_text.done", item_id=item_id, output_index=self.message_index,
                           content_index=0, text=stored.content, logprobs=[]),
                self.event("response.content_part.done", item_id=item_id, output_index=self.message_index,
                           content_index=0, part={"type": "output_text", "text": stored.content, "annotations": [],
                                                  "logprobs": []}),
                self.event("response.output_item.done", output_index=self.message_index,
                           item=response_items.message_item(stored, done=True)),
            ]
        calls = stored.tool_calls or []
        for index, opened in sorted(self.calls.items(), key=lambda pair: pair[1].output_index):
            if index < len(calls):
                item = response_items.function_call_item(stored, index, calls[index])
            else:  # the answer broke off before this call was whole
                item = response_items.function_call_item(stored, index, opened.call, status="incomplete")
            events += [
                self.event("response.function_call_arguments.done", item_id=item["id"],
                           output_index=opened.output_index, name=item["name"], arguments=item["arguments"]),
                self.event("response.output_item.done", output_index=opened.output_index, item=item),
            ]
        return events


async def stored_entries(turn: Turn) -> AsyncGenerator[answering.Entry, None]:
    """A finished answer whose event log is gone, as the log it would have had: its text as one delta, its calls."""
    events: list[answering.ChatEvent] = []
    if turn.content:
        events.append(answering.AnswerDelta(turn.content))
    if turn.tool_calls:
        pieces = [{"index": index, **call} for index, call in enumerate(turn.tool_calls)]
        events.append(answering.AnswerToolCall(pieces))
    events.append(answering.AnswerDone(turn))
    for seq, event in enumerate(events, start=1):
        yield answering.Entry.of(seq, event)


async def _event_of(entry: answering.Entry) -> answering.ChatEvent | None:
    """The entry's event; for one read from another worker's log (event None), the event again from its frame (the
    end, from the stored answer)."""
    if entry.event is not None:
        return entry.event
    if entry.name == "delta":
        return answering.AnswerDelta(entry.data["text"])
    if entry.name == "tool_call":
        return answering.AnswerToolCall(entry.data["tool_calls"])
    if entry.name in ("done", "error"):
        turn = await sync_to_async(stored_response_turn, thread_sensitive=True)(entry.data["assistant_turn"]["id"])
        if entry.name == "done":
            return answering.AnswerDone(turn)
        error = errors.ChatError(entry.data["error"]["message"])
        error.code = entry.data["error"]["code"]
        return answering.AnswerFailed(turn, error)
    return None


async def response_events(
    turn: Turn, entries: AsyncIterator[answering.Entry], *, previous: str | None, request: dict,
    stop_on_leave: bool = True, starting_after: int = -1,
) -> AsyncGenerator[bytes, None]:
    """The answer's log as the Responses API's semantic events, numbered from the answer's first event (those up to
    `starting_after` are not sent). A client that leaves stops the answer, as OpenAI does (unless it runs in the
    background)."""
    events = _ResponseEvents(turn, starting_after=starting_after)
    started = response_body(turn, previous=previous, status="in_progress", request=request)
    finished = False
    try:
        for chunk in (events.event("response.created", response=started),
                      events.event("response.in_progress", response=started)):
            if chunk:
                yield chunk
        async with aclosing(entries) as following:  # type: ignore[type-var]
            async for entry in following:
                current = await _event_of(entry)
                chunks: list[bytes] = []
                if isinstance(current, answering.AnswerDelta):
                    chunks = events.text_delta(current.text)
                elif isinstance(current, answering.AnswerToolCall):
                    chunks = events.tool_call_pieces(current.tool_calls)
                elif isinstance(current, answering.AnswerDone | answering.AnswerFailed):
                    stored = current.assistant_turn
                    chunks = events.close(stored)
                    error = current.error if isinstance(current, answering.AnswerFailed) else None
                    body = response_body(stored, previous=previous, error=error, request=request)
                    kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
                        body["status"], "response.failed"
                    )
                    chunks.append(events.event(kind, response=body))
                    finished = True
                for chunk in chunks:
                    if chunk:
                        yield chunk
                if finished:
                    break
    finally:
        if stop_on_leave and not finished:
            answering.stop(turn.pk)  # the client left mid-answer
