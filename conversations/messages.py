"""Chat messages where they cross a boundary: a request's message list, a message as a turn stores it, what the
model is sent, and the tool calls inside them (OpenAI's Chat Completions shapes)."""

from typing import Any, Literal, NotRequired, TypedDict


class ToolCallFunction(TypedDict):
    name: str
    arguments: str  # JSON, as the model wrote it


class ToolCall(TypedDict):
    """One whole tool call of an answer (OpenAI's `message.tool_calls[]`)."""

    id: str
    type: str  # "function"
    function: ToolCallFunction


# A piece of the tool calls as an upstream streams them (OpenAI's `delta.tool_calls[]`: `index`, then `id`, `type`
# and pieces of `function.name` and `function.arguments`): the upstream's JSON, unvalidated.
ToolCallChunk = dict[str, Any]


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImageURL(TypedDict):
    url: str  # a data: URL: chatsite never sends the model a link


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = TextPart | ImagePart


class ModelMessage(TypedDict):
    """A message sent to the model (conversations.llm): the system prompt, the history, the new input."""

    role: str
    content: str | list[ContentPart] | None  # parts: text and images; None: an answer that only called tools
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]  # a tool's result: the call it answers


class StoredMessage(TypedDict):
    """A message as a turn stores it (role as Turn.Role) and as its history digest covers it
    (conversations.digests)."""

    role: str
    content: str
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]
    attachments: NotRequired[list[str]]  # the SHA-256 of each file sent with it
    files: NotRequired[list[tuple[str, bytes]]]  # (name, bytes) of files a request sent inline, not stored yet


class RequestMessage(TypedDict):
    """A message of a request's list (/api/chat, /v1/chat/completions) as its serializer validated it."""

    role: str  # OpenAI's roles: system, developer, user, assistant, tool
    content: str
    files: NotRequired[list[tuple[str, bytes]]]
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]


class ToolResult(TypedDict):
    """The result of one tool call, sent back for the model's next answer."""

    tool_call_id: str
    content: str


def message_text(message: ModelMessage) -> str:
    """A message's text: its content, or the text of its parts (images left out)."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part["text"] for part in content if part["type"] == "text")
    return content or ""
