"""Retried /v1 requests land on the answer of their first attempt, so an SDK's retries multiply neither
conversations nor model calls.

A request with an `Idempotency-Key` header is answered once per key (and API key) for a day: a repeat gets the
first attempt's outcome (its answer, or its failure), a 409 while that attempt is still being answered, and a 400
if its body differs. Without the header, the same body from the same API key within a minute of an attempt whose
answer failed is taken for a retry (openai-python and most SDKs send no key): it gets that failure again, since
the server already retried the model before answering (OPENAI_MAX_RETRIES). Any other repeat (after an answer,
or while one is being written) is a new request: asking the same thing twice, or in parallel, is legitimate.

Attempts are kept in the shared cache (Redis when REDIS_URL is set) with these expiries: they are short-lived,
need no table nor pruning, and every worker sees them; a claim uses the cache's atomic `add`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.cache import cache
from rest_framework import exceptions

from conversations import errors
from conversations.models import Turn

KEY_HEADER = "Idempotency-Key"
KEYED_SECONDS = 24 * 3600
RETRY_WINDOW_SECONDS = 60


class EarlierAttemptFailed(errors.UpstreamError):
    code = "upstream_error"


class AttemptInProgress(exceptions.APIException):
    status_code = 409
    default_code = "idempotent_request_in_progress"
    default_detail = f"A request with this {KEY_HEADER} is still being answered: retry in a moment."


class AnsweredBefore(exceptions.APIException):
    """A repeat that cannot be answered again in the form asked (a stream of a stored response): where to read it."""

    status_code = 409
    default_code = "request_already_answered"


class KeyReused(exceptions.ValidationError):
    default_code = "idempotency_key_reused"


@dataclass
class Attempt:
    """A request's identity for retries: its cache key, the digest of its body, whether the client named it."""

    cache_key: str
    body: str
    keyed: bool

    @property
    def seconds(self) -> int:
        return KEYED_SECONDS if self.keyed else RETRY_WINDOW_SECONDS


def attempt_of(request, body: dict) -> Attempt:
    """`body`: the request's JSON as parsed (compared in a canonical form)."""
    body_digest = hashlib.sha256(
        json.dumps([request.path, body], sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    ).hexdigest()
    key = request.headers.get(KEY_HEADER)
    if key:
        if len(key) > 255:
            raise exceptions.ValidationError({KEY_HEADER: ["At most 255 characters."]})
        named = hashlib.sha256(f"{request.path}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()
        return Attempt(f"v1-attempt:{request.auth.pk}:key:{named}", body_digest, keyed=True)
    return Attempt(f"v1-attempt:{request.auth.pk}:body:{body_digest}", body_digest, keyed=False)


def earlier_answer(request, attempt: Attempt) -> Turn | None:
    """The answer turn of this request's earlier attempt when this one is its retry (see the module), else None.
    A keyed retry whose attempt is still beginning, or whose body differs, is refused."""
    record = cache.get(attempt.cache_key)
    if record is None:
        return None
    if attempt.keyed and record["body"] != attempt.body:
        raise KeyReused({KEY_HEADER: [f"This {KEY_HEADER} was used with another request body."]})
    if record["turn"] is None:  # claimed, not begun yet
        if attempt.keyed:
            raise AttemptInProgress()
        return None
    turn = (Turn.objects.select_related("conversation")
            .filter(pk=record["turn"], conversation__owner=request.user).first())
    if turn is None:  # its conversation was deleted since: this request starts afresh
        cache.delete(attempt.cache_key)
        return None
    if not attempt.keyed and turn.status != Turn.Status.FAILED:
        return None
    if turn.status == Turn.Status.PENDING:
        raise AttemptInProgress()
    return turn


def raise_if_failed(turn: Turn) -> None:
    """A retry of an attempt whose answer failed gets that failure, without asking the model again."""
    if turn.status == Turn.Status.FAILED:
        raise EarlierAttemptFailed(
            f"{turn.error or errors.UpstreamError.message} (This request's earlier attempt failed after the server "
            "had retried the model; send it again later, or with a new Idempotency-Key.)"
        )


@contextmanager
def claimed(attempt: Attempt) -> Iterator[None]:
    """Hold the attempt's key while the answer begins (a keyed repeat meanwhile is a 409); a request refused
    before an answer began leaves no claim, so its retry is a new attempt."""
    if attempt.keyed and not cache.add(attempt.cache_key, {"body": attempt.body, "turn": None}, attempt.seconds):
        raise AttemptInProgress()
    try:
        yield
    except BaseException:
        if attempt.keyed:
            cache.delete(attempt.cache_key)
        raise


def record(attempt: Attempt, turn_id: int) -> None:
    cache.set(attempt.cache_key, {"body": attempt.body, "turn": turn_id}, attempt.seconds)
