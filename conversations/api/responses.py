"""OpenAI's Responses API on stored conversations: `POST /v1/responses`, `GET /v1/responses/{id}`.

A response is an answer turn: its id is `resp_<turn id>` (looked up through the owner, so someone else's id is
a 404). `input` (a string, or items: messages with text, image and file parts, `function_call` and
`function_call_output` items, `item_reference`s to this server's own output items) is stored like a Chat
Completions request: without `previous_response_id` a new conversation (or, when the items resend a history
this key started, that conversation); with it, the new input (a user message, or the results of that
response's function calls) follows that response in its conversation, as a new branch if the chat has moved on
since. `instructions` are the conversation's system prompt. Function `tools`, `tool_choice` and `text.format`
(JSON) go to the model in their Chat Completions shapes; its function calls come back as `function_call` output
items. `store: false` keeps the chat out of the history list, as a temporary chat. Streaming sends OpenAI's
semantic events (`response.created` ... `response.completed`). What chatsite cannot honour (hosted tools,
reasoning summaries, background) is a 400 naming the parameter. `reasoning.effort` goes to the model as
`reasoning_effort`.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from chatsite.api.fields import StrictBooleanField, TextField
from conversations import answering, services
from conversations.api import idempotency, response_items
from conversations.api.base import AnswerPendingResponse
from conversations.api.chat_parameters import JsonValueField, StrictNumberField, capped_answer_tokens
from conversations.api.message_lists import (
    OpenAIMessageSerializer,
    validate_message_list,
)
from conversations.api.openai_compat import (
    CONVERSATION_HEADER,
    OpenAIApiView,
    new_attachment_ids,
    nothing_left_if_refused,
    require_offered_model,
    temporary_target,
    turn_target,
)
from conversations.api.streaming import event_stream_response, sse
from conversations.messages import ToolCall
from conversations.models import Turn

# Known to OpenAI's Responses API and refused here (unless null), with the reason.
REFUSED = {
    "background": "Background responses are not supported: chatsite answers in the request (or its stream).",
    "conversation": "OpenAI conversation objects are not supported: use previous_response_id.",
    "prompt": "Prompt templates are not supported.",
    "top_logprobs": "chatsite does not relay log probabilities.",
    "max_tool_calls": "A limit on built-in tool calls has no meaning here: chatsite runs no hosted tools.",
}
ACCEPTED = {
    "model", "input", "instructions", "stream", "previous_response_id", "store", "max_output_tokens", "temperature",
    "top_p", "metadata", "user", "parallel_tool_calls", "truncation", "text", "include", "service_tier",
    "stream_options", "safety_identifier", "prompt_cache_key", "tools", "tool_choice", "reasoning",
}
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]})
class InputField(serializers.Field):
    """`input`: a string (one user message) or a list of items (response_items.check_items)."""

    def to_internal_value(self, data):
        return response_items.check_items(data)

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
    previous_response_id = serializers.CharField(required=False, allow_null=True, max_length=40)
    store = StrictBooleanField(required=False, allow_null=True)
    max_output_tokens = StrictNumberField(min_value=16, integer=True)  # OpenAI's own minimum
    temperature = StrictNumberField(min_value=0, max_value=2)
    top_p = StrictNumberField(min_value=0, max_value=1)
    metadata = serializers.DictField(child=serializers.CharField(max_length=512, allow_blank=True), required=False,
                                     allow_null=True)
    user = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=256)
    text = serializers.DictField(required=False, allow_null=True)
    truncation = serializers.ChoiceField(choices=["auto", "disabled"], required=False, allow_null=True)
    include = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    tools = JsonValueField(kinds=(list,), description="a list of tools")
    tool_choice = JsonValueField(kinds=(str, dict), description="'none', 'auto', 'required' or a function tool")
    parallel_tool_calls = StrictBooleanField(required=False, allow_null=True)
    reasoning = serializers.DictField(required=False, allow_null=True)

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
        if attrs.get("max_output_tokens") is not None:  # echoed capped: the limit the answer had
            attrs["max_output_tokens"] = capped_answer_tokens(attrs["max_output_tokens"])
        attrs["options"] = self._options(attrs)
        try:
            items = response_items.resolve_references(attrs["input"], user=self.context["request"].user)
            messages = response_items.chat_messages(items)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"input": exc.detail}) from None
        checked = [OpenAIMessageSerializer(data=message, context=self.context) for message in messages]
        errors_by_item = {index: message.errors for index, message in enumerate(checked) if not message.is_valid()}
        if errors_by_item:
            # Keyed by index, as DRF keys a list's own errors (the stubs allow only names).
            raise serializers.ValidationError({"input": errors_by_item})  # type: ignore[dict-item]
        attrs["messages"] = [message.validated_data for message in checked]
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
    done = status != "in_progress"
    request = request or {}
    tools = request.get("tools") or []
    choice = request.get("tool_choice") or "auto"
    return {
        "id": response_id(turn), "object": "response", "created_at": int(turn.created_at.timestamp()),
        "status": status, "model": turn.model,
        "error": {
            "code": getattr(error, "code", "server_error"), "message": turn.error or getattr(error, "message", ""),
        } if status == "failed" else None,
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


def _check_input_after(earlier: Turn, messages: list, *, store: bool | None) -> None:
    """With previous_response_id, the input is the new user message, or the results of every function call of
    that response; `store: false` cannot go on in a stored chat."""
    if any(message["role"] not in ("user", "tool") for message in messages) or (
        messages[-1]["role"] == "user" and len(messages) > 1
    ):
        raise exceptions.ValidationError({"input": [
            "With previous_response_id, send only the new user message (or the function_call_output items of "
            "that response's calls): the conversation has the rest."
        ]})
    earlier_answer = {"role": "assistant", "content": earlier.content, "tool_calls": earlier.tool_calls}
    _message_list([earlier_answer, *messages] if earlier.tool_calls else messages)
    if store is False and earlier.conversation.delete_after is None:
        raise exceptions.ValidationError({"store": [
            "This response is in a stored conversation: store: false cannot continue it (omit "
            "previous_response_id and send the items to start a temporary one)."
        ]})


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
        require_offered_model(data["model"])
        attempt = idempotency.attempt_of(request, request.data)
        earlier = idempotency.earlier_answer(request, attempt)
        if earlier is not None:
            return replayed_response(request, earlier, data)
        with idempotency.claimed(attempt):
            return self._answer(request, data, attempt)

    def _answer(self, request, data: dict, attempt: idempotency.Attempt) -> Response:
        messages = data["messages"]
        previous = data.get("previous_response_id")
        earlier = own_response(request, previous) if previous else None
        if earlier is not None:
            _check_input_after(earlier, messages, store=data.get("store"))
            if data.get("instructions") is not None and data["instructions"] != earlier.conversation.system_prompt:
                services.conversation_update(conversation=earlier.conversation, system_prompt=data["instructions"])
        else:
            _message_list(messages)
        if data.get("instructions"):
            messages = [{"role": "system", "content": data["instructions"]}, *messages]
        target = turn_target(
            request, messages, data["model"], conversation=earlier.conversation if earlier else None,
            after_turn_id=earlier.pk if earlier else None,
        )
        if data.get("store") is False:
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
            turn["attachment_ids"] = new_attachment_ids(request, target)
            answer = answering.begin(**turn)
        idempotency.record(attempt, answer.turn_id)

        def respond(ready: answering.Answer) -> dict | HttpResponseBase:
            # An answer that failed before writing anything is an HTTP error (429 and 5xx are retried); one cut
            # short keeps its text and says so in the response.
            failed = ready.failed_before_output()
            if failed is not None:
                raise failed.error
            if data["stream"]:
                return event_stream_response(response_events(ready, previous=previous, request=data), headers=headers)
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


class ResponseDetailView(OpenAIApiView):
    @extend_schema(summary="A stored response", responses=OpenApiResponse(OpenApiTypes.OBJECT))
    def get(self, request, response_id: str):
        turn = own_response(request, response_id)
        if turn.is_running:
            answering.fail_if_abandoned(turn)
        return Response(
            response_body(turn, previous=previous_response_of(turn)),
            headers={CONVERSATION_HEADER: str(turn.conversation_id)},
        )


@dataclass
class OpenedCall:
    """A function call being streamed: its place in the output, and the call as streamed so far."""

    output_index: int
    call: ToolCall


class _ResponseEvents:
    """Numbers the Responses API's events (from 0, as OpenAI) and keeps the output items as they open: the
    answer's text (opened at its first delta) and each function call (opened at its first piece)."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.sequence = -1
        self.message_index: int | None = None
        self.calls: dict[int, OpenedCall] = {}  # by the model's index for the call
        self.opened = 0

    def event(self, kind: str, **fields) -> bytes:
        self.sequence += 1
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


