"""DB cost of one append with a long history, and of the conversation list of a heavy user.

One append is the whole `answering.answer` (the one path) against the fake upstream answering at once
(no time to first token, no delay between tokens), so the time is chatsite's own; every query it runs is
counted and timed with a `connection.execute_wrapper`. The list is `selectors.conversation_list` for a
user with 10,000 conversations: the first page (50 rows) and the total count a paginator adds.

Run with chatsite's environment: `python -m bench.db_costs --out bench/out/db_costs.json`.
"""

import argparse
import json
import os
import statistics
import time
from contextlib import contextmanager
from datetime import timedelta

from conversations.tests.fake_upstream import FakeUpstream

HISTORY_LENGTHS = (1, 100, 1000)
APPENDS_PER_LENGTH = 5
LIST_SIZE = 10_000
LIST_PAGE = 50
LIST_REPEATS = 20


class QueryTimer:
    """Counts and times every query the current thread's connection runs."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1


@contextmanager
def timed_queries():
    from django.db import connection

    timer = QueryTimer()
    with connection.execute_wrapper(timer):
        yield timer


def append_costs(user) -> list[dict]:
    from conversations import answering
    from conversations.services import conversation_create
    from conversations.tests.factories import conversation_with_history

    warm = conversation_create(owner=user)
    answering.answer(conversation=warm, user=user, content="warm up")
    rows = []
    for turns in HISTORY_LENGTHS:
        conversation = conversation_with_history(user, turns, title=f"history {turns}")
        samples = []
        for number in range(APPENDS_PER_LENGTH):
            started = time.perf_counter()
            with timed_queries() as timer:
                run = answering.answer(conversation=conversation, user=user, content=f"question {number}")
            wall = time.perf_counter() - started
            samples.append((wall, timer.seconds, timer.count, run.assistant_turn.dropped_turns))
        rows.append({
            "history_turns": turns,
            "queries": sorted({s[2] for s in samples}),
            "db_ms_median": statistics.median(s[1] for s in samples) * 1000,
            "append_ms_median": statistics.median(s[0] for s in samples) * 1000,
            "dropped_turns": max(s[3] for s in samples),
        })
    return rows


def list_costs(user) -> dict:
    from django.db import connection
    from django.utils import timezone

    from conversations.models import Conversation
    from conversations.selectors import conversation_list

    now = timezone.now()
    Conversation.objects.bulk_create(
        (Conversation(owner=user, title=f"chat {i}", updated_at=now - timedelta(minutes=i)) for i in range(LIST_SIZE)),
        batch_size=2000,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE conversations_conversation")

    page_samples, count_samples, page_queries, count_queries = [], [], set(), set()
    for _ in range(LIST_REPEATS):
        with timed_queries() as timer:
            page = list(conversation_list(user=user)[:LIST_PAGE])
        page_samples.append(timer.seconds)
        page_queries.add(timer.count)
        with timed_queries() as timer:
            total = conversation_list(user=user).count()
        count_samples.append(timer.seconds)
        count_queries.add(timer.count)
    assert len(page) == LIST_PAGE and total == LIST_SIZE, (len(page), total)

    plan = ""
    if connection.vendor == "postgresql":
        sql, params = conversation_list(user=user)[:LIST_PAGE].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
    return {
        "conversations": LIST_SIZE,
        "page_rows": LIST_PAGE,
        "page_queries": sorted(page_queries),
        "page_ms_median": statistics.median(page_samples) * 1000,
        "page_ms_max": max(page_samples) * 1000,
        "count_queries": sorted(count_queries),
        "count_ms_median": statistics.median(count_samples) * 1000,
        "plan": plan,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    upstream = FakeUpstream().start_in_thread()
    os.environ.update({
        "OPENAI_BASE_URL": upstream.base_url, "LLM_BACKEND": "openai", "OPENAI_MODEL": "fake-model",
        "CHAT_MODEL_TITLES": "0",
    })
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password

    from accounts.models import User

    stamp = int(time.time())
    appender = User.objects.create(username=f"bench-append-{stamp}", password=make_password(None))
    lister = User.objects.create(username=f"bench-list-{stamp}", password=make_password(None))
    result = {"append": append_costs(appender), "list": list_costs(lister)}
    upstream.stop()
    with open(args.out, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
