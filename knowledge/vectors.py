"""Hybrid ranking's vectors (KNOWLEDGE_EMBEDDINGS_MODEL): passages embedded off the request path by the indexing task
through conversations.llm, stored as float32 bytes with the model's name (PassageVector), and a question's nearest
passages among those a search may see, by usearch's exact (brute-force) cosine search.

Exact rather than an approximate index: the candidates are only the passages of the bases one answer searches, read
with the ownership filter in the same query, so there is no second store to keep in step with deletions and no index
file per process. Its cost grows with those passages (bench/KNOWLEDGE.md: about 0.2 s at 10,000, 1 to 2.5 s at
100,000, mostly reading the vectors); an index per base is the step after it.

The embeddings model failing (upstream down, a backend that has none) never costs a document or an answer: indexing
ends with the full-text index alone, a search ranks by full text alone, and a warning is logged. The failure is
recorded (EmbeddingsOutage), and housekeeping's catch-up (`embeddings_catch_up`) embeds what was left without vectors
once the model answers again, a bounded number of passages per run, waiting longer after each failure, and never
queueing a run while the one queued before is still waiting or running (EmbeddingsCatchUpQueued).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks.exceptions import TaskResultDoesNotExist
from usearch.index import MetricKind, search

from conversations import errors, llm
from knowledge.models import Document, EmbeddingsCatchUpQueued, EmbeddingsOutage, Passage, PassageVector

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger(__name__)

# Passages per embeddings call (and per insert): a 300-page document is about fifteen calls.
EMBED_BATCH = 64
VECTOR_DTYPE = np.dtype("<f4")
MODEL_ERRORS = (errors.EmbeddingsUnsupported, errors.UpstreamError)
# After a failure of the embeddings model, housekeeping's catch-up waits this long before calling it again, twice as
# long after each further failure, up to BACKOFF_LONGEST: a dead server gets a call a day, not one per run.
BACKOFF_FIRST = timedelta(minutes=5)
BACKOFF_LONGEST = timedelta(hours=24)
# A catch-up still running this long after it started was lost with its worker (killed mid-task, the database queue
# leaves it running for good): the next run queues another. A run embeds KNOWLEDGE_EMBED_PASSAGES_PER_RUN passages
# at most, minutes of calls.
CATCH_UP_LOST_AFTER = timedelta(hours=1)
# A question is embedded from its start only (a pasted document would pass the model's input limit); its full text
# still goes to full-text search.
QUESTION_MAX_CHARS = 4_000


def embeddings_model() -> str:
    """The model hybrid ranking uses; "" when it is off (full-text only)."""
    return settings.KNOWLEDGE_EMBEDDINGS_MODEL


def vector_bytes(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def passages_to_embed(document_id: int, model: str):
    """The document's passages with no vector of `model` (none yet, or another model's)."""
    return Passage.objects.filter(document_id=document_id).exclude(vector__model=model).order_by(
        "ordinal"
    ).values_list("pk", "text")


def documents_to_embed():
    """The ids of the ready documents that have a passage with no vector of the current model."""
    model = embeddings_model()
    return Document.objects.filter(status=Document.Status.READY).filter(
        Exists(Passage.objects.filter(document_id=OuterRef("pk")).exclude(vector__model=model))
    ).order_by("pk").values_list("pk", flat=True)


def embed_document_passages(document_id: int) -> int:
    """Embed the document's passages that lack a vector of the current model, EMBED_BATCH at a time (one model call
    and one short insert each). Returns how many were stored; on the model's failure, a warning and what was stored
    so far (the rest keep full-text search only until housekeeping's catch-up embeds them)."""
    model = embeddings_model()
    if not model:
        return 0
    return _embed(list(passages_to_embed(document_id, model)), model, f"knowledge document {document_id}")


def passages_without_vectors():
    """The passages of ready documents with no vector of the current model, oldest first."""
    return Passage.objects.filter(document__status=Document.Status.READY).exclude(
        vector__model=embeddings_model()
    ).order_by("pk")


@task()
def embed_missing_passages(limit: int) -> int:
    """Housekeeping's catch-up: embed at most `limit` passages that lack a vector of the current model, stopping at
    the model's first failure (recorded, for the back-off). Returns how many were stored."""
    model = embeddings_model()
    if not model:
        return 0
    pending = list(passages_without_vectors().values_list("pk", "text")[:limit])
    return _embed(pending, model, "knowledge catch-up")


def _embed(pending: list[tuple[int, str]], model: str, what: str) -> int:
    stored = 0
    for first in range(0, len(pending), EMBED_BATCH):
        batch = pending[first:first + EMBED_BATCH]
        try:
            vectors = llm.embed_blocking([text for _, text in batch], model=model)
        except MODEL_ERRORS as exc:
            logger.warning(
                "%s: embeddings model %r failed (%s); %s of %s passages have no vector, full-text search only for "
                "them until housekeeping embeds them", what, model, exc, len(pending) - stored, len(pending),
            )
            outage_record(model=model, error=str(exc))
            return stored
        try:
            with transaction.atomic():
                PassageVector.objects.bulk_create(
                    [PassageVector(passage_id=pk, model=model, vector=vector_bytes(vector))
                     for (pk, _), vector in zip(batch, vectors, strict=True)],
                    update_conflicts=True, unique_fields=["passage"], update_fields=["model", "vector"],
                )
        except IntegrityError:  # a document was deleted meanwhile: the next run goes on
            return stored
        stored += len(batch)
    if pending:
        EmbeddingsOutage.objects.filter(model=model).delete()  # it answered: the catch-up need not wait
    return stored


def outage_record(*, model: str, error: str) -> EmbeddingsOutage:
    """A failure of `model`. The first makes the catch-up wait BACKOFF_FIRST; a failure once that wait is over (the
    catch-up's try, or an indexing's) doubles it, up to BACKOFF_LONGEST. Failures during the wait (documents indexed
    meanwhile, each trying once) only update the error: a burst of uploads does not stretch the wait to a day."""
    now = timezone.now()
    with transaction.atomic():
        outage, created = EmbeddingsOutage.objects.select_for_update().get_or_create(
            model=model, defaults={"retry_after": now}
        )
        if created or now >= outage.retry_after:
            outage.failures = 1 if created else outage.failures + 1
            outage.retry_after = now + min(BACKOFF_FIRST * 2 ** min(outage.failures - 1, 20), BACKOFF_LONGEST)
        outage.error, outage.failed_at = error[:2_000], now
        outage.save()
    return outage


@dataclass(frozen=True)
class CatchUp:
    """What one housekeeping run did about passages without vectors."""

    model: str
    pending: int  # passages of ready documents with no vector of the model
    queued: int  # how many of them the queued task will embed (0: none queued)
    outage: EmbeddingsOutage | None  # the model's failures, when it is waited for
    unfinished: EmbeddingsCatchUpQueued | None = None  # the catch-up queued before, still waiting or running

    def __str__(self):
        if not self.pending:
            return f"Embeddings: every passage has a vector of {self.model}."
        if self.queued:
            return f"Embeddings: queued {self.queued} of {self.pending} passage(s) without a vector of {self.model}."
        if self.unfinished is not None:
            return (f"Embeddings: {self.pending} passage(s) without a vector; the catch-up task of "
                    f"{self.unfinished.queued_at:%Y-%m-%d %H:%M %Z} is still waiting or running, no other added.")
        assert self.outage is not None
        return (f"Embeddings: {self.pending} passage(s) without a vector; {self.model} failed {self.outage.failures} "
                f"time(s) in a row ({self.outage.error}), next try after {self.outage.retry_after:%Y-%m-%d %H:%M %Z}.")


def embeddings_catch_up() -> CatchUp | None:
    """Housekeeping: queue the embedding of up to KNOWLEDGE_EMBED_PASSAGES_PER_RUN passages that have no vector of
    the current model (its server was down while they were indexed), unless the model is being waited for after a
    failure. None when no embeddings model is configured."""
    model = embeddings_model()
    if not model:
        return None
    pending = passages_without_vectors().count()
    if not pending:
        return CatchUp(model=model, pending=0, queued=0, outage=None)
    outage = EmbeddingsOutage.objects.filter(model=model, retry_after__gt=timezone.now()).first()
    if outage is not None:
        return CatchUp(model=model, pending=pending, queued=0, outage=outage)
    limit = settings.KNOWLEDGE_EMBED_PASSAGES_PER_RUN
    # Two runs at once: once the row exists, the second waits for the first's lock and then sees its task.
    with transaction.atomic():
        queued = EmbeddingsCatchUpQueued.objects.select_for_update().filter(
            task=embed_missing_passages.module_path
        ).first()
        if queued is not None and catch_up_unfinished(queued):
            return CatchUp(model=model, pending=pending, queued=0, outage=None, unfinished=queued)
        result = embed_missing_passages.enqueue(limit)
        EmbeddingsCatchUpQueued.objects.update_or_create(
            task=embed_missing_passages.module_path,
            defaults={"result_id": result.id, "queued_at": timezone.now()},
        )
    return CatchUp(model=model, pending=pending, queued=min(pending, limit), outage=None)


def catch_up_unfinished(queued: EmbeddingsCatchUpQueued) -> bool:
    """Whether the task queue still holds this catch-up to run, or running (and not lost: CATCH_UP_LOST_AFTER)."""
    try:
        result = embed_missing_passages.get_result(queued.result_id)
    except TaskResultDoesNotExist:  # its result was pruned: long finished
        return False
    if result.status == TaskResultStatus.READY:
        return True
    if result.status == TaskResultStatus.RUNNING:
        started = result.started_at or queued.queued_at
        return timezone.now() - started < CATCH_UP_LOST_AFTER
    return False


def passages_not_embedded(*, base_id: int) -> int:
    """How many passages of a base's ready documents have no vector of the current model (0 when it is off)."""
    if not embeddings_model():
        return 0
    return passages_without_vectors().filter(document__base_id=base_id).count()


@task()
def embed_document(document_id: int) -> int:
    """Embed a ready document's passages that lack a current vector (after a change of model, or an outage)."""
    if not Document.objects.filter(pk=document_id, status=Document.Status.READY).exists():
        return 0
    return embed_document_passages(document_id)


def question_vector(question: str) -> np.ndarray | None:
    """The question's vector from the current model; None (and a warning) when the model fails."""
    try:
        (vector,) = llm.embed_blocking([question[:QUESTION_MAX_CHARS]], model=embeddings_model())
    except MODEL_ERRORS as exc:
        logger.warning("knowledge search: embeddings model %r failed (%s); full-text ranking only",
                       embeddings_model(), exc)
        return None
    return np.asarray(vector, dtype=VECTOR_DTYPE)


def stored_vectors(*, owner_ids: list[int], base_ids: list[int]) -> tuple[list[int], list[bytes]]:
    """(passage ids, vectors) of the current model in the bases `base_ids` owned by one of `owner_ids`: one query."""
    rows = PassageVector.objects.filter(
        model=embeddings_model(), passage__document__base_id__in=base_ids,
        passage__document__base__owner_id__in=owner_ids,
    ).values_list("passage_id", "vector")
    ids: list[int] = []
    blobs: list[bytes] = []
    for pk, blob in rows:
        ids.append(pk)
        blobs.append(bytes(blob))  # PostgreSQL gives a memoryview
    return ids, blobs


def nearest(ids: list[int], blobs: list[bytes], question: np.ndarray, count: int) -> list[int]:
    """The ids of the `count` vectors nearest `question` by cosine, nearest first (vectors of another length, from a
    model that changed its dimensions, are left out)."""
    size = question.size * VECTOR_DTYPE.itemsize
    kept = [i for i, blob in enumerate(blobs) if len(blob) == size]
    if not kept or count <= 0:
        return []
    matrix = np.frombuffer(b"".join(blobs[i] for i in kept), dtype=VECTOR_DTYPE).reshape(len(kept), question.size)
    matches = search(matrix, question, min(count, len(kept)), MetricKind.Cos, exact=True, threads=1)
    return [ids[kept[int(row)]] for row in matches.keys]
