"""The review panel: staff and view-only reviewers read every chat; each opened conversation is logged.

Chats are written only through the chat service, so the panel never adds or edits conversations, turns or
feedback, whoever asks. Superusers may delete (data requests) and export; "Reviewers" (group from migration
0002) hold only the view permissions. Every change page a staff member opens stores one ReviewLog row.
"""

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import BadRequest, PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise, cached_property
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator, smart_split, unescape_string_literal
from django.utils.translation import gettext_lazy as _

from conversations import exports
from conversations.models import Conversation, Feedback, ReviewLog, ShareLink, Turn
from conversations.reviews import review_record, review_record_many, staff_may_read_chats
from conversations.search import conversation_text_matches, turn_text_matches
from knowledge.retrieval import citations_by_turn, cited_numbers

admin.site.site_header = _("chatsite administration")
admin.site.site_title = _("chatsite admin")
admin.site.index_title = _("Review panel")
# The review lists are wide (nine columns beside their filters): the app list lives on the index page and in the
# breadcrumbs, not in a sidebar that takes 300 px of a 1280 px screen.
admin.site.enable_nav_sidebar = False


DATE_PARTS = {"__year": (1, 9999), "__month": (1, 12), "__day": (1, 31)}


def _refuse_unusable_filters(request) -> None:
    """List filters the database cannot take are a 400, not a 500: a NUL (PostgreSQL refuses it in text) or a
    date drill-down outside the calendar (the year 99999999 overflows)."""
    for name, values in request.GET.lists():
        for value in values:
            if "\x00" in value:
                raise BadRequest("A filter cannot contain a null character.")
            for suffix, (low, high) in DATE_PARTS.items():
                if name.endswith(suffix) and not (value.isascii() and value.isdigit() and low <= int(value) <= high):
                    raise BadRequest("That date is outside the calendar.")


if TYPE_CHECKING:  # what the mixins below are mixed into: their super() calls reach ModelAdmin
    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object


class ReadOnlyAdminMixin(_ModelAdminBase):
    """No add and no change for anyone: the chat service is the only writer of chats.

    Also turns a POSTed action the user may not run into a 403 (Django's default is a silent "no action").
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        _refuse_unusable_filters(request)
        posted_action = request.POST.get("action") if request.method == "POST" else None
        if posted_action is not None and posted_action not in self.get_actions(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)


# A search's count stops here: counting every match of a common word walks every row of the site.
SEARCH_COUNT_CAP = 1000


class CappedCountPaginator(Paginator):
    """Counts at most SEARCH_COUNT_CAP rows of a queryset (the pages then end there)."""

    def __init__(self, queryset: QuerySet, *args, **kwargs):
        super().__init__(queryset, *args, **kwargs)
        self.queryset = queryset

    @cached_property
    def count(self) -> int:
        # Only the ids, in no order: the list's annotations (token sums, feedback) are for the page's rows.
        return self.queryset.order_by().values("pk")[:SEARCH_COUNT_CAP].count()


class IndexedSearchMixin(_ModelAdminBase):
    """A changelist whose search runs twice at most, each time bounded: its count (capped at SEARCH_COUNT_CAP) and
    its page. No count of every row beside it (show_full_result_count), and no date drill-down on a search (its
    bounds and its days would run it twice more)."""

    show_full_result_count = False

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        if request.GET.get(SEARCH_VAR):
            return CappedCountPaginator(queryset, per_page, orphans, allow_empty_first_page)
        return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        if changelist.query:
            changelist.date_hierarchy = None
        return changelist


def _turn_link(turn_or_id, label):
    url = reverse("admin:conversations_turn_change", args=[getattr(turn_or_id, "pk", turn_or_id)])
    return format_html('<a href="{}">{}</a>', url, label)


def _conversation_link(conversation):
    url = reverse("admin:conversations_conversation_change", args=[conversation.pk])
    return format_html('<a href="{}">{}</a>', url, conversation)


def _content_block(text):
    # format_html escapes the text: turn content is always shown as text, never as HTML. Line breaks are
    # kept by the stylesheet (white-space: pre-wrap).
    return format_html('<div class="review-turn-content">{}</div>', text)


def _rating_label(rating):
    # Words, not emoji: the admin must read the same on machines without an emoji font.
    return _("good (+1)") if rating > 0 else _("bad (−1)")


def _feedback_block(turn):
    feedback = getattr(turn, "feedback", None)  # the reverse one-to-one raises when there is none
    if feedback is None:
        return "–"
    rating = _rating_label(feedback.rating)
    if not feedback.comment:
        return rating
    return format_html("{} {}", rating, _content_block(feedback.comment))


class ReadOnlyInline(admin.TabularInline):
    """Rows shown beside a chat for review: nothing added, changed or deleted from the admin."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LastActivityFilter(admin.DateFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = _("last activity")


