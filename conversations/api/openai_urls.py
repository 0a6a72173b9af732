"""OpenAI-compatible routes under /v1/ (point the official client's base_url here)."""

from django.urls import path, re_path

from conversations.api import openai_compat, openai_conversations, openai_embeddings, responses

app_name = "openai"

urlpatterns = [
    path("chat/completions", openai_compat.ChatCompletionsView.as_view(), name="chat-completions"),
    path("models", openai_compat.ModelsView.as_view(), name="models"),
    # Model names may hold slashes ("org/model" on many OpenAI-compatible servers), never a ".." segment.
    re_path(r"^models/(?P<model_id>(?!.*(?:^|/)\.\.(?:/|$))[^\s]+)$", openai_compat.ModelDetailView.as_view(),
            name="model-detail"),
    path("responses", responses.ResponsesView.as_view(), name="responses"),
    path("responses/<str:response_id>", responses.ResponseDetailView.as_view(), name="response-detail"),
    path("responses/<str:response_id>/cancel", responses.ResponseCancelView.as_view(), name="response-cancel"),
    path("conversations", openai_conversations.ConversationsView.as_view(), name="conversations"),
    path("conversations/<str:conversation_id>", openai_conversations.ConversationDetailView.as_view(),
         name="conversation-detail"),
    path("conversations/<str:conversation_id>/items", openai_conversations.ConversationItemsView.as_view(),
         name="conversation-items"),
    path("conversations/<str:conversation_id>/items/<str:item_id>",
         openai_conversations.ConversationItemView.as_view(), name="conversation-item"),
    path("embeddings", openai_embeddings.EmbeddingsView.as_view(), name="embeddings"),
    re_path(r"^.*$", openai_compat.UnknownPathView.as_view(), name="unknown"),
]
