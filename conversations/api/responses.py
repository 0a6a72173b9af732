"""OpenAI's Responses API on stored conversations: `POST /v1/responses`, `GET /v1/responses/{id}`.

A response is an answer turn: its id is `resp_<turn id>` (looked up through the owner, so someone else's id is
a 404). `input` (a string, or message items with text, image and file parts) is stored like a Chat Completions
request: without `previous_response_id` a new conversation (or, when the items resend a history this key
started, that conversation); with it, the new input follows that response in its conversation, as a new branch
if the chat has moved on since. `instructions` are the conversation's system prompt. Streaming sends OpenAI's
semantic events (`response.created` ... `response.completed`). What chatsite cannot honour (tools, reasoning,
structured `text.format`, `store: false`) is a 400 naming the parameter.
"""

from __future__ import annotations

from contextlib import aclosing

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from chatsite.api.fields import StrictBooleanField, TextField
from conversations import answering, services
from conversations.api.chat_parameters import StrictNumberField
from conversations.api.message_lists import (
    OpenAIMessageSerializer,
    validate_message_list,
)
from conversations.api.openai_compat import (
    CONVERSATION_HEADER,
    FIRST_OUTPUT_WAIT_SECONDS,
    OpenAIApiView,
    new_attachment_ids,
    nothing_left_if_refused,
    require_offered_model,
    turn_target,
)
from conversations.api.streaming import event_stream_response, sse
from conversations.models import Turn

# Known to OpenAI's Responses API and refused here, with the reason.
REFUSED = {
    "tools": "Tools are not supported on /v1/responses: use /v1/chat/completions, which supports them.",
    "tool_choice": "Tools are not supported on /v1/responses: use /v1/chat/completions.",
    "reasoning": "Reasoning settings are not supported.",
    "background": "Background responses are not supported: chatsite answers in the request (or its stream).",
    "conversation": "OpenAI conversation objects are not supported: use previous_response_id.",
    "prompt": "Prompt templates are not supported.",
    "top_logprobs": "chatsite does not relay log probabilities.",
}
ACCEPTED = {
    "model", "input", "instructions", "stream", "previous_response_id", "store", "max_output_tokens", "temperature",
    "top_p", "metadata", "user", "parallel_tool_calls", "truncation", "text", "include", "service_tier",
    "stream_options", "safety_identifier", "prompt_cache_key",
}
PART_TYPES = {"input_text": "text", "output_text": "text", "text": "text", "input_image": "image_url",
              "input_file": "file"}