class YesNoFilter(admin.SimpleListFilter):
    """A yes/no list filter on one condition (a Q or an Exists): "yes" keeps the rows that meet it, "no" the rest."""

    yes_label: str | Promise = ""
    no_label: str | Promise = ""

    def condition(self):
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return [("yes", self.yes_label), ("no", self.no_label)]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self.condition())
        if self.value() == "no":
            return queryset.filter(~self.condition())
        return queryset


class HasFailedAnswerFilter(YesNoFilter):
    title = _("failed answers")
    parameter_name = "failed"
    yes_label, no_label = _("Has a failed answer"), _("No failed answer")

    def condition(self):
        return Q(has_failed_answer=True)


class HasNegativeFeedbackFilter(YesNoFilter):
    title = _("negative feedback")
    parameter_name = "negative"
    yes_label, no_label = _("Has negative feedback"), _("No negative feedback")

    def condition(self):
        return Q(feedback_down__gt=0)  # stored on the chat (models.review_totals)


class SharedFilter(YesNoFilter):
    title = _("shared")
    parameter_name = "shared"
    yes_label, no_label = _("Shared by link"), _("Never shared")

    def condition(self):
        return Exists(ShareLink.objects.filter(conversation=OuterRef("pk")))


class ShareLinkInline(ReadOnlyInline):
    """The chat's share links: when, as whom, until when, with files or not, and whether revoked (the token is not
    shown)."""

    model = ShareLink
    fields = ("created_at", "display_name", "shared_messages", "include_files", "expires_at", "revoked_at", "live")
    readonly_fields = fields
    verbose_name = _("share link")

    @admin.display(description=_("messages"))
    def shared_messages(self, link):
        return len(link.messages)

    @admin.display(description=_("opens"), boolean=True)
    def live(self, link):
        return link.is_live


# Turns on one page of a conversation's change page: a 5,000-turn chat is read a page at a time.
ADMIN_TURN_PAGE_SIZE = 100


