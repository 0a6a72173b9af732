"""Admin for users and API keys. A key is shown by its prefix only: neither the key nor its hash appears."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import API_KEY_PREFIX, ApiKey, User

admin.site.register(User, UserAdmin)


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", _("Active")), ("revoked", _("Revoked")), ("expired", _("Expired"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.active()
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(Q(revoked_at__isnull=True) & Q(expires_at__lte=now))
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "key_prefix", "user", "created_at", "last_used_at", "expires_at", "revoked_at", "state"]
    list_filter = [ApiKeyStateFilter, ("last_used_at", admin.DateFieldListFilter)]
    search_fields = ["name", "prefix", "user__username", "user__email"]
    list_select_related = ["user"]
    ordering = ["-created_at"]
    # An explicit field list: key_hash never reaches a form, a page or an export of this admin.
    fields = ("name", "key_prefix", "user", "created_at", "last_used_at", "expires_at", "revoked_at", "state")
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False  # keys are made by their owner (profile, API, create_api_key) and shown once

    def has_change_permission(self, request, obj=None):
        return False  # a key is only ever revoked (the action below), never edited

    def has_revoke_permission(self, request):
        return request.user.has_perm("accounts.change_apikey")

    @admin.display(description=_("key"), ordering="prefix")
    def key_prefix(self, key):
        return f"{API_KEY_PREFIX}{key.prefix}_…"

    @admin.display(description=_("state"))
    def state(self, key):
        if key.revoked_at is not None:
            return _("revoked")
        return _("active") if key.is_active else _("expired")

    @admin.action(description=_("Revoke selected API keys"), permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request, ngettext("%(count)d API key revoked.", "%(count)d API keys revoked.", revoked) % {"count": revoked}
        )