async def response_events(answer: answering.Answer, *, previous: str | None, request: dict):
    """The answer as the Responses API's semantic events. A client that leaves stops the answer, as OpenAI does."""
    turn = answer.assistant_turn
    events = _ResponseEvents(turn)
    started = response_body(turn, previous=previous, status="in_progress", request=request)
    try:
        yield events.event("response.created", response=started)
        yield events.event("response.in_progress", response=started)
        async with aclosing(answer.follow()) as entries:
            async for entry in entries:
                current = entry.event
                if isinstance(current, answering.AnswerDelta):
                    for chunk in events.text_delta(current.text):
                        yield chunk
                elif isinstance(current, answering.AnswerToolCall):
                    for chunk in events.tool_call_pieces(current.tool_calls):
                        yield chunk
                elif isinstance(current, answering.AnswerDone | answering.AnswerFailed):
                    stored = current.assistant_turn
                    for chunk in events.close(stored):
                        yield chunk
                    error = current.error if isinstance(current, answering.AnswerFailed) else None
                    body = response_body(stored, previous=previous, error=error, request=request)
                    kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
                        body["status"], "response.failed"
                    )
                    yield events.event(kind, response=body)
                    break
    finally:
        if answer.outcome() is None:
            answering.stop(answer.turn_id)  # the client left mid-answer
