from django.urls import path

from personal import views

app_name = "personal"
urlpatterns = [
    path("", views.personal_settings, name="settings"),
    path("memories/", views.memory_add, name="memory_add"),
    path("memories/<int:memory_id>/", views.memory_edit, name="memory_edit"),
    path("memories/<int:memory_id>/delete/", views.memory_delete, name="memory_delete"),
    path("prompts/", views.prompt_add, name="prompt_add"),
    path("prompts/<int:prompt_id>/", views.prompt_edit, name="prompt_edit"),
    path("prompts/<int:prompt_id>/delete/", views.prompt_delete, name="prompt_delete"),
]
