"""The daily token quota: tokens held by running answers, and the usage ledger they add to."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from conversations import errors
from conversations.models import DailyUsage, Turn, quoted_column
from teams.policy import policy_for

if TYPE_CHECKING:
    from accounts.models import User

# The answering package's liveness check, handed to the services that must know whether an answer is still being
# produced: which of these pending answers ((id, created_at)) are alive.
Liveness = Callable[[Iterable[tuple[int, datetime]]], set[int]]


def quota_reserve(user: User, *, alive: Liveness, context_tokens: int, input_tokens: int = 0) -> int | None:
    """Admit one more answer against the user's daily token quota (their groups' budget: teams.policy), and hold
    tokens for it while it runs.

    Call inside the turn-start transaction: the user's row of the usage ledger is locked, so parallel
    starts (any worker) are admitted one after another. What is spent (the ledger) plus what running
    answers hold must leave room, and what is sent now (`input_tokens`: the message, its documents' text and
    images) must fit in it. The new answer holds its likely cost (the conversation so far, what is sent now and
    a whole answer), at most what is left. Returns the tokens held (None without a quota); QuotaExceeded
    otherwise. An answer can exceed what it holds only by a prompt or answer longer than estimated, so a day
    ends at most about one answer over the quota.
    """
    quota = policy_for(user).daily_token_budget
    if not quota:
        return None
    usage, _ = DailyUsage.objects.select_for_update().get_or_create(user=user, day=timezone.localdate())
    left = quota - usage.total_tokens - _tokens_held(user, alive)
    # What will surely be sent (the documents of this message included) must fit; the answer's length may not.
    if left <= 0 or input_tokens > left:
        raise errors.QuotaExceeded(retry_after=_seconds_to_midnight())
    estimate = context_tokens + input_tokens + settings.CHAT_MAX_ANSWER_TOKENS
    return min(estimate, left)


def quota_admit(user: User, *, alive: Liveness, input_tokens: int) -> None:
    """Admit a call that is over when it returns (embeddings: nothing held while it runs) against the daily quota:
    what it sends must fit in what the ledger and the running answers leave; QuotaExceeded otherwise."""
    quota = settings.CHAT_DAILY_TOKEN_QUOTA
    if not quota:
        return
    usage = DailyUsage.objects.filter(user=user, day=timezone.localdate()).first()
    left = quota - (usage.total_tokens if usage is not None else 0) - _tokens_held(user, alive)
    if left <= 0 or input_tokens > left:
        raise errors.QuotaExceeded(retry_after=_seconds_to_midnight())


def _tokens_held(user: User, alive: Liveness) -> int:
    """Tokens held by the user's running answers; one whose worker died (not alive) holds nothing."""
    running = list(
        Turn.objects.filter(
            conversation__owner=user, role=Turn.Role.ASSISTANT, status=Turn.Status.PENDING,
            quota_reserved__gt=0,
        ).values_list("pk", "quota_reserved", "created_at")
    )
    if not running:
        return 0
    living = alive((pk, created_at) for pk, _, created_at in running)
    return sum(held or 0 for pk, held, _ in running if pk in living)


def usage_add(user_id: int, day: date, *, prompt_tokens: int, completion_tokens: int, answers: int = 1) -> None:
    """Add one stored answer's tokens to the ledger (call inside the transaction that stores the answer); a call
    that is no answer (embeddings) adds its tokens with `answers=0`."""
    if _ledger_increment(user_id, day, prompt_tokens, completion_tokens, answers):
        return
    try:
        with transaction.atomic():
            DailyUsage.objects.create(
                user_id=user_id, day=day, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                answers=answers,
            )
    except IntegrityError:  # another answer made the day's row first
        _ledger_increment(user_id, day, prompt_tokens, completion_tokens, answers)


@functools.cache
def _ledger_increment_sql() -> str:
    """The day's row of the ledger, increased in place (its names from the model). Written out rather than as
    `update(prompt_tokens=F("prompt_tokens") + n, ...)`: resolving and compiling those three expressions cost
    about six times the CPU of running the statement, on every stored answer (bench/TURN.md)."""
    user, day, *counters = (
        quoted_column(DailyUsage, name) for name in ("user", "day", "prompt_tokens", "completion_tokens", "answers")
    )
    added = ", ".join(f"{counter} = {counter} + %s" for counter in counters)
    table = connection.ops.quote_name(DailyUsage._meta.db_table)
    return f"UPDATE {table} SET {added} WHERE {user} = %s AND {day} = %s"  # noqa: S608 (names, %s)


def _ledger_increment(user_id: int, day: date, prompt_tokens: int, completion_tokens: int, answers: int) -> int:
    """Add to the day's row if there is one; how many rows were changed (0 or 1)."""
    day_value = DailyUsage._meta.get_field("day").get_db_prep_value(day, connection)
    with connection.cursor() as cursor:
        cursor.execute(_ledger_increment_sql(), [prompt_tokens, completion_tokens, answers, user_id, day_value])
        return cursor.rowcount


def tokens_so_far(turn: Turn | None) -> int:
    """What the conversation up to `turn` cost as a prompt, from the usage stored with its answers."""
    if turn is None or turn.role != Turn.Role.ASSISTANT:
        return 0
    return turn.prompt_tokens + turn.completion_tokens


def _seconds_to_midnight() -> int:
    now = timezone.localtime()
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds()) + 1
