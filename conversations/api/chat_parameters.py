"""OpenAI Chat Completions request parameters: validated as OpenAI does, sent to the model as given.

`ChatParametersSerializer` checks types and ranges (a string for a number, 5 for a temperature, n=0 are 400s
naming the parameter); `model_options()` returns what goes to the model server. What chatsite cannot honour
whatever the backend (several choices per request, logprobs it does not relay) is refused
here; an answer limit above the site's is capped (`capped_answer_tokens`); what only the configured backend
cannot honour is refused by `llm.Backend.refused_option`.
"""

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chatsite.api.fields import StrictBooleanField

# Sent to the model as given, when present and not null.
FORWARDED = (
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
    "frequency_penalty", "logit_bias", "user", "response_format", "tools", "tool_choice", "parallel_tool_calls",
    "reasoning_effort", "service_tier", "verbosity", "prompt_cache_key", "safety_identifier",
)
# Read by chatsite itself.
OWN = ("model", "messages", "stream", "stream_options", "metadata", "store", "n", "logprobs", "top_logprobs",
       "modalities", "chatsite")
# Known to OpenAI and refused here, with the reason.
REFUSED = {
    "audio": "Audio output is not supported.",
    "prediction": "Predicted outputs are not supported.",
    "web_search_options": "Web search is not supported.",
    "functions": "The deprecated 'functions' parameter is not supported: use 'tools'.",
    "function_call": "The deprecated 'function_call' parameter is not supported: use 'tool_choice'.",
}


@extend_schema_field({"type": "number"})
class StrictNumberField(serializers.Field):
    """A JSON number (not a string, not a boolean) within [min_value, max_value]."""

    def __init__(self, *, min_value: float | None = None, max_value: float | None = None, integer=False, **kwargs):
        self.min_value, self.max_value, self.integer = min_value, max_value, integer
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        kind = "an integer" if self.integer else "a number"
        valid_types = (int,) if self.integer else (int, float)
        if isinstance(data, bool) or not isinstance(data, valid_types):
            raise serializers.ValidationError(f"Expected {kind}, got {type(data).__name__} {data!r:.40}.")
        if data != data or data in (float("inf"), float("-inf")):
            raise serializers.ValidationError("Expected a finite number.")
        if self.min_value is not None and data < self.min_value:
            raise serializers.ValidationError(f"Expected {kind} >= {self.min_value}, got {data}.")
        if self.max_value is not None and data > self.max_value:
            raise serializers.ValidationError(f"Expected {kind} <= {self.max_value}, got {data}.")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]})
class StopField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        sequences = [data] if isinstance(data, str) else data
        if not isinstance(sequences, list) or not all(isinstance(s, str) and s for s in sequences):
            raise serializers.ValidationError("Expected a non-empty string or a list of non-empty strings.")
        if not 1 <= len(sequences) <= 4:
            raise serializers.ValidationError("Expected 1 to 4 stop sequences.")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "object", "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}})
class LogitBiasField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict) or len(data) > 300:
            raise serializers.ValidationError("Expected an object of at most 300 token ids and biases.")
        for token, bias in data.items():
            if not token.isascii() or not token.isdigit():
                raise serializers.ValidationError(f"Token ids are integers written as strings, got {token!r:.40}.")
            if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
                raise serializers.ValidationError(f"Each bias is a number from -100 to 100, got {bias!r:.40}.")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "object", "properties": {
    "type": {"type": "string", "enum": ["text", "json_object", "json_schema"]}, "json_schema": {"type": "object"},
}, "required": ["type"]})
class ResponseFormatField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict) or data.get("type") not in ("text", "json_object", "json_schema"):
            raise serializers.ValidationError(
                "Expected {\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": \"json_schema\", ...}."
            )
        if data["type"] == "json_schema":
            spec = data.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
                raise serializers.ValidationError("json_schema needs an object with a 'name' (and a 'schema').")
            if "schema" in spec and not isinstance(spec["schema"], dict):
                raise serializers.ValidationError("json_schema.schema must be a JSON Schema object.")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({})  # any JSON value of the kinds named in its description
