from django.urls import path

from personal.api import views

urlpatterns = [
    path("personalization/", views.PersonalizationView.as_view(), name="api_personalization"),
    path("memories/", views.MemoryListView.as_view(), name="api_memory_list"),
    path("memories/<int:memory_id>/", views.MemoryDetailView.as_view(), name="api_memory_detail"),
    path("prompts/", views.PromptListView.as_view(), name="api_prompt_list"),
    path("prompts/<int:prompt_id>/", views.PromptDetailView.as_view(), name="api_prompt_detail"),
]
