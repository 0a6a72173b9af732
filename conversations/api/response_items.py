"""The Responses API's items and tools, read into Chat Completions' shapes, and an answer's output items.

Input items become the message list /v1/chat/completions takes: message items as messages, a run of
`function_call` items as one assistant message's `tool_calls` (joined to the assistant message just before
them, as the model answered both at once), `function_call_output` items as tool messages, and an
`item_reference` as the stored item it names. The ids chatsite issues for its output items name their turn:
`msg_<turn id>` for an answer's text and `fc_<turn id>_<n>` for its n-th tool call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from rest_framework import exceptions, serializers

from conversations.api.message_lists import OpenAIMessageSerializer
from conversations.messages import ToolCall
from conversations.models import Turn

PART_TYPES = {"input_text": "text", "output_text": "text", "text": "text", "input_image": "image_url",
              "input_file": "file"}
ITEM_ID = re.compile(r"^(?:msg_(?P<message>\d+)|fc_(?P<call>\d+)_(?P<index>\d+))$")
# `include` values OpenAI knows. Those naming items chatsite never produces (searches, code runs, computer
# calls, reasoning) are accepted: there is nothing to include. Log probabilities are refused: not relayed.
INCLUDABLE = {
    "code_interpreter_call.outputs", "computer_call_output.output.image_url", "file_search_call.results",
    "message.input_image.image_url", "reasoning.encrypted_content", "web_search_call.action.sources",
    "web_search_call.results",
}
NOT_INCLUDABLE = {"message.output_text.logprobs": "chatsite does not relay log probabilities."}


class OutputText(TypedDict):
    type: Literal["output_text"]
    text: str
    annotations: list
    logprobs: list


class MessageItem(TypedDict):
    """An answer's text as an output item (`msg_<turn id>`)."""

    type: Literal["message"]
    id: str
    status: str  # in_progress, completed, incomplete
    role: Literal["assistant"]
    content: list[OutputText]


class FunctionCallItem(TypedDict):
    """One tool call of an answer as an output item (`fc_<turn id>_<n>`); `call_id` is the model's id for it."""

    type: Literal["function_call"]
    id: str
    call_id: str
    name: str
    arguments: str  # JSON, as the model wrote it
    status: str  # in_progress, completed, incomplete


def _kind(item: dict) -> str:
    return item.get("type") or "message"


def check_items(data: Any) -> list[dict]:
    """`input` as a list of item objects (a string is one user message); the items' own fields are read later."""
    if isinstance(data, str):
        return [{"type": "message", "role": "user", "content": data}]
    if not isinstance(data, list) or not data:
        raise serializers.ValidationError("Expected a string or a non-empty list of items.")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise serializers.ValidationError(f"Item {index}: expected an object, got {type(item).__name__}.")
        kind = _kind(item)
        if kind not in ("message", "function_call", "function_call_output", "item_reference"):
            raise serializers.ValidationError(
                f"Item {index}: {kind} items are not supported (message, function_call, function_call_output "
                "and item_reference are)."
            )
        if kind == "item_reference" and not isinstance(item.get("id"), str):
            raise serializers.ValidationError(f"Item {index}: an item_reference needs the item's id.")
    return data


def resolve_references(items: list[dict], *, user) -> list[dict]:
    """`items` with each `item_reference` replaced by the output item it names, read from the caller's own
    answers in one query; an id chatsite did not issue to this user is a 404."""
    wanted: dict[int, str] = {}
    for item in items:
        if _kind(item) == "item_reference":
            match = ITEM_ID.match(item["id"])
            if match is None:
                raise exceptions.NotFound(f"No item with id '{item['id']}'.")
            wanted[int(match["message"] or match["call"])] = item["id"]
    if not wanted:
        return items
    turns = {turn.pk: turn for turn in Turn.objects.for_user(user).filter(pk__in=wanted, role=Turn.Role.ASSISTANT)}
    resolved: list[Any] = []  # the client's items, and chatsite's own
    for item in items:
        if _kind(item) != "item_reference":
            resolved.append(item)
            continue
        match = ITEM_ID.match(item["id"])
        assert match is not None  # checked above
        turn = turns.get(int(match["message"] or match["call"]))
        calls = (turn.tool_calls or []) if turn is not None else []
        if turn is not None and match["message"]:
            resolved.append(message_item(turn, done=True))
        elif turn is not None and int(match["index"]) < len(calls):
            resolved.append(function_call_item(turn, int(match["index"]), calls[int(match["index"])]))
        else:
            raise exceptions.NotFound(f"No item with id '{item['id']}'.")
    return resolved


def checked_messages(items: list[dict], *, context: Mapping[str, Any]) -> list[dict]:
    """The items (references resolved for the request's user) as Chat Completions messages, each checked as
    /v1/chat/completions checks one; a ValidationError keyed by the index of each invalid item."""
    messages = chat_messages(resolve_references(items, user=context["request"].user))
    checked = [OpenAIMessageSerializer(data=message, context=context) for message in messages]
    errors_by_item = {index: message.errors for index, message in enumerate(checked) if not message.is_valid()}
    if errors_by_item:
        # Keyed by index, as DRF keys a list's own errors (the stubs allow only names).
        raise serializers.ValidationError(errors_by_item)  # type: ignore[arg-type]
    return [message.validated_data for message in checked]


