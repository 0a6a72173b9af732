"""HTML pages (the chat UI issue fills these out)."""

from django.urls import path

from conversations import views

app_name = "conversations"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/<uuid:conversation_id>/", views.conversation_detail, name="detail"),
]
