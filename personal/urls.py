from django.urls import path

from personal import views

app_name = "personal"
urlpatterns = [
    path("", views.personal_settings, name="settings"),
    path("memories/", views.memory_add, name="memory_add"),
    path("memories/<int:memory_id>/", views.MemoryEditView.as_view(), name="memory_edit"),
    path("memories/<int:memory_id>/delete/", views.MemoryDeleteView.as_view(), name="memory_delete"),
    path("prompts/", views.prompt_add, name="prompt_add"),
    path("prompts/<int:prompt_id>/", views.PromptEditView.as_view(), name="prompt_edit"),
    path("prompts/<int:prompt_id>/delete/", views.PromptDeleteView.as_view(), name="prompt_delete"),
    path("assistants/", views.assistant_add, name="assistant_add"),
    path("assistants/<int:assistant_id>/", views.AssistantEditView.as_view(), name="assistant_edit"),
    path("assistants/<int:assistant_id>/delete/", views.AssistantDeleteView.as_view(), name="assistant_delete"),
]