def chat_messages(items: list[dict]) -> list[dict]:
    """The items (references resolved) as Chat Completions messages, for OpenAIMessageSerializer."""
    messages: list[dict] = []
    for index, item in enumerate(items):
        kind = _kind(item)
        if kind == "message":
            content = item.get("content")
            if isinstance(content, list):
                content = [_part(part, index) for part in content]
            messages.append({"role": item.get("role"), "content": content})
        elif kind == "function_call":
            call = _tool_call(item, index)
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        else:  # function_call_output
            if not isinstance(item.get("call_id"), str) or not item["call_id"]:
                raise serializers.ValidationError(f"Item {index}: a function_call_output names its call_id.")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": _output(item, index)})
    return messages


def _part(part: Any, index: int) -> dict:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in PART_TYPES:
        raise serializers.ValidationError(f"Item {index}: unsupported content part {kind!r}.")
    if PART_TYPES[kind] == "text":
        return {"type": "text", "text": part.get("text")}
    if kind == "input_image":
        return {"type": "image_url", "image_url": {"url": part.get("image_url")}}
    return {"type": "file", "file": {"file_data": part.get("file_data"), "filename": part.get("filename"),
                                     "file_id": part.get("file_id")}}


def _tool_call(item: dict, index: int) -> dict:
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    if not all(isinstance(value, str) for value in (call_id, name, arguments)) or not call_id or not name:
        raise serializers.ValidationError(
            f"Item {index}: a function_call has a call_id, a name and its arguments (a JSON string)."
        )
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _output(item: dict, index: int) -> str:
    """A function_call_output's `output`: a string, or text parts (joined)."""
    output = item.get("output")
    if isinstance(output, str):
        return output
    text_parts = ("input_text", "output_text")
    if isinstance(output, list) and all(
        isinstance(part, dict) and part.get("type") in text_parts and isinstance(part.get("text"), str)
        for part in output
    ):
        return "".join(part["text"] for part in output)
    raise serializers.ValidationError(f"Item {index}: a function_call_output's output is a string or text parts.")


def chat_tools(tools: Any) -> list[dict]:
    """Function tools in Chat Completions' shape; any other kind of tool is refused."""
    if not isinstance(tools, list):
        raise serializers.ValidationError("Expected a list of tools.")
    converted = []
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise serializers.ValidationError(
                f"Tool {index}: only function tools are supported here (got {kind!r}): chatsite runs no hosted "
                "tools for /v1 clients."
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise serializers.ValidationError(f"Tool {index}: a function tool needs a name.")
        function = {"name": tool["name"]}
        for field in ("description", "parameters", "strict"):
            if tool.get(field) is not None:
                function[field] = tool[field]
        converted.append({"type": "function", "function": function})
    return converted


def chat_tool_choice(choice: Any) -> str | dict:
    if choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise serializers.ValidationError(
        "Expected 'none', 'auto', 'required' or {\"type\": \"function\", \"name\": ...}: only function tools are "
        "supported here."
    )


def chat_response_format(text_format: Any) -> dict | None:
    """`text.format` as Chat Completions' `response_format` (None for plain text)."""
    kind = text_format.get("type") if isinstance(text_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(text_format.get("name"), str) or not isinstance(text_format.get("schema"), dict):
            raise serializers.ValidationError("A json_schema format has a name and a schema (a JSON Schema object).")
        spec = {field: text_format[field] for field in ("name", "schema", "strict", "description")
                if text_format.get(field) is not None}
        return {"type": "json_schema", "json_schema": spec}
    raise serializers.ValidationError(
        "Expected {\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": \"json_schema\", \"name\", "
        "\"schema\"}."
    )


def check_include(values: list[str]) -> None:
    for value in values:
        if value in NOT_INCLUDABLE:
            raise serializers.ValidationError(f"{value}: {NOT_INCLUDABLE[value]}")
        if value not in INCLUDABLE:
            raise serializers.ValidationError(
                f"Unknown value {value!r}: expected one of {', '.join(sorted(INCLUDABLE | set(NOT_INCLUDABLE)))}."
            )


def message_item(turn: Turn, *, done: bool) -> MessageItem:
    complete = turn.status == Turn.Status.COMPLETE and turn.finish_reason != "length"
    return {
        "type": "message", "id": f"msg_{turn.pk}",
        "status": ("completed" if complete else "incomplete") if done else "in_progress",
        "role": "assistant",
        "content": [{"type": "output_text", "text": turn.content, "annotations": [], "logprobs": []}] if done else [],
    }


def function_call_item(turn: Turn, index: int, call: ToolCall, *, status: str = "completed") -> FunctionCallItem:
    return {
        "type": "function_call", "id": f"fc_{turn.pk}_{index}", "call_id": call["id"],
        "name": call["function"]["name"], "arguments": call["function"]["arguments"], "status": status,
    }


def output_items(turn: Turn) -> list[MessageItem | FunctionCallItem]:
    """A finished answer's output: its text (unless it only called tools), then each tool call."""
    calls = turn.tool_calls or []
    items: list[MessageItem | FunctionCallItem] = [message_item(turn, done=True)] if turn.content or not calls else []
    return items + [function_call_item(turn, index, call) for index, call in enumerate(calls)]
