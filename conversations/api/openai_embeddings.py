"""OpenAI's `POST /v1/embeddings`, relayed to the upstream's (conversations.llm.embeddings).

The key's throttle (the chat's) and daily token quota apply: the texts must fit in what is left today, and the
tokens the upstream counted are added to the ledger. A backend without embeddings (the embedded SmolLM2 server)
is a 400 `embeddings_unsupported`; a model not in EMBEDDING_MODELS, or not allowed to the user's groups (as
chat models: teams.policy), a 404 `model_not_found`. GET /v1/models lists the ones the user may use.
"""

from __future__ import annotations

import base64
import struct

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers

from conversations import answering, errors, llm, selectors, services
from conversations.api.base import PendingResponse
from conversations.api.chat_parameters import StrictNumberField
from conversations.api.openai_compat import OpenAIApiView

MAX_INPUTS = 2048  # OpenAI's limit on texts per request


@extend_schema_field({"oneOf": [
    {"type": "string", "minLength": 1},
    {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": MAX_INPUTS},
]})
class EmbeddingInputField(serializers.Field):
    """`input`: a text or a list of texts (OpenAI's token arrays are refused: chatsite relays text)."""

    def to_internal_value(self, data):
        texts = [data] if isinstance(data, str) else data
        if not isinstance(texts, list) or not texts:
            raise serializers.ValidationError("Expected a string or a non-empty list of strings.")
        if len(texts) > MAX_INPUTS:
            raise serializers.ValidationError(f"At most {MAX_INPUTS} texts per request.")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise serializers.ValidationError(
                    f"Item {index}: expected a string (token arrays are not supported here: send the text)."
                )
            if not text:
                raise serializers.ValidationError(f"Item {index}: an empty string has no embedding.")
            if "\x00" in text or len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
                raise serializers.ValidationError(
                    f"Item {index}: a text has at most {settings.CHAT_MAX_MESSAGE_CHARS} characters and no null "
                    "characters."
                )
        return texts

    def to_representation(self, value):
        return value


class EmbeddingRequestSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=100)
    input = EmbeddingInputField()
    encoding_format = serializers.ChoiceField(choices=["float", "base64"], default="float")
    dimensions = StrictNumberField(min_value=1, max_value=8192, integer=True)
    user = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=256)


def _encoded(vector: list[float], encoding_format: str) -> list[float] | str:
    """As OpenAI sends them: floats, or base64 of little-endian float32s (the openai client's default)."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


class EmbeddingsPendingResponse(PendingResponse):
    """The upstream call, awaited on the event loop; then its tokens go to the ledger."""

    def __init__(self, *, user_id: int, data: dict):
        super().__init__(None)
        self.user_id = user_id
        self.request_data = data

    async def outcome(self) -> dict:
        data = self.request_data
        result = await llm.embeddings(data["input"], model=data["model"], dimensions=data.get("dimensions"))
        await sync_to_async(services.usage_add, thread_sensitive=True)(
            self.user_id, timezone.localdate(), prompt_tokens=result.prompt_tokens, completion_tokens=0, answers=0,
        )
        return {
            "object": "list", "model": result.model,
            "data": [{"object": "embedding", "index": index, "embedding": _encoded(vector, data["encoding_format"])}
                     for index, vector in enumerate(result.vectors)],
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        }


class EmbeddingsView(OpenAIApiView):
    chat_methods = ("POST",)

    @extend_schema(
        summary="OpenAI-compatible embeddings, relayed to the model server",
        description=__doc__,
        request=EmbeddingRequestSerializer,
        responses=inline_serializer("EmbeddingList", {
            "object": serializers.CharField(), "model": serializers.CharField(),
            "data": inline_serializer("Embedding", {
                "object": serializers.CharField(), "index": serializers.IntegerField(),
                "embedding": serializers.JSONField(help_text="Floats, or a base64 string of float32s."),
            }, many=True),
            "usage": inline_serializer("EmbeddingUsage", {
                "prompt_tokens": serializers.IntegerField(), "total_tokens": serializers.IntegerField(),
            }),
        }),
    )
    def post(self, request):
        data = self.validated(request, EmbeddingRequestSerializer)
        refused = llm.get_backend().embeddings_refused
        if refused is not None:
            raise errors.EmbeddingsUnsupported(refused)
        offered = selectors.embedding_models_offered(request.user)
        if data["model"] not in offered:
            raise errors.ModelNotFound(data["model"], message=(
                f"The embedding model '{data['model']}' is not offered here (offered: {', '.join(offered) or 'none'})."
            ))
        input_tokens = sum(llm.approximate_tokens(text) for text in data["input"])
        services.quota_admit(request.user, alive=answering.alive, input_tokens=input_tokens)
        return EmbeddingsPendingResponse(user_id=request.user.pk, data=data)
