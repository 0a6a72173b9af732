"""OpenAI-compatible routes under /v1/ (point the official client's base_url here)."""

from django.urls import path

from conversations.api import openai_compat

app_name = "openai"

urlpatterns = [
    path("chat/completions", openai_compat.ChatCompletionsView.as_view(), name="chat-completions"),
    path("models", openai_compat.ModelsView.as_view(), name="models"),
]
