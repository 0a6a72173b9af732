"""The admin's view of knowledge bases and, for reviewers, the passages each answer was given (read-only)."""

from django.contrib import admin

from knowledge.models import Citation, Document, EmbeddingsOutage, KnowledgeBase
from knowledge.retrieval import cited_numbers


class DocumentInline(admin.TabularInline):
    model = Document
    fields = ("name", "content_type", "size", "status", "pages_done", "pages_total", "passage_count", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["name", "owner__username"]
    fields = ("name", "owner", "description", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [DocumentInline]

    def has_add_permission(self, request):
        return False


@admin.register(Citation)
class CitationAdmin(admin.ModelAdmin):
    """Which passages an answer was given, and whether its text cites each ([n])."""

    list_display = ["turn", "number", "document_name", "page", "cited"]
    list_select_related = ["turn"]
    search_fields = ["document_name", "text"]
    fields = ("turn", "number", "document_name", "page", "passage", "text", "cited")
    readonly_fields = fields

    @admin.display(boolean=True)
    def cited(self, citation):
        return citation.number in cited_numbers(citation.turn.content)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EmbeddingsOutage)
class EmbeddingsOutageAdmin(admin.ModelAdmin):
    """The embeddings model's current outage, if any. Deleting it lets the next housekeeping run try again at once."""

    list_display = ["model", "failures", "failed_at", "retry_after", "error"]
    fields = ("model", "failures", "failed_at", "retry_after", "error")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
