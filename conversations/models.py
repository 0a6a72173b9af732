"""Conversations, their turns, feedback on answers, and the log of staff reviews."""

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def _live_chat(prefix: str = "") -> models.Q:
    """Not a temporary chat past its time: from then on it is gone everywhere, even before housekeeping deletes
    it. `prefix` reaches the conversation through a relation ("conversation__")."""
    return models.Q(**{f"{prefix}delete_after__isnull": True}) | models.Q(
        **{f"{prefix}delete_after__gt": timezone.now()}
    )


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user):
        """The user's live chats, the only way views and the API reach conversations: ownership is part of the
        query, and an expired temporary chat is not among them (a 404 on every route)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(_live_chat(), owner=user)

    def expired(self):
        """Temporary chats past their time: housekeeping deletes them."""
        return self.filter(delete_after__lte=timezone.now())

    def active(self):
        return self.filter(archived=False)

    def archived(self):
        return self.filter(archived=True)


class Conversation(models.Model):
    class Source(models.TextChoices):
        WEB = "web", _("Web")
        API = "api", _("API")
        CHAT_ENDPOINT = "chat_endpoint", _("/api/chat")
        OPENAI_API = "openai_api", _("/v1/chat/completions")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations",
        help_text="The user who owns the chat; only they (and staff reviewers) can read it.",
    )
    title = models.CharField(max_length=200, blank=True, help_text="Shown in the history list.")
    model = models.CharField(
        max_length=100, blank=True, help_text="Model name for new answers; empty = the site default."
    )
    system_prompt = models.TextField(
        blank=True, help_text="Instructions sent first to the model; empty = the site default."
    )
    source = models.CharField(
        max_length=20, choices=Source.choices, default=Source.WEB, help_text="Where the chat was started."
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The API key that started it through /v1 (a client resending its history continues it).",
    )
    archived = models.BooleanField(default=False, help_text="Archived chats leave the main history list.")
    web_search = models.BooleanField(
        default=False,
        help_text="The user lets the model search the web in this chat (offered only when CHAT_SEARCH_URL is set).",
    )
    personal = models.BooleanField(
        default=True, help_text="The owner's custom instructions and memories are added to the system prompt."
    )
    mcp_tools = models.JSONField(
        default=list, blank=True,
        help_text="The MCP tools the user enabled in this chat (\"<server>__<tool>\"; of CHAT_MCP_SERVERS).",
    )
    assistant = models.ForeignKey(
        "personal.Assistant", on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations",
        help_text="The assistant the chat was started with: its instructions are added to the system prompt.",
    )
    has_attachments = models.BooleanField(
        null=True, blank=True, help_text="Some message carries files (the model's history then reads them)."
    )
    turn_count = models.PositiveIntegerField(
        default=0, help_text="Number of stored turns, every version of every branch included."
    )
    # The review list's columns, stored so that a page of the list reads no turns (review_totals() keeps them).
    total_tokens = models.PositiveBigIntegerField(
        default=0, help_text="Prompt and completion tokens of every turn, every version included."
    )
    feedback_up = models.PositiveIntegerField(default=0, help_text="Answers rated good (+1).")
    feedback_down = models.PositiveIntegerField(default=0, help_text="Answers rated bad (-1).")
    pinned_at = models.DateTimeField(
        null=True, blank=True, help_text="Pinned chats lead the history list, most recently pinned first."
    )
    project = models.ForeignKey(
        "Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations",
        help_text="The owner's project it lives in, if any (its instructions join the system prompt).",
    )
    delete_after = models.DateTimeField(
        null=True, blank=True,
        help_text="A temporary chat: never listed in the history, deleted after this time (CHAT_TEMPORARY_HOURS).",
    )
    current_turn = models.ForeignKey(
        "Turn", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The last turn of the branch the user sees: the thread shown (and sent to the model) is "
        "the path from the first message down to it.",
    )
    metadata = models.JSONField(
        null=True, blank=True,
        help_text="Key-value pairs (strings) an API client keeps with the chat: the Conversations API's metadata.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, help_text="Last activity (newest turn or edit).")

    objects = ConversationQuerySet.as_manager()
    search_snippet: Any  # set on a page of search results: the text around a hit (conversations.search.Snippet)
    # Not columns: carried by the conversation a turn locks (services.turns._locking_query): its running answer's id
    # and start, if any; for the prompt, what its assistant and owner add (personal.selectors.with_personal_prompt)
    # and whether it is linked to a knowledge base (knowledge.search.knowledge_bases_linked).
    running_id: int | None
    running_since: datetime | None
    personal_assistant_instructions: str
    personal_about_me: str
    personal_answer_style: str
    personal_memory_enabled: bool
    personal_has_memories: bool
    has_knowledge_bases: bool

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["owner", "-updated_at"], name="conversation_owner_recent_idx"),
            # The review panel's list, newest activity first: a page (a search's too) stops after its rows.
            models.Index(fields=["-updated_at"], name="conversation_recent_idx"),
        ]

    def __str__(self):
        return self.title or f"Conversation {str(self.id)[:8]}"

    def get_absolute_url(self):
        return reverse("conversations:detail", kwargs={"conversation_id": self.id})


class TurnQuerySet(models.QuerySet):
    def for_user(self, user):
        """Turns of the user's live chats (Conversation.objects.for_user)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(_live_chat("conversation__"), conversation__owner=user)

    def running(self):
        return self.filter(status=Turn.Status.PENDING)


