"""HTML pages: the chat, the history list fragment, the MCP servers' list, earlier turns, one rendered turn, the
page's own writes and share links (the owner's list, and the public read-only page)."""

from django.urls import path

from conversations import event_stream, frames, project_pages, views

app_name = "conversations"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/history/", views.history, name="history"),
    path("c/events/", event_stream.user_events, name="events"),
    path("c/start/", views.conversation_start, name="start"),
    path("c/mcp-servers/", views.mcp_servers, name="mcp-servers"),
    path("c/<uuid:conversation_id>/", views.conversation_detail, name="detail"),
    path("c/<uuid:conversation_id>/turns/", views.turn_list, name="turns"),
    path("c/<uuid:conversation_id>/turns/<int:turn_id>/", views.turn_detail, name="turn"),
    path("c/<uuid:conversation_id>/turns/<int:turn_id>/feedback/", views.turn_feedback, name="turn-feedback"),
    path("c/<uuid:conversation_id>/share/", views.share_create, name="share-create"),
    path("c/<uuid:conversation_id>/share/current/", views.share_current, name="share-current"),
    path("c/<uuid:conversation_id>/organize/", views.conversation_organize, name="organize"),
    path("folders/", views.folder_create, name="folder-create"),
    path("folders/<int:folder_id>/delete/", views.folder_delete, name="folder-delete"),
    path("projects/<int:project_id>/", project_pages.project_detail, name="project"),
    path("projects/<int:project_id>/documents/", project_pages.project_document_upload, name="project-upload"),
    path("projects/<int:project_id>/documents/<int:document_id>/delete/", project_pages.project_document_delete,
         name="project-document-delete"),
    path("shares/", views.share_list, name="shares"),
    path("shares/<int:link_id>/revoke/", views.share_revoke, name="share-revoke"),
    path("s/<str:token>/", views.share_page, name="share"),
    path("s/<str:token>/files/<uuid:attachment_id>/", views.share_file, name="share-file"),
    path("account/export/", views.account_export, name="account-export"),
    path("account/delete/", views.account_delete, name="account-delete"),
    path("frames/diagram/", frames.diagram_frame, name="diagram-frame"),
    path("frames/preview/", frames.preview_frame, name="preview-frame"),
]