class InputField(serializers.Field):
    """`input`: a string (one user message) or a list of message items, in Chat Completions' shape after
    renaming the Responses API's part types (input_text, input_image with image_url, input_file with file_data)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            return [{"role": "user", "content": data}]
        if not isinstance(data, list) or not data:
            raise serializers.ValidationError("Expected a string or a non-empty list of message items.")
        messages = []
        for index, item in enumerate(data):
            if not isinstance(item, dict) or item.get("type", "message") != "message":
                kind = item.get("type") if isinstance(item, dict) else type(item).__name__
                raise serializers.ValidationError(f"Item {index}: only message items are supported (got {kind}).")
            content = item.get("content")
            if isinstance(content, list):
                content = [_part(part, index) for part in content]
            messages.append({"role": item.get("role"), "content": content})
        return messages

    def to_representation(self, value):
        return value


def _part(part, index: int) -> dict:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in PART_TYPES:
        raise serializers.ValidationError(f"Item {index}: unsupported content part {kind!r}.")
    if PART_TYPES[kind] == "text":
        return {"type": "text", "text": part.get("text")}
    if kind == "input_image":
        return {"type": "image_url", "image_url": {"url": part.get("image_url")}}
    return {"type": "file", "file": {"file_data": part.get("file_data"), "filename": part.get("filename"),
                                     "file_id": part.get("file_id")}}


class ResponseRequestSerializer(serializers.Serializer):
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

    def validate(self, attrs):
        for name in self.initial_data:
            if name in REFUSED:
                raise serializers.ValidationError({name: [REFUSED[name]]})
            if name not in ACCEPTED:
                raise serializers.ValidationError({name: [f"Unrecognized request argument supplied: {name}"]})
        if attrs.get("store") is False:
            raise serializers.ValidationError({"store": [
                "chatsite stores every chat in your history: store cannot be false (omit it, or send true)."
            ]})
        text_format = (attrs.get("text") or {}).get("format") or {"type": "text"}
        if not isinstance(text_format, dict) or text_format.get("type", "text") != "text":
            raise serializers.ValidationError({"text": [
                "Only text output is supported here: use /v1/chat/completions with response_format for JSON."
            ]})
        limit = settings.CHAT_MAX_ANSWER_TOKENS
        if attrs.get("max_output_tokens") is not None and attrs["max_output_tokens"] > limit:
            raise serializers.ValidationError({"max_output_tokens": [
                f"At most {limit} on this server (CHAT_MAX_ANSWER_TOKENS), got {attrs['max_output_tokens']}."
            ]})
        if attrs.get("include"):
            raise serializers.ValidationError({"include": ["No extra output can be included."]})
        messages = [
            OpenAIMessageSerializer(data=message, context=self.context) for message in attrs["input"]
        ]
        errors_by_item = {}
        for index, message in enumerate(messages):
            if not message.is_valid():
                errors_by_item[index] = message.errors
        if errors_by_item:
            # Keyed by index, as DRF keys a list's own errors (the stubs allow only names).
            raise serializers.ValidationError({"input": errors_by_item})  # type: ignore[dict-item]
        try:
            attrs["messages"] = validate_message_list([message.validated_data for message in messages])
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"input": exc.detail}) from None
        return attrs


def response_id(turn: Turn) -> str:
    return f"resp_{turn.pk}"


def _turn_id(value: str) -> int | None:
    number = value.removeprefix("resp_")
    return int(number) if value.startswith("resp_") and number.isascii() and number.isdigit() else None


def own_response(request, value: str) -> Turn:
    """The caller's answer turn `resp_<id>` or 404 (someone else's is 'not found')."""
    turn_id = _turn_id(value or "")
    turn = (
        Turn.objects.select_related("conversation", "parent__parent")
        .filter(pk=turn_id, role=Turn.Role.ASSISTANT, conversation__owner=request.user).first()
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
                  metadata: dict | None = None) -> dict:
    """A stored answer as OpenAI's `response` object."""
    statuses: dict[str, str] = {
        Turn.Status.COMPLETE: "incomplete" if turn.finish_reason == "length" else "completed",
        Turn.Status.FAILED: "failed", Turn.Status.CANCELLED: "cancelled",
    }
    status = status or statuses.get(turn.status, "in_progress")
    done = status != "in_progress"
    return {
        "id": response_id(turn), "object": "response", "created_at": int(turn.created_at.timestamp()),
        "status": status, "model": turn.model,
        "error": {
            "code": getattr(error, "code", "server_error"), "message": turn.error or getattr(error, "message", ""),
        } if status == "failed" else None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": turn.conversation.system_prompt or None, "previous_response_id": previous,
        "output": [_message_item(turn, done=done)] if done else [],
        "parallel_tool_calls": False, "tool_choice": "auto", "tools": [], "temperature": None, "top_p": None,
        "max_output_tokens": None, "reasoning": {"effort": None, "summary": None}, "store": True,
        "text": {"format": {"type": "text"}}, "truncation": "auto", "metadata": metadata or {}, "user": None,
        "usage": _usage(turn) if done else None,
    }


def _message_item(turn: Turn, *, done: bool) -> dict:
    complete = turn.status == Turn.Status.COMPLETE and turn.finish_reason != "length"
    return {
        "type": "message", "id": f"msg_{turn.pk}",
        "status": ("completed" if complete else "incomplete") if done else "in_progress",
        "role": "assistant",
        "content": [{"type": "output_text", "text": turn.content, "annotations": [], "logprobs": []}] if done else [],
    }


def _usage(turn: Turn) -> dict:
    return {
        "input_tokens": turn.prompt_tokens, "output_tokens": turn.completion_tokens,
        "total_tokens": turn.prompt_tokens + turn.completion_tokens,
        "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0},
    }


def _options(data: dict) -> dict:
    forwarded = ("temperature", "top_p", "user", "service_tier", "safety_identifier", "prompt_cache_key")
    options = {name: data[name] for name in forwarded if data.get(name) is not None}
    if data.get("max_output_tokens") is not None:
        options["max_completion_tokens"] = data["max_output_tokens"]
    return options