class Turn(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")
        SYSTEM = "system", _("System")
        TOOL = "tool", _("Tool result")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        COMPLETE = "complete", _("Complete")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children",
        help_text="The turn this one answers or follows; none for a first message. Turns with the same parent "
        "are versions of each other (a regenerated answer, an edited message).",
    )
    position = models.PositiveIntegerField(help_text="Depth in the conversation: 1 for a first message, parent's + 1.")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True, help_text="The message text (partial text for failed answers).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETE)
    model = models.CharField(max_length=100, blank=True, help_text="Model that wrote an answer.")
    prompt_tokens = models.PositiveIntegerField(default=0, help_text="Tokens sent for this answer.")
    completion_tokens = models.PositiveIntegerField(default=0, help_text="Tokens in this answer.")
    usage_approximate = models.BooleanField(
        default=False, help_text="True when the upstream sent no usage and chatsite counted it."
    )
    finish_reason = models.CharField(max_length=30, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to the whole answer.")
    first_token_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to first text.")
    dropped_turns = models.PositiveIntegerField(
        default=0, help_text="Older turns left out of the prompt to fit the context budget."
    )
    error = models.CharField(max_length=300, blank=True, help_text="Short user-safe error of a failed answer.")
    error_code = models.CharField(
        max_length=40, blank=True,
        help_text="Why an answer failed, as the API's error codes say it (upstream_rate_limited, interrupted...).",
    )
    tool_calls = models.JSONField(
        null=True, blank=True,
        help_text="An answer's tool calls, as the model sent them ([{id, type, function: {name, arguments}}]).",
    )
    tool_call_id = models.CharField(
        max_length=200, null=True, blank=True, help_text="For a tool result: the id of the call it answers."
    )
    digest = models.CharField(
        max_length=64, null=True, blank=True,
        help_text="Digest of the history up to this turn (conversations.digests): how a resent history is matched.",
    )
    quota_reserved = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Tokens held against the owner's daily quota while this answer runs (none without a quota).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = TurnQuerySet.as_manager()

    # Not columns: carried by the turns that path reads (selectors.turn_path, turn_with_versions) and the turn
    # service return, and absent from other turns (turn_json reads them with getattr). The versions beside
    # this turn (turns with the same parent), and the files sent with it.
    sibling_count: int
    sibling_index: int
    previous_sibling_id: int | None
    next_sibling_id: int | None
    attachment_list: list["Attachment"]
    web_sources: list[Any]  # set by the chat page on an answer: its web search sources (answering.search.Source)
    # Set by the chat page on an answer: the passages it cites (knowledge.Citation), or, when it cites none, the
    # passages it was given (each citation's `cited` tells which).
    knowledge_citations: list[Any]

    class Meta:
        ordering = ["conversation_id", "position"]  # the column: "conversation" would join to sort by its updated_at
        constraints = [
            # With turn_parent_same_conversation (a composite foreign key on PostgreSQL, triggers on SQLite:
            # migration 0004), a parent is always a turn of the same conversation.
            models.UniqueConstraint(fields=["id", "conversation"], name="turn_id_conversation_unique"),
            models.UniqueConstraint(
                fields=["conversation"], condition=models.Q(status="pending"),
                name="turn_one_running_per_conversation",
            ),
            models.CheckConstraint(condition=models.Q(position__gte=1), name="turn_position_positive"),
            models.CheckConstraint(
                condition=models.Q(parent__isnull=True, position=1) | models.Q(parent__isnull=False, position__gt=1),
                name="turn_root_at_position_one",
            ),
            models.CheckConstraint(condition=~models.Q(parent=models.F("id")), name="turn_not_own_parent"),
            models.CheckConstraint(
                condition=models.Q(role__in=["user", "assistant", "system", "tool"]), name="turn_role_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["pending", "complete", "failed", "cancelled"]
                ),
                name="turn_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(prompt_tokens__gte=0) & models.Q(completion_tokens__gte=0),
                name="turn_tokens_non_negative",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "created_at"],
                name="turn_running_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["created_at"], name="turn_created_idx"),
            models.Index(fields=["conversation", "parent", "id"], name="turn_siblings_idx"),
            models.Index(fields=["digest"], name="turn_digest_idx", condition=models.Q(digest__isnull=False)),
            # The admin's "failed answer" column and filter: a few rows, not a walk over every turn.
            models.Index(
                fields=["conversation"], name="turn_failed_answer_idx",
                condition=models.Q(role="assistant", status="failed"),
            ),
        ]

    def __str__(self):
        return f"#{self.position} {self.role}: {self.content[:50]}"

    @property
    def is_running(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def attachment_path(attachment, filename: str) -> str:
    # Never the uploaded name (it is kept in `name`): a fresh random path per file.
    return f"attachments/{attachment.owner_id}/{uuid.uuid4().hex}"


class AttachmentQuerySet(models.QuerySet):
    def for_user(self, user):
        """The user's files: unsent ones, and those sent in their live chats (an expired temporary chat's are gone)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(_live_chat("turn__conversation__"), owner=user)


class Attachment(models.Model):
    """A file a user attached to a message: uploaded first, then bound to the user turn it was sent with.

    The bytes live in the default storage (never the database); a document's text is extracted once, at
    upload, and kept in `text` for every later model call.
    """

    class Kind(models.TextChoices):
        DOCUMENT = "document", _("Document")
        IMAGE = "image", _("Image")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments")
    turn = models.ForeignKey(
        Turn, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments",
        help_text="The message it was sent with; none until sent.",
    )
    file = models.FileField(upload_to=attachment_path, max_length=300)
    name = models.CharField(max_length=255, help_text="The file's name as uploaded (display only).")
    content_type = models.CharField(max_length=100, help_text="Detected from the content, not the name.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    text = models.TextField(blank=True, help_text="A document's text, as the model reads it.")
    text_truncated = models.BooleanField(default=False, help_text="Only the first part of the text is used.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = AttachmentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["owner", "created_at"], name="attachment_owner_idx"),
            models.Index(fields=["turn"], name="attachment_turn_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=["document", "image"]), name="attachment_kind_valid"),
        ]

    def __str__(self):
        return self.name


class StorageUsage(models.Model):
    """The bytes a user's files take, reserved before a file is written: what the storage quota counts.

    Uploads reserve their size with one conditional UPDATE of this row (so parallel uploads on any number of
    workers cannot pass the quota together); a failed upload and a deleted file give their bytes back.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    bytes = models.PositiveBigIntegerField(default=0, help_text="Stored and reserved bytes of the user's files.")

    class Meta:
        verbose_name_plural = "storage usage"
        constraints = [
            models.CheckConstraint(condition=models.Q(bytes__gte=0), name="storage_usage_bytes_non_negative"),
        ]

    def __str__(self):
        return f"{self.user_id}: {self.bytes} bytes"


class DailyUsage(models.Model):
    """The tokens a user spent upstream on one day (the server's time zone): what the daily quota counts.

    Each stored answer adds to it, whatever its outcome; nothing takes away from it, so deleting chats or
    replacing an answer with a new version gives no tokens back. The turns keep their own usage for display.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    answers = models.PositiveIntegerField(default=0, help_text="Answers stored that day (any outcome).")

    class Meta:
        verbose_name_plural = "daily usage"
        ordering = ["user_id", "-day"]
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="daily_usage_one_row_per_user_day")]

    def __str__(self):
        return f"{self.user_id} on {self.day}: {self.total_tokens} tokens"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Feedback(models.Model):
    turn = models.OneToOneField(Turn, on_delete=models.CASCADE, related_name="feedback")
    rating = models.SmallIntegerField(help_text="+1 (good) or -1 (bad).")
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "feedback"
        constraints = [
            models.CheckConstraint(condition=models.Q(rating__in=[1, -1]), name="feedback_rating_valid"),
        ]

    def __str__(self):
        return f"{'👍' if self.rating > 0 else '👎'} on turn {self.turn_id}"


def quoted_column(model: type[models.Model], name: str) -> str:
    """The column of `model`'s field `name`, quoted for the database: for the few statements written out on a hot path
    (their names still come from the models)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column
    return connection.ops.quote_name(field.column)


def review_totals(*names: str) -> dict[str, models.Expression]:
    """A conversation's stored review columns (total_tokens, feedback_up, feedback_down; or only those `names`)
    recomputed from its turns and their feedback, as expressions for an UPDATE of conversations:
    `Conversation.objects.filter(pk=...).update(**review_totals())`. Recomputed rather than adjusted by a
    difference, so no writer can make them drift; the cost is one index range of that chat's turns. A stored answer
    writes the same total_tokens as a statement written out (services.turns._chat_total_sql): change both."""
    turns = Turn.objects.filter(conversation=models.OuterRef("pk")).order_by().values("conversation")

    def feedback(rating: int) -> models.QuerySet:
        return Feedback.objects.filter(turn__conversation=models.OuterRef("pk"), rating=rating).order_by().values(
            "turn__conversation"
        )

    def total(queryset, value) -> models.Expression:
        return Coalesce(
            models.Subquery(queryset.annotate(value=value).values("value"), output_field=models.BigIntegerField()),
            models.Value(0),
        )

    totals = {
        "total_tokens": lambda: total(turns, models.Sum(models.F("prompt_tokens") + models.F("completion_tokens"))),
        "feedback_up": lambda: total(feedback(1), models.Count("pk")),
        "feedback_down": lambda: total(feedback(-1), models.Count("pk")),
    }
    return {name: make() for name, make in totals.items() if not names or name in names}


class ReviewLog(models.Model):
    """One row each time a staff member opens a conversation in the admin."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["conversation", "-created_at"], name="review_conversation_idx")]

    def __str__(self):
        return f"{self.reviewer} reviewed {self.conversation_id} at {self.created_at:%Y-%m-%d %H:%M}"


class ProjectQuerySet(models.QuerySet):
    def for_user(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)

    def with_chat_count(self):
        """Each project's `conversation_count`: how many chats live in it (the projects API shows it)."""
        return self.annotate(conversation_count=models.Count("conversations"))


class Project(models.Model):
    """A user's project: a group of chats with their own instructions and default model, shown in the sidebar with
    its chats (which then leave the main list). A chat is in at most one. (It began as a folder: migration 0021.)"""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=80)
    instructions = models.TextField(
        blank=True, help_text="Added to the system prompt of every chat in the project, after the chat's own."
    )
    model = models.CharField(
        max_length=100, blank=True, help_text="The model a new chat in the project starts with; empty = as usual."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="project_name_unique_per_owner")]

    def __str__(self):
        return self.name


