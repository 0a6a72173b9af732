"""What a running answer produces, in order: the events its followers receive."""

from __future__ import annotations

from dataclasses import dataclass

from conversations import errors
from conversations.messages import ToolCall, ToolCallChunk
from conversations.models import Turn


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
class TitleSet:
    title: str


ChatEvent = TurnStored | AnswerDelta | AnswerToolCall | AnswerDone | AnswerFailed | TitleSet


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
