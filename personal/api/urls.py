from django.urls import path

from personal.api import views

urlpatterns = [
    path("personalization/", views.PersonalizationView.as_view(), name="api_personalization"),
    path("memories/", views.MemoryListView.as_view(), name="api_memory_list"),
    path("memories/<int:memory_id>/", views.MemoryDetailView.as_view(), name="api_memory_detail"),
    path("prompts/", views.PromptListView.as_view(), name="api_prompt_list"),
    path("prompts/<int:prompt_id>/", views.PromptDetailView.as_view(), name="api_prompt_detail"),
    path("assistants/", views.AssistantListView.as_view(), name="api_assistant_list"),
    path("assistants/<int:assistant_id>/", views.AssistantDetailView.as_view(), name="api_assistant_detail"),
    path("assistants/available/", views.AvailableAssistantListView.as_view(), name="api_assistant_available"),
    path("assistants/use/<slug:slug>/", views.UsableAssistantView.as_view(), name="api_assistant_usable"),
    path("assistants/use/<slug:slug>/conversations/", views.AssistantChatView.as_view(), name="api_assistant_chat"),
]