class ShareLinkQuerySet(models.QuerySet):
    def for_user(self, user):
        """The owner's links: ownership through the conversation, in the query. A temporary chat has none that
        open (see live()), so none are listed."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(conversation__owner=user, conversation__delete_after__isnull=True)

    def live(self):
        """Links that still open: not revoked, not expired, and not of a temporary chat (which cannot be shared;
        a link made before that rule never opens)."""
        return self.filter(revoked_at__isnull=True, conversation__delete_after__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )


class ShareLink(models.Model):
    """A read-only public link to a snapshot of a conversation, taken when the link was made.

    Later messages are not shown through it (make a new link for them). Anyone with the token reads the
    snapshot without logging in; nothing of the owner is shown beyond `display_name`, if they gave one.
    """

    token = models.CharField(max_length=64, unique=True, help_text="secrets.token_urlsafe: the link's only secret.")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="share_links")
    title = models.CharField(max_length=200, blank=True, help_text="The chat's title when shared.")
    display_name = models.CharField(
        max_length=100, blank=True, help_text="Shown as the author on the shared page; empty = anonymous."
    )
    messages = models.JSONField(
        help_text="The thread when shared: [{role, content}], oldest first; a user message also lists its "
        "attachments [{id, name, kind, content_type, size}] when the link includes files."
    )
    include_files = models.BooleanField(
        default=False, help_text="The owner chose to share the files sent with the snapshot's messages."
    )
    files = models.ManyToManyField(
        Attachment, blank=True, related_name="share_links",
        help_text="The files the link opens: those of the snapshot's messages, only when it includes files.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="After this the link no longer opens.")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set when the owner revokes the link.")

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["conversation", "-created_at"], name="share_conversation_idx")]

    def __str__(self):
        return f"Share of {self.conversation_id} ({self.created_at:%Y-%m-%d})"

    def get_absolute_url(self):
        return reverse("conversations:share", kwargs={"token": self.token})

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
