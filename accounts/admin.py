"""Admin for users (approving sign-ups that wait), invite links and API keys. A key is shown by its prefix only:
neither the key nor its hash appears."""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import API_KEY_PREFIX, ApiKey, Invite, OidcIdentity, User


class OidcIdentityInline(admin.TabularInline):
    model = OidcIdentity
    fields = readonly_fields = ("issuer", "subject", "created_at", "last_login_at")
    extra = 0
    can_delete = True  # unlinking lets the next sign-in link again (by verified e-mail) or make a new account

    def has_add_permission(self, request, obj=None):
        return False  # made by a sign-in only


@admin.register(User)
class ChatsiteUserAdmin(UserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "approval_pending")
    list_filter = ("approval_pending", "is_staff", "is_superuser", "is_active", "groups")
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        (_("Sign-up"), {"fields": ("approval_pending", "signup_invite")}),
    )
    readonly_fields = ("signup_invite",)
    inlines = [OidcIdentityInline]
    actions = ["approve_selected"]

    @admin.action(description=_("Approve selected accounts waiting for approval"), permissions=["change"])
    def approve_selected(self, request, queryset):
        approved = queryset.filter(approval_pending=True).update(approval_pending=False, is_active=True)
        self.message_user(
            request, ngettext("%(count)d account approved.", "%(count)d accounts approved.", approved)
            % {"count": approved}
        )


class InviteAdminForm(forms.ModelForm):
    class Meta:
        model = Invite
        fields = ("note", "max_uses", "expires_at")

    def clean_max_uses(self):
        # The database's constraint holds this too, but Django does not check it here: `uses` is not in the form.
        max_uses = self.cleaned_data["max_uses"]
        if max_uses is not None and max_uses < self.instance.uses:
            raise ValidationError(_("An invite cannot allow fewer uses than it has already had (%(uses)d).")
                                  % {"uses": self.instance.uses})
        return max_uses


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    form = InviteAdminForm
    list_display = ["__str__", "link", "uses", "max_uses", "expires_at", "created_by", "created_at", "usable"]
    fields = ("note", "max_uses", "expires_at", "link", "uses", "created_by", "created_at")
    readonly_fields = ("link", "uses", "created_by", "created_at")
    list_select_related = ["created_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def get_queryset(self, request):
        # The link is absolute (it is copied into e-mails and chats): the request knows the site's address.
        base = request.build_absolute_uri(reverse("signup")) + "?invite="
        return super().get_queryset(request).annotate(absolute_link=Concat(Value(base), F("token")))

    @admin.display(description=_("link"))
    def link(self, invite):
        url = getattr(invite, "absolute_link", None)
        if url is None:
            return _("Shown once saved.")
        return format_html('<a href="{}" class="invite-link">{}</a>', url, url)

    @admin.display(description=_("usable"), boolean=True)
    def usable(self, invite):
        return invite.is_usable


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
        # One save per key (not one UPDATE): each revocation reaches the audit log's receivers (teams.audit).
        now, revoked = timezone.now(), 0
        for key in queryset.filter(revoked_at__isnull=True):
            key.revoked_at = now
            key.save(update_fields=["revoked_at"])
            revoked += 1
        self.message_user(
            request, ngettext("%(count)d API key revoked.", "%(count)d API keys revoked.", revoked) % {"count": revoked}
        )
