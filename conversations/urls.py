"""HTML pages: the chat, the history list fragment, earlier turns and one rendered turn."""

from django.urls import path

from conversations import views

app_name = "conversations"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/history/", views.history, name="history"),
    path("c/start/", views.conversation_start, name="start"),
    path("c/<uuid:conversation_id>/", views.conversation_detail, name="detail"),
    path("c/<uuid:conversation_id>/turns/", views.turn_list, name="turns"),
    path("c/<uuid:conversation_id>/turns/<int:turn_id>/", views.turn_detail, name="turn"),
    path("c/<uuid:conversation_id>/turns/<int:turn_id>/feedback/", views.turn_feedback, name="turn-feedback"),
]
