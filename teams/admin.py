"""Admin: groups with their policy inline and their members; per-user budget overrides; the audit log (read only)."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from teams.models import AuditEvent, GroupPolicy, UserPolicy


class GroupPolicyForm(forms.ModelForm):
    allowed_models = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One model name per line; empty: every model the site offers."),
    )

    class Meta:
        model = GroupPolicy
        fields = ["allowed_models", "daily_token_budget", "share_links", "file_uploads", "temporary_chats",
                  "api_keys", "server_tools", "web_search", "mcp_tools"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["allowed_models"] = "\n".join(self.instance.allowed_models)

    def clean_allowed_models(self) -> list[str]:
        names = [line.strip() for line in self.cleaned_data["allowed_models"].splitlines()]
        return sorted({name for name in names if name})


class GroupPolicyInline(admin.StackedInline):
    model = GroupPolicy
    form = GroupPolicyForm
    can_delete = False
    verbose_name_plural = _("policy")


class MembersField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, user):
        return user.get_username()


class GroupWithMembersForm(forms.ModelForm):
    """Django's group form, with the group's members (a reverse many-to-many) to pick here too."""

    members = MembersField(
        queryset=get_user_model().objects.order_by("username"), required=False,
        widget=admin.widgets.FilteredSelectMultiple(_("members"), is_stacked=False),
    )

    class Meta:
        model = Group
        fields = ["name", "permissions", "members"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["members"] = list(self.instance.user_set.values_list("pk", flat=True))


class TeamGroupAdmin(GroupAdmin):
    form = GroupWithMembersForm
    inlines = [GroupPolicyInline]
    list_display = ["name", "member_count"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(members=Count("user", distinct=True))

    @admin.display(description=_("members"), ordering="members")
    def member_count(self, group) -> int:
        return group.members

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        form.instance.user_set.set(form.cleaned_data["members"])


admin.site.unregister(Group)
admin.site.register(Group, TeamGroupAdmin)


@admin.register(UserPolicy)
class UserPolicyAdmin(admin.ModelAdmin):
    list_display = ["user", "daily_token_budget"]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["user"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "target", "detail"]
    list_filter = ["action", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["target", "detail", "actor__username", "target_user__username"]
    list_select_related = ["actor"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # an audit log that its readers could edit would prove nothing
