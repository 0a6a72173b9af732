"""The admin for assistants: staff feature some for every user (they then show in everyone's sidebar and /v1/models)."""

from django.contrib import admin

from personal.models import Assistant


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "model", "shared", "featured", "updated_at")
    list_editable = ("featured",)
    list_filter = ("featured", "shared")
    search_fields = ("name", "slug", "owner__username")
    # Its owner's to change: staff only feature it (or stop featuring it).
    fields = ("owner", "slug", "name", "emoji", "instructions", "model", "starters", "tools", "shared", "groups",
              "knowledge_bases", "featured", "created_at", "updated_at")
    readonly_fields = tuple(name for name in fields if name != "featured")

    def has_add_permission(self, request) -> bool:
        return False  # users make assistants (their page, the API); staff only feature them