class ResponsesView(OpenAIApiView):
    chat_methods = ("POST",)

    @extend_schema(
        summary="OpenAI-compatible Responses API (stream or not), on stored conversations",
        description=__doc__,
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="A `response` object."),
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="`response.*` events."),
        },
    )
    def post(self, request):
        data = self.validated(request, ResponseRequestSerializer)
        require_offered_model(data["model"])
        messages = data["messages"]
        if data.get("instructions"):
            messages = [{"role": "system", "content": data["instructions"]}, *messages]
        previous = data.get("previous_response_id")
        earlier = None
        if previous:
            if len(data["messages"]) > 1:
                raise exceptions.ValidationError({"input": [
                    "With previous_response_id, send only the new user message: the conversation has the rest."
                ]})
            earlier = own_response(request, previous)
            if data.get("instructions") is not None and data["instructions"] != earlier.conversation.system_prompt:
                services.conversation_update(conversation=earlier.conversation, system_prompt=data["instructions"])
        target = turn_target(
            request, messages, data["model"], conversation=earlier.conversation if earlier else None,
            after_turn_id=earlier.pk if earlier else None,
        )
        if target.inputs[0]["role"] != Turn.Role.USER:
            raise exceptions.ValidationError({"input": ["The input must end with a user message."]})
        headers = {CONVERSATION_HEADER: str(target.conversation.pk)}
        with nothing_left_if_refused(target):
            answer = answering.begin(
                conversation=target.conversation, user=request.user, content=target.inputs[0]["content"],
                options=_options(data), after_turn_id=target.after_turn_id,
                attachment_ids=new_attachment_ids(request, target),
            )
            if data["stream"]:
                failed = answer.failure_before_output(FIRST_OUTPUT_WAIT_SECONDS)
                if failed is not None:  # nothing sent yet: the status says it (429 and 5xx are retried)
                    raise failed.error
                return event_stream_response(response_events(answer, previous=previous), headers=headers)
            answer.log.finished.wait()
        outcome = answer.outcome()
        if isinstance(outcome, answering.AnswerFailed) and not outcome.assistant_turn.content:
            raise outcome.error
        return Response(
            response_body(answer.assistant_turn, previous=previous, metadata=data.get("metadata")), headers=headers
        )


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


async def response_events(answer: answering.Answer, *, previous: str | None):
    """The answer as the Responses API's semantic events. A client that leaves stops the answer, as OpenAI does."""
    sequence = -1  # the first event is number 0, as OpenAI's
    turn = answer.assistant_turn
    item_id = f"msg_{turn.pk}"
    text = []

    def event(kind: str, **fields) -> bytes:
        nonlocal sequence
        sequence += 1
        return sse(kind, {"type": kind, "sequence_number": sequence, **fields})

    started = response_body(turn, previous=previous, status="in_progress")
    try:
        yield event("response.created", response=started)
        yield event("response.in_progress", response=started)
        yield event("response.output_item.added", output_index=0, item=_message_item(turn, done=False))
        yield event("response.content_part.added", item_id=item_id, output_index=0, content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
        async with aclosing(answer.follow()) as entries:
            async for entry in entries:
                current = entry.event
                if isinstance(current, answering.AnswerDelta):
                    text.append(current.text)
                    yield event("response.output_text.delta", item_id=item_id, output_index=0, content_index=0,
                                delta=current.text, logprobs=[])
                elif isinstance(current, answering.AnswerDone | answering.AnswerFailed):
                    stored = current.assistant_turn
                    yield event("response.output_text.done", item_id=item_id, output_index=0, content_index=0,
                                text=stored.content, logprobs=[])
                    yield event("response.content_part.done", item_id=item_id, output_index=0, content_index=0,
                                part={"type": "output_text", "text": stored.content, "annotations": [],
                                      "logprobs": []})
                    yield event("response.output_item.done", output_index=0, item=_message_item(stored, done=True))
                    error = current.error if isinstance(current, answering.AnswerFailed) else None
                    body = response_body(stored, previous=previous, error=error)
                    kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
                        body["status"], "response.failed"
                    )
                    yield event(kind, response=body)
                    break
    finally:
        if answer.outcome() is None:
            answering.stop(answer.turn_id)  # the client left mid-answer
