"""Knowledge bases: a user's named collections of documents, split into passages and indexed for full-text search
(FTS5 on SQLite, a tsvector GIN index on PostgreSQL: migration 0002) and, with an embeddings model, their vectors;
and the citations of the answers that used them.
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models import Conversation, Turn


def document_path(document: "Document", filename: str) -> str:
    return f"knowledge/{document.base.owner_id}/{uuid.uuid4().hex}"


class KnowledgeBaseQuerySet(models.QuerySet):
    def for_user(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)


class KnowledgeBase(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge_bases")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=1_000, help_text="What the documents are about.")
    conversations = models.ManyToManyField(
        Conversation, blank=True, related_name="knowledge_bases",
        help_text="The chats whose answers search this base.",
    )
    projects = models.ManyToManyField(
        "conversations.Project", blank=True, related_name="knowledge_bases",
        help_text="The projects whose chats' answers search this base (the project's files).",
    )
    upload_project = models.ForeignKey(
        "conversations.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="upload_bases",
        help_text="The project whose page uploads files into this base (made on its first upload, named after it). "
        "The base outlives the project: its documents stay the owner's.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = KnowledgeBaseQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner", "name"], name="knowledge_base_owner_idx")]
        constraints = [
            models.UniqueConstraint(fields=["upload_project"], name="knowledge_base_one_upload_base_per_project"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("knowledge:base", args=[self.pk])


class DocumentQuerySet(models.QuerySet):
    def for_user(self, user):
        """The documents of the user's bases, each with its base."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(base__owner=user).select_related("base")

    def of_project(self, project):
        """A project's files: the documents of its owner's bases attached to it, by base then name."""
        return self.filter(base__owner_id=project.owner_id, base__projects=project).select_related("base").order_by(
            "base__name", "name", "pk"
        )


class Document(models.Model):
    """One file of a knowledge base: stored like an attachment (same storage, checks and quota), its text split into
    passages by the indexing task (knowledge.indexing), which reports its progress here."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        INDEXING = "indexing", _("Indexing")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    file = models.FileField(upload_to=document_path, max_length=300)
    name = models.CharField(max_length=255, help_text="The file's name as uploaded (cleaned, display only).")
    content_type = models.CharField(max_length=100, help_text="Detected from the content, not the name.")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    text = models.TextField(blank=True, help_text="The document's text, as indexed (pages joined by blank lines).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True, help_text="Why indexing failed.")
    pages_total = models.PositiveIntegerField(default=1)
    pages_done = models.PositiveIntegerField(default=0)
    passage_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    indexed_at = models.DateTimeField(null=True, blank=True)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["base", "created_at"], name="knowledge_document_base_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "indexing", "ready", "failed"]),
                name="knowledge_document_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(pages_done__lte=models.F("pages_total")), name="knowledge_document_progress_valid"
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def progress_percent(self) -> int:
        return 100 if self.status == self.Status.READY else int(100 * self.pages_done / max(self.pages_total, 1))


class Passage(models.Model):
    """A piece of a document's text (about KNOWLEDGE_PASSAGE_CHARS, overlapping its neighbours): what search finds
    and what the model reads."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="passages")
    ordinal = models.PositiveIntegerField(help_text="Its place in the document, from 0.")
    text = models.TextField()
    start = models.PositiveIntegerField(help_text="Where it starts in the document's text (characters).")
    end = models.PositiveIntegerField(help_text="Where it ends in the document's text (characters).")
    page = models.PositiveIntegerField(default=1, help_text="The page it starts on (PDF); 1 for other documents.")

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="knowledge_passage_document_ordinal_uniq"),
            models.CheckConstraint(condition=models.Q(start__lte=models.F("end")), name="knowledge_passage_span_valid"),
        ]

    def __str__(self):
        return f"{self.document.name} #{self.ordinal}"

    def get_absolute_url(self):
        return reverse("knowledge:passage", args=[self.pk])


class PassageVector(models.Model):
    """A passage's embedding (hybrid ranking, KNOWLEDGE_EMBEDDINGS_MODEL), written by the indexing task. It names the
    model that computed it: vectors of another model are never compared with a question's, and are computed again."""

    passage = models.OneToOneField(Passage, on_delete=models.CASCADE, primary_key=True, related_name="vector")
    model = models.CharField(max_length=200, help_text="The embeddings model that computed it.")
    vector = models.BinaryField(help_text="float32 values, little-endian.")

    def __str__(self):
        return f"{self.passage_id} ({self.model})"


class EmbeddingsOutage(models.Model):
    """The embeddings model failing (its server down, a model it does not serve): recorded by the last failed
    embedding, cleared by the next that succeeds. Housekeeping's catch-up (knowledge.vectors.embeddings_catch_up)
    waits until `retry_after`, twice as long after each failed try, so a dead server is not called every run."""

    model = models.CharField(max_length=200, help_text="The embeddings model that failed.")
    failures = models.PositiveIntegerField(default=1, help_text="Failed embeddings calls in a row.")
    error = models.TextField(blank=True, help_text="The last failure.")
    failed_at = models.DateTimeField(default=timezone.now, help_text="When it last failed.")
    retry_after = models.DateTimeField(help_text="Housekeeping queues no catch-up before this.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model"], name="knowledge_embeddings_outage_model_uniq")]

    def __str__(self):
        return f"{self.model}: {self.failures} failure(s), retry after {self.retry_after:%Y-%m-%d %H:%M}"


class EmbeddingsCatchUpQueued(models.Model):
    """The catch-up task housekeeping queued last (knowledge.vectors.embeddings_catch_up), by its id in the task
    queue. While the queue holds that task unfinished, later runs queue no other: a worker that falls behind would
    only embed the same passages twice. One row at most (the unique `task`), replaced by the next catch-up queued."""

    task = models.CharField(max_length=200, help_text="The catch-up task's module path.")
    result_id = models.CharField(max_length=64, help_text="Its id in the task queue (TaskResult.id).")
    queued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task"], name="knowledge_embeddings_catch_up_task_uniq")]

    def __str__(self):
        return f"{self.task} {self.result_id}, queued {self.queued_at:%Y-%m-%d %H:%M}"


class Citation(models.Model):
    """A passage given to the model for an answer, numbered as the model was told to cite it ([1], [2]...). The
    document's name and the passage's text are kept as they were, so an answer's citations outlive the document."""

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="citations")
    number = models.PositiveSmallIntegerField()
    passage = models.ForeignKey(Passage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    document_name = models.CharField(max_length=255)
    page = models.PositiveIntegerField(default=1)
    text = models.TextField(help_text="The passage as the model read it.")

    cited: bool  # set by knowledge.retrieval.answer_citations: the answer's text cites this passage ([n])

    class Meta:
        ordering = ["turn", "number"]
        constraints = [
            models.UniqueConstraint(fields=["turn", "number"], name="knowledge_citation_turn_number_uniq"),
        ]

    def __str__(self):
        return f"[{self.number}] {self.document_name}"