def _turn_page_number(request, turn_count: int) -> int:
    """The `turns_page` asked for, within the conversation's pages (anything else is the first page)."""
    raw = request.GET.get("turns_page", "")
    pages = max(1, -(-turn_count // ADMIN_TURN_PAGE_SIZE))
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= pages:
        return int(raw)
    return 1


class TurnPageFormSet(BaseInlineFormSet):
    """One page of the conversation's turns. The change page never saves turns (no change permission), so the
    forms only display them, and a slice of the queryset is all they need."""

    page_number = 1

    def get_queryset(self):
        if not hasattr(self, "_turn_page"):
            start = (self.page_number - 1) * ADMIN_TURN_PAGE_SIZE
            self._turn_page = super().get_queryset()[start : start + ADMIN_TURN_PAGE_SIZE]
        return self._turn_page


class TurnInline(ReadOnlyInline):
    """The conversation's turns, every version of every branch, read-only, in the order written, a page at a time
    (`turns_page`, ADMIN_TURN_PAGE_SIZE each; the change page links the pages).

    `follows` names each turn's parent, so a reviewer can tell versions (same parent) and branches apart.
    """

    model = Turn
    formset = TurnPageFormSet
    show_change_link = True
    ordering = ["id"]
    fields = (
        "id", "follows", "position", "role", "content_text", "status", "tokens", "latency", "error", "feedback_display",
    )
    readonly_fields = fields

    @admin.display(description="follows")
    def follows(self, turn):
        return f"#{turn.parent_id}" if turn.parent_id else "-"
    classes = ["review-turns"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("feedback").prefetch_related("attachments")

    def get_formset(self, request, obj=None, **kwargs):
        page_number = _turn_page_number(request, obj.turn_count if obj is not None else 0)
        return type("TurnPage", (super().get_formset(request, obj, **kwargs),), {"page_number": page_number})

    @admin.display(description=_("content"))
    def content_text(self, turn):
        files = format_html_join(
            "", '<li><a href="{}">{}</a> ({}, {} bytes)</li>',
            ((reverse("admin_attachment", args=[a.pk]), a.name, a.content_type, a.size)
             for a in turn.attachments.all()),
        )
        content = _content_block(turn.content)
        if turn.tool_calls:  # a step of the tool loop: which tools it called, with what input
            content = format_html("{}{}", content, format_html_join(
                "", '<div class="review-tool-call">tool call <code>{}</code> ({}): {}</div>',
                ((call.get("function", {}).get("name", ""), call.get("id", ""),
                  call.get("function", {}).get("arguments", "")) for call in turn.tool_calls),
            ))
        if turn.role == Turn.Role.TOOL:
            content = format_html('<div class="review-tool-call">result of <code>{}</code></div>{}',
                                  turn.tool_call_id, content)
        return format_html("{}<ul class='review-files'>{}</ul>", content, files) if files else content

    @admin.display(description=_("tokens"))
    def tokens(self, turn):
        if turn.role != Turn.Role.ASSISTANT:
            return "–"
        approximate = " ≈" if turn.usage_approximate else ""
        return f"{turn.prompt_tokens} + {turn.completion_tokens}{approximate}"

    @admin.display(description=_("latency"))
    def latency(self, turn):
        if turn.latency_ms is None:
            return "–"
        first = f" (first text {turn.first_token_ms} ms)" if turn.first_token_ms is not None else ""
        return f"{turn.latency_ms} ms{first}"

    @admin.display(description=_("feedback"))
    def feedback_display(self, turn):
        return _feedback_block(turn)


@admin.register(Conversation)
class ConversationAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "title_display", "owner", "model", "turn_count", "total_tokens", "last_activity", "failed_display",
        "feedback_score", "shared_display",
    ]
    list_display_links = ["title_display"]
    list_filter = [
        ("owner", admin.RelatedOnlyFieldListFilter), "model", ("updated_at", LastActivityFilter),
        "source", "archived", HasFailedAnswerFilter, HasNegativeFeedbackFilter, SharedFilter,
    ]
    list_select_related = ["owner"]
    # Turn content is searched too (get_search_results), with EXISTS so a chat is listed once.
    search_fields = ["title", "owner__username", "owner__email"]
    search_help_text = _(
        "Searches titles, owners' usernames and emails, and the text of every turn (counted up to 1,000)."
    )
    date_hierarchy = "created_at"
    ordering = ["-updated_at"]
    list_per_page = 50
    actions = ["export_json", "export_csv"]
    fields = (
        "title", "owner", "model", "source", "archived", "system_prompt", "turn_count", "total_tokens",
        "feedback_score", "created_at", "updated_at",
    )
    readonly_fields = fields
    inlines = [ShareLinkInline, TurnInline]
    view_on_site = False  # the chat page is the owner's only: a reviewer following the link gets a 404

    class Media:
        css = {"all": ["conversations/admin_review.css"]}

    def get_queryset(self, request):
        # Tokens and feedback are stored on the chat (models.review_totals): a page reads none of its turns, and
        # sorting by tokens reads no turn at all. The failed answers come from their partial index, one probe a row.
        failed = Turn.objects.filter(conversation=OuterRef("pk"), role=Turn.Role.ASSISTANT, status=Turn.Status.FAILED)
        return (
            super()
            .get_queryset(request)
            .filter(delete_after__isnull=True)  # temporary chats are their owner's alone
            .annotate(
                has_failed_answer=Exists(failed),
                shared=Exists(ShareLink.objects.filter(conversation=OuterRef("pk"))),
            )
        )

    @admin.display(description=_("shared"), boolean=True, ordering="shared")
    def shared_display(self, conversation):
        return conversation.shared

    def get_list_display(self, request):
        if staff_may_read_chats():
            return self.list_display
        return ["id", *self.list_display[1:]]  # metadata only: no title (the first words of the chat)

    def get_list_display_links(self, request, list_display):
        return self.list_display_links if staff_may_read_chats() else None  # the chat page refuses: no link

    def get_search_results(self, request, queryset, search_term):
        """Every word must match the title, the owner's username or email, or some turn's text (the owner only
        when staff may not read chats)."""
        readable = staff_may_read_chats()
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            if not bit:
                continue
            matches = Q(owner__username__icontains=bit) | Q(owner__email__icontains=bit)
            if readable:
                matches |= Q(title__icontains=bit) | conversation_text_matches(bit)
            queryset = queryset.filter(matches)
        return queryset, False

    @admin.display(description=_("title"), ordering="title")
    def title_display(self, conversation):
        return str(conversation)

    @admin.display(description=_("last activity"), ordering="updated_at")
    def last_activity(self, conversation):
        return conversation.updated_at

    @admin.display(description=_("failed answer"), ordering="has_failed_answer")
    def failed_display(self, conversation):
        # Not a boolean icon: Django draws True as a green tick, the wrong signal for a failure.
        if conversation.has_failed_answer:
            return format_html('<strong class="review-failed">{}</strong>', _("failed"))
        return "–"

    @admin.display(description=_("feedback"))
    def feedback_score(self, conversation):
        up, down = conversation.feedback_up, conversation.feedback_down
        if not (up or down):
            return "–"
        return _("%(score)+d (%(up)d good, %(down)d bad)") % {"score": up - down, "up": up, "down": down}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not staff_may_read_chats():
            raise PermissionDenied
        conversation = self.get_object(request, unquote(object_id))
        if conversation is not None:
            extra_context = {**(extra_context or {}), "turn_pages": self._turn_pages(request, conversation)}
        response = super().change_view(request, object_id, form_url, extra_context)
        # 200 on GET means the conversation exists and this staff member may see it: a review happened.
        if request.method == "GET" and response.status_code == 200:
            review_record(conversation_id=unquote(object_id), reviewer=request.user)
        return response

    def _turn_pages(self, request, conversation) -> dict | None:
        """Where the turns shown sit among the conversation's (its stored turn_count: no COUNT query)."""
        total = conversation.turn_count
        if total <= ADMIN_TURN_PAGE_SIZE:
            return None
        number = _turn_page_number(request, total)
        last = -(-total // ADMIN_TURN_PAGE_SIZE)
        return {
            "first": (number - 1) * ADMIN_TURN_PAGE_SIZE + 1,
            "last": min(number * ADMIN_TURN_PAGE_SIZE, total),
            "total": total,
            "previous": number - 1 if number > 1 else None,
            "next": number + 1 if number < last else None,
        }

    def has_export_permission(self, request):
        # Exports copy chats out of the panel without a review log row per chat, so only superusers
        # (who answer data requests) may export; reviewers read conversations one by one here.
        return request.user.is_active and request.user.is_superuser and staff_may_read_chats()

    def _export_response(self, queryset, export, content_type, extension):
        ids = list(queryset.order_by("created_at", "pk").values_list("pk", flat=True))
        response = StreamingHttpResponse(exports.streamed(export(ids)), content_type=content_type)
        filename = f"conversations-{timezone.now():%Y%m%d-%H%M%S}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @admin.action(description=_("Export selected conversations as JSON"), permissions=["export"])
    def export_json(self, request, queryset):
        return self._export_response(queryset, exports.export_json, "application/json", "json")

    @admin.action(description=_("Export selected conversations as CSV"), permissions=["export"])
    def export_csv(self, request, queryset):
        return self._export_response(queryset, exports.export_csv, "text/csv; charset=utf-8", "csv")


class ChatTextReviewMixin(_ModelAdminBase):
    """Admin pages that show a chat's text (a turn, an answer with its feedback) log a review of that chat,
    as the conversation page does, so that its owner is told: the change page one, a list page one per
    conversation whose text is on it."""

    def conversation_id_of(self, obj):
        raise NotImplementedError

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not staff_may_read_chats():
            raise PermissionDenied
        response = super().change_view(request, object_id, form_url, extra_context)
        context = response.context_data if isinstance(response, TemplateResponse) else None
        if request.method == "GET" and response.status_code == 200 and context is not None:
            obj = context["original"]
            review_record(conversation_id=self.conversation_id_of(obj), reviewer=request.user)
        return response

    def changelist_view(self, request, extra_context=None):
        if not staff_may_read_chats():
            raise PermissionDenied
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl") if response.status_code == 200 else None
        if request.method == "GET" and changelist is not None:
            review_record_many(
                conversation_ids=[self.conversation_id_of(obj) for obj in changelist.result_list],
                reviewer=request.user,
            )
        return response


@admin.register(Turn)
class TurnAdmin(ChatTextReviewMixin, IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every turn of every chat, to search across conversations."""

    def conversation_id_of(self, turn):
        return turn.conversation_id

    list_display = [
        "excerpt", "conversation_link", "owner", "position", "role", "status", "model", "total_tokens",
        "latency_ms", "created_at",
    ]
    list_display_links = ["excerpt"]
    list_filter = ["role", "status", "model", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["conversation__owner"]
    # The turn text only, through its search index (get_search_results): an OR with the conversation's title or
    # owner would scan every turn. The conversation list searches titles and owners.
    search_fields = ["content"]
    search_help_text = _("Searches the text of every turn (counted up to 1,000).")
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    fields = (
        "conversation_link", "owner", "position", "role", "content_text", "status", "model", "prompt_tokens",
        "completion_tokens", "usage_approximate", "finish_reason", "latency_ms", "first_token_ms",
        "dropped_turns", "error", "created_at", "completed_at", "feedback_display", "citations_display",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ["conversations/admin_review.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).filter(conversation__delete_after__isnull=True).select_related(
            "conversation__owner", "feedback"
        )

    def get_search_results(self, request, queryset, search_term):
        """Every word must be in the turn's text."""
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            if bit:
                queryset = queryset.filter(turn_text_matches(bit))
        return queryset, False

    @admin.display(description=_("turn"))
    def excerpt(self, turn):
        return Truncator(turn.content).chars(80) or "–"

    @admin.display(description=_("conversation"), ordering="conversation__title")
    def conversation_link(self, turn):
        return _conversation_link(turn.conversation)

    @admin.display(description=_("owner"), ordering="conversation__owner__username")
    def owner(self, turn):
        return turn.conversation.owner

    @admin.display(description=_("tokens"))
    def total_tokens(self, turn):
        return turn.total_tokens

    @admin.display(description=_("content"))
    def content_text(self, turn):
        return _content_block(turn.content)

    @admin.display(description=_("feedback"))
    def feedback_display(self, turn):
        return _feedback_block(turn)

    @admin.display(description=_("knowledge passages"))
    def citations_display(self, turn):
        """The passages the answer was given, each marked cited or not (its text has [n])."""
        cited = cited_numbers(turn.content)
        items = format_html_join(
            "", "<li>[{}] {}, page {} ({}): {}</li>",
            ((c.number, c.document_name, c.page, _("cited") if c.number in cited else _("not cited"),
              Truncator(c.text).chars(300)) for c in citations_by_turn([turn.pk]).get(turn.pk, [])),
        )
        return format_html("<ol class='review-citations'>{}</ol>", items) if items else "–"


@admin.register(Feedback)
class FeedbackAdmin(ChatTextReviewMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Ratings and comments on answers, across all chats."""

    def conversation_id_of(self, feedback):
        return feedback.turn.conversation_id

    list_display = ["rating_display", "comment_excerpt", "turn_link", "conversation_link", "owner", "created_at"]
    list_display_links = ["rating_display"]
    list_filter = ["rating", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["turn__conversation__owner"]
    search_fields = ["comment", "turn__content", "turn__conversation__title", "turn__conversation__owner__username"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    fields = ("rating_display", "comment_text", "turn_link", "answer_text", "conversation_link", "owner", "created_at",
              "updated_at")
    readonly_fields = fields

    class Media:
        css = {"all": ["conversations/admin_review.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).filter(turn__conversation__delete_after__isnull=True).select_related(
            "turn__conversation__owner"
        )

    @admin.display(description=_("rating"), ordering="rating")
    def rating_display(self, feedback):
        return _rating_label(feedback.rating)

    @admin.display(description=_("comment"))
    def comment_excerpt(self, feedback):
        return Truncator(feedback.comment).chars(80) or "–"

    @admin.display(description=_("comment"))
    def comment_text(self, feedback):
        return _content_block(feedback.comment)

    @admin.display(description=_("answer"))
    def turn_link(self, feedback):
        return _turn_link(feedback.turn_id, f"#{feedback.turn.position}")

    @admin.display(description=_("answer text"))
    def answer_text(self, feedback):
        return _content_block(feedback.turn.content)

    @admin.display(description=_("conversation"))
    def conversation_link(self, feedback):
        return _conversation_link(feedback.turn.conversation)

    @admin.display(description=_("owner"), ordering="turn__conversation__owner__username")
    def owner(self, feedback):
        return feedback.turn.conversation.owner


@admin.register(ReviewLog)
class ReviewLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who opened which conversation when: superusers only (reviewers don't audit each other)."""

    list_display = ["created_at", "reviewer", "conversation_link", "owner"]
    list_filter = [("reviewer", admin.RelatedOnlyFieldListFilter), ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["reviewer", "conversation__owner"]
    search_fields = ["reviewer__username", "conversation__title", "conversation__owner__username"]
    date_hierarchy = "created_at"
    fields = ("created_at", "reviewer", "conversation_link", "owner")
    readonly_fields = fields

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    @admin.display(description=_("conversation"), ordering="conversation__title")
    def conversation_link(self, review):
        return _conversation_link(review.conversation)

    @admin.display(description=_("owner"), ordering="conversation__owner__username")
    def owner(self, review):
        return review.conversation.owner