class JsonValueField(serializers.Field):
    """Any JSON of the expected kinds (checked only for its type; the model server checks the rest)."""

    def __init__(self, *, kinds: tuple[type, ...], description: str, **kwargs):
        self.kinds, self.description = kinds, description
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) and bool not in self.kinds or not isinstance(data, self.kinds):
            raise serializers.ValidationError(f"Expected {self.description}.")
        return data

    def to_representation(self, value):
        return value


class ChatParametersSerializer(serializers.Serializer):
    """The sampling and output parameters of a Chat Completions request (the messages are checked apart)."""

    temperature = StrictNumberField(min_value=0, max_value=2)
    top_p = StrictNumberField(min_value=0, max_value=1)
    max_tokens = StrictNumberField(min_value=1, integer=True)
    max_completion_tokens = StrictNumberField(min_value=1, integer=True)
    stop = StopField()
    seed = StrictNumberField(min_value=-(2**63), max_value=2**63 - 1, integer=True)
    presence_penalty = StrictNumberField(min_value=-2, max_value=2)
    frequency_penalty = StrictNumberField(min_value=-2, max_value=2)
    logit_bias = LogitBiasField()
    n = StrictNumberField(min_value=1, max_value=128, integer=True)
    logprobs = StrictBooleanField(required=False, allow_null=True)
    top_logprobs = StrictNumberField(min_value=0, max_value=20, integer=True)
    user = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=256, trim_whitespace=False
    )
    response_format = ResponseFormatField()
    tools = JsonValueField(kinds=(list,), description="a list of tools")
    tool_choice = JsonValueField(kinds=(str, dict), description="'none', 'auto', 'required' or a tool object")
    parallel_tool_calls = StrictBooleanField(required=False, allow_null=True)
    reasoning_effort = JsonValueField(kinds=(str,), description="a string")
    service_tier = JsonValueField(kinds=(str,), description="a string")
    verbosity = JsonValueField(kinds=(str,), description="a string")
    prompt_cache_key = JsonValueField(kinds=(str,), description="a string")
    safety_identifier = JsonValueField(kinds=(str,), description="a string")
    store = StrictBooleanField(required=False, allow_null=True)
    modalities = JsonValueField(kinds=(list,), description="a list such as [\"text\"]")

    def validate(self, attrs):
        for name in self.initial_data:
            if name in REFUSED:
                raise serializers.ValidationError({name: [REFUSED[name]]})
            if name not in FORWARDED and name not in OWN:
                raise serializers.ValidationError({name: [f"Unrecognized request argument supplied: {name}"]})
        if attrs.get("n") not in (None, 1):
            raise serializers.ValidationError({"n": [
                "chatsite stores one answer per request: n must be 1 (ask again, or regenerate, for another)."
            ]})
        if attrs.get("logprobs") or attrs.get("top_logprobs") is not None:
            name = "logprobs" if attrs.get("logprobs") else "top_logprobs"
            raise serializers.ValidationError({name: ["chatsite does not relay log probabilities."]})
        if attrs.get("modalities") not in (None, ["text"]):
            raise serializers.ValidationError({"modalities": ["Only text output is supported: [\"text\"]."]})
        for name in ("max_tokens", "max_completion_tokens"):
            if attrs.get(name) is not None:
                attrs[name] = capped_answer_tokens(attrs[name])
        return attrs


def capped_answer_tokens(requested: int) -> int:
    """A client's answer limit, at most the site's (CHAT_MAX_ANSWER_TOKENS): a larger one is capped, as model
    servers cap at their context, not refused (Open WebUI asks 1000 for a title); an answer the cap cut ends with
    finish_reason "length", which is how the client learns it."""
    return min(requested, settings.CHAT_MAX_ANSWER_TOKENS)


def model_options(validated: dict) -> dict:
    """The parameters to send to the model as given: the forwarded ones that were present and not null."""
    return {name: validated[name] for name in FORWARDED if validated.get(name) is not None}
