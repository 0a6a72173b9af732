"""URL map: pages, accounts, the REST API, the OpenAI-compatible API, admin and health."""

from django.contrib import admin
from django.urls import include, path

from accounts import views as accounts_views
from chatsite import views
from conversations import admin_views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    # Before admin.site.urls, whose catch-all would take it; admin_view: staff login and CSRF as in the admin.
    path("admin/usage/", admin.site.admin_view(admin_views.usage_view), name="admin_usage"),
    path("admin/attachments/<uuid:attachment_id>/", admin.site.admin_view(admin_views.attachment_file_view),
         name="admin_attachment"),
    path("admin/r/<int:content_type_id>/<path:object_id>/", admin.site.admin_view(admin_views.view_on_site),
         name="admin_view_on_site"),
    path("admin/login/", accounts_views.admin_login),  # with SSO_ONLY: the site's log-in, through the provider
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),  # single sign-on: /oidc/authenticate/, /oidc/callback/
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("personal.api.urls")),
    path("api/v1/", include("knowledge.api.urls")),
    path("api/", include("conversations.api.urls")),
    path("v1/", include("conversations.api.openai_urls")),
    path("personal/", include("personal.urls")),
    path("knowledge/", include("knowledge.urls")),
    path("account/", include("teams.urls")),
    path("", include("conversations.urls")),
]

handler400 = "chatsite.views.bad_request"
handler403 = "chatsite.views.permission_denied"
handler404 = "chatsite.views.page_not_found"
handler500 = "chatsite.views.server_error"
