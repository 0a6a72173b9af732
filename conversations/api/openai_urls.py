"""OpenAI-compatible routes under /v1/ (point the official client's base_url here)."""

from django.urls import path

from conversations.api import openai_compat
from conversations.api.streaming import streaming_endpoint

app_name = "openai"

urlpatterns = [
    path("chat/completions", streaming_endpoint(openai_compat.ChatCompletionsView, openai_compat.stream_completion),
         name="chat-completions"),
    path("models", openai_compat.ModelsView.as_view(), name="models"),
]
