"""OpenAPI additions: the API-key security scheme, the one error shape on every operation, and the data of each
server-sent event of the answer streams."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "invalid"},
                "message": {"type": "string"},
                "fields": {"type": "object", "description": "Validation errors by field name."},
                "type": {"type": "string", "description": "OpenAI-compatible endpoints only."},
                "param": {"nullable": True, "description": "OpenAI-compatible endpoints only."},
            },
        }
    },
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required}


TOOL_CALL_DELTAS = {"type": "array", "items": {"type": "object"}, "description": "OpenAI's `delta.tool_calls` pieces."}
# The data of each event of the REST API's answer stream (`event: <name>`, `id: <n>`, `data: <JSON>`).
ANSWER_EVENTS = {
    "turn": _object({"user_turn": {**_ref("Turn"), "nullable": True}, "assistant_turn": _ref("Turn")},
                    ["user_turn", "assistant_turn"]),
    "delta": _object({"text": {"type": "string"}}, ["text"]),
    "tool_call": _object({"tool_calls": TOOL_CALL_DELTAS}, ["tool_calls"]),
    "tool_approval": _object({
        "tool_call": {"type": "object", "description": "The call: id, type, function {name, arguments}."},
        "assistant_turn_id": {"type": "integer"}, "timeout_seconds": {"type": "integer"},
        "approval_url": {"type": "string", "description": "POST {\"allow\": true|false} here."},
    }, ["tool_call", "assistant_turn_id", "timeout_seconds", "approval_url"]),
    "tool_result": _object({
        "tool_call": {"type": "object"}, "result": {"type": "string"}, "is_error": {"type": "boolean"},
        "seconds": {"type": "number"}, "assistant_turn_id": {"type": "integer"}, "tool_turn_id": {"type": "integer"},
    }, ["tool_call", "result", "is_error", "seconds", "assistant_turn_id", "tool_turn_id"]),
    "done": _object({"assistant_turn": _ref("Turn")}, ["assistant_turn"]),
    "error": _object({"error": _object({"code": {"type": "string"}, "message": {"type": "string"}},
                                       ["code", "message"]), "assistant_turn": _ref("Turn")},
                     ["error", "assistant_turn"]),
    "title": _object({"title": {"type": "string"}}, ["title"]),
}
CHAT_COMPLETION_CHUNK = _object({
    "id": {"type": "string"}, "object": {"type": "string", "enum": ["chat.completion.chunk"]},
    "created": {"type": "integer"}, "model": {"type": "string"},
    "choices": {"type": "array", "items": _object({
        "index": {"type": "integer"},
        "delta": {"type": "object", "properties": {
            "role": {"type": "string"}, "content": {"type": "string", "nullable": True}, "tool_calls": TOOL_CALL_DELTAS,
        }},
        "finish_reason": {"type": "string", "nullable": True,
                          "enum": ["stop", "length", "tool_calls", "content_filter", None]},
    }, ["index", "delta", "finish_reason"])},
    "usage": _object({"prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"},
                      "total_tokens": {"type": "integer"}}, ["prompt_tokens", "completion_tokens", "total_tokens"]),
}, ["id", "object", "created", "model", "choices"])


def answer_stream_schema() -> dict:
    """The REST answer stream: server-sent events, each named, numbered and JSON (`x-sse-events`: each one's data)."""
    return {
        "type": "string", "format": "event-stream",
        "description": "Server-sent events: `turn`, then `delta` (and `tool_call`) events, then `done` or `error`, "
                       "maybe `title`. Each has an `id:` (resume with Last-Event-ID at the stream endpoint).",
        "x-sse-events": {name: _ref(f"AnswerEvent{name.title().replace('_', '')}") for name in ANSWER_EVENTS},
    }


def completion_stream_schema() -> dict:
    return {
        "type": "string", "format": "event-stream",
        "description": "`data: <chat.completion.chunk>` lines (a usage chunk with `choices: []` last when "
                       "`stream_options.include_usage`), then `data: [DONE]`; a failure mid-answer is "
                       "`data: {\"error\": {...}}` then `[DONE]`.",
        "x-sse-events": {"message": _ref("ChatCompletionChunk")},
    }


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        definition = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")  # noqa: S106
        definition["description"] = "A personal API key (cs_...), created on your profile page or at /api/v1/keys/."
        return definition


def add_error_responses(result, generator, request, public):
    """Every operation may answer an error in the one shape (400, 401, 404, 409, 413, 429, 5xx)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["ChatCompletionChunk"] = CHAT_COMPLETION_CHUNK
    for name, schema in ANSWER_EVENTS.items():
        schemas[f"AnswerEvent{name.title().replace('_', '')}"] = schema
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("default", {
                "description": "An error, in the one error shape. 429 answers carry Retry-After.",
                "content": {"application/json": {"schema": reference}},
            })
    return result
