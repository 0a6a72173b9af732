"""REST API routes under /api/: v1 resources, the prototype's /api/chat, the schema and its docs."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api as accounts_api
from conversations.api import projects, schema, views  # noqa: F401 (schema registers the API-key auth scheme)

app_name = "api"

urlpatterns = [
    path("v1/conversations/", views.ConversationListView.as_view(), name="conversation-list"),
    path("v1/conversations/<uuid:conversation_id>/", views.ConversationDetailView.as_view(),
         name="conversation-detail"),
    path("v1/conversations/<uuid:conversation_id>/turns/", views.TurnListCreateView.as_view(),
         name="conversation-turns"),
    path("v1/conversations/<uuid:conversation_id>/regenerate/", views.RegenerateView.as_view(),
         name="conversation-regenerate"),
    path("v1/conversations/<uuid:conversation_id>/continue/", views.ContinueView.as_view(),
         name="conversation-continue"),
    path("v1/conversations/<uuid:conversation_id>/turns/<int:turn_id>/edit/", views.EditView.as_view(),
         name="turn-edit"),
    path("v1/conversations/<uuid:conversation_id>/turns/<int:turn_id>/tool-calls/<str:call_id>/approval/",
         views.ToolApprovalView.as_view(), name="tool-call-approval"),
    path("v1/conversations/<uuid:conversation_id>/switch/", views.SwitchView.as_view(), name="conversation-switch"),
    path("v1/conversations/<uuid:conversation_id>/tree/", views.TreeView.as_view(), name="conversation-tree"),
    path("v1/conversations/<uuid:conversation_id>/stream/", views.AnswerStreamView.as_view(),
         name="conversation-stream"),
    path("v1/conversations/<uuid:conversation_id>/stop/", views.StopView.as_view(), name="conversation-stop"),
    path("v1/conversations/<uuid:conversation_id>/export/", views.ExportView.as_view(), name="conversation-export"),
    path("v1/turns/<int:turn_id>/feedback/", views.FeedbackView.as_view(), name="turn-feedback"),
    path("v1/projects/", projects.ProjectListView.as_view(), name="project-list"),
    path("v1/projects/<int:project_id>/", projects.ProjectDetailView.as_view(), name="project-detail"),
    path("v1/mcp-servers/", views.McpServerListView.as_view(), name="mcp-server-list"),
    path("v1/usage/", views.UsageView.as_view(), name="usage"),
    path("v1/attachments/", views.AttachmentUploadView.as_view(), name="attachment-list"),
    path("v1/attachments/<uuid:attachment_id>/", views.AttachmentDetailView.as_view(), name="attachment-detail"),
    path("v1/attachments/<uuid:attachment_id>/content/", views.AttachmentContentView.as_view(),
         name="attachment-content"),
    path("v1/keys/", accounts_api.ApiKeyListView.as_view(), name="key-list"),
    path("v1/keys/<int:key_id>/", accounts_api.ApiKeyDetailView.as_view(), name="key-detail"),
    path("chat", views.ApiChatView.as_view(), name="chat"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The vendored Swagger UI starts with an inline script and inline styles.
    path("docs/", csp_update({"script-src": [UNSAFE_INLINE], "style-src": [UNSAFE_INLINE]})(
        SpectacularSwaggerView.as_view(url_name="api:schema")), name="docs"),
]
