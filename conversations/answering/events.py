"""What a running answer produces, in order: the events its followers receive, and their one wire form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypedDict

from django.urls import reverse

from conversations import errors
from conversations.messages import ToolCall, ToolCallChunk
from conversations.models import Turn
from conversations.turn_json import turn_data


@dataclass
class TurnStored:
    """First event: the stored user turn (None when regenerating) and the pending answer."""

    user_turn: Turn | None
    assistant_turn: Turn


@dataclass
class AnswerDelta:
    text: str


@dataclass
class AnswerDone:
    """Last answer event: the stored answer (complete, or cancelled with its partial text)."""

    assistant_turn: Turn


@dataclass
class AnswerFailed:
    """Last answer event on failure: the stored failed answer and the user-safe error."""

    assistant_turn: Turn
    error: errors.ChatError


@dataclass
class AnswerToolCall:
    """Pieces of the answer's tool calls, as the model streamed them (OpenAI's `delta.tool_calls`)."""

    tool_calls: list[ToolCallChunk]


@dataclass
class ToolStep:
    """A server tool ran (the tool loop): the call, stored with the answer's step before it, and its result."""

    call: ToolCall
    result: str
    is_error: bool
    seconds: float
    assistant_turn_id: int  # the stored step that called it (an assistant turn with tool_calls)
    tool_turn_id: int  # the stored result (a tool turn)


@dataclass
class ToolApproval:
    """The answer waits for its owner to allow or refuse a server tool call (approvals.py)."""

    call: ToolCall
    turn_id: int  # the pending answer: the approval endpoint's path names it
    conversation_id: str
    timeout_seconds: int


@dataclass
class TitleSet:
    title: str


ChatEvent = (
    TurnStored | AnswerDelta | AnswerToolCall | ToolApproval | ToolStep | AnswerDone | AnswerFailed | TitleSet
)


# What each event's data is, as the REST API and the page receive it (conversations.api.streaming describes
# them for clients). A turn is turn_json's form.


class TurnStoredData(TypedDict):
    user_turn: dict[str, Any] | None
    assistant_turn: dict[str, Any]


class DeltaData(TypedDict):
    text: str


class ToolCallData(TypedDict):
    tool_calls: list[ToolCallChunk]


class ToolResultData(TypedDict):
    tool_call: ToolCall
    result: str
    is_error: bool
    seconds: float
    assistant_turn_id: int
    tool_turn_id: int


class ToolApprovalData(TypedDict):
    tool_call: ToolCall
    assistant_turn_id: int
    timeout_seconds: int
    approval_url: str


class DoneData(TypedDict):
    assistant_turn: dict[str, Any]


class ErrorDetail(TypedDict):
    code: str
    message: str


class ErrorData(TypedDict):
    error: ErrorDetail
    assistant_turn: dict[str, Any]


class TitleData(TypedDict):
    title: str


EventData = (
    TurnStoredData | DeltaData | ToolCallData | ToolResultData | ToolApprovalData | DoneData | ErrorData | TitleData
)


def event_frame(event: ChatEvent) -> tuple[str, EventData]:
    """An event as the REST API and the page receive it: (SSE event name, JSON data)."""
    if isinstance(event, AnswerDelta):
        return "delta", {"text": event.text}
    if isinstance(event, TurnStored):
        user_turn = turn_data(event.user_turn) if event.user_turn is not None else None
        return "turn", {"user_turn": user_turn, "assistant_turn": turn_data(event.assistant_turn)}
    if isinstance(event, AnswerToolCall):
        return "tool_call", {"tool_calls": event.tool_calls}
    if isinstance(event, ToolStep):
        return "tool_result", {
            "tool_call": event.call, "result": event.result, "is_error": event.is_error,
            "seconds": round(event.seconds, 3), "assistant_turn_id": event.assistant_turn_id,
            "tool_turn_id": event.tool_turn_id,
        }
    if isinstance(event, ToolApproval):
        return "tool_approval", {
            "tool_call": event.call, "assistant_turn_id": event.turn_id, "timeout_seconds": event.timeout_seconds,
            "approval_url": reverse("api:tool-call-approval", args=[event.conversation_id, event.turn_id,
                                                                    event.call["id"]]),
        }
    if isinstance(event, AnswerDone):
        return "done", {"assistant_turn": turn_data(event.assistant_turn)}
    if isinstance(event, AnswerFailed):
        error: ErrorDetail = {"code": event.error.code, "message": event.error.message}
        return "error", {"error": error, "assistant_turn": turn_data(event.assistant_turn)}
    if isinstance(event, TitleSet):
        return "title", {"title": event.title}
    raise TypeError(f"not a chat event: {event!r}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One event of an answer's log, numbered from 1, with its server-sent-event frame encoded once: every
    follower on this worker and the Redis stream for the others send these same bytes."""

    seq: int
    event: ChatEvent | None  # None when read from Redis (another worker made it)
    name: str
    frame: bytes

    @classmethod
    def of(cls, seq: int, event: ChatEvent) -> Entry:
        name, data = event_frame(event)
        return cls(seq, event, name, sse_frame(name, json.dumps(data, ensure_ascii=False), seq))

    @property
    def data(self) -> Any:
        """The event's JSON data, decoded again from the frame (tests and rare readers; never the hot path)."""
        return json.loads(self.frame.split(b"\ndata: ", 1)[1])


def sse_frame(event: str | None, data_json: str, seq: int | None = None) -> bytes:
    """One server-sent event: `id:` when numbered, `event:` when named (OpenAI's chunks are unnamed), `data:`."""
    head = f"id: {seq}\n" if seq is not None else ""
    if event is not None:
        head += f"event: {event}\n"
    return f"{head}data: {data_json}\n\n".encode()


def merge_tool_call_deltas(calls: list[ToolCall], deltas: list[ToolCallChunk]) -> None:
    """Add streamed tool-call pieces to the whole calls (by `index`: id and type once, name and arguments in
    pieces), as OpenAI's clients assemble them. Pieces that are not JSON objects are skipped (the upstream's JSON
    is not validated before this)."""
    for delta in deltas:
        if not isinstance(delta, dict):
            continue
        index = delta.get("index", len(calls))
        if not isinstance(index, int) or not 0 <= index < 128:
            continue
        while len(calls) <= index:
            calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        call = calls[index]
        if delta.get("id"):
            call["id"] = delta["id"]
        if delta.get("type"):
            call["type"] = delta["type"]
        function = delta.get("function")
        if isinstance(function, dict):
            if isinstance(function.get("name"), str):
                call["function"]["name"] += function["name"]
            if isinstance(function.get("arguments"), str):
                call["function"]["arguments"] += function["arguments"]
