"""Soak test: N users × M turns through the REST API on PostgreSQL against the fake upstream; nothing lost.

Each user has a personal API key, starts a conversation and sends M messages one after the other
(alternately as plain JSON and as a server-sent-event stream); up to --concurrency users run at once.
At the end the database must hold exactly N*M user turns and N*M complete answers, the server must have
answered no request with an error, and no PostgreSQL connection may be left "idle in transaction".

Full size (creates and drops its own database, starts the fake upstream and `uvicorn --workers 2`):

    .venv/bin/python tests/resilience/soak.py --users 500 --turns 5     # 2,500 user turns + 2,500 answers
    .venv/bin/python tests/resilience/soak.py --users 500 --turns 10    # 5,000 + 5,000

    options: --database-url postgres://postgres@127.0.0.1:5432/chatsite_soak (dropped and re-created)
             --workers 2 --concurrency 50 --token-delay 0.005 --time-limit 900

CI runs it small (20 users × 3 turns) through tests/resilience/test_soak.py on the PostgreSQL test database.
Timings are printed for information only; nothing asserts on them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx2 as httpx  # noqa: E402
import psycopg  # noqa: E402

API = "/api/v1"


@dataclass
class SoakResult:
    users: int
    turns_per_user: int
    seconds: float = 0.0
    turn_latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)  # "status 503", "stream error: upstream_timeout", ...
    error_examples: list[str] = field(default_factory=list)
    conversation_ids: list[str] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> str:
        lat = sorted(self.turn_latencies) or [0.0]
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        turns = len(self.turn_latencies)
        return (
            f"{self.users} users x {self.turns_per_user} turns: {turns} answered turns in {self.seconds:.1f}s "
            f"({turns / self.seconds if self.seconds else 0:.1f} turns/s), turn latency p50 "
            f"{statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms; "
            f"errors: {self.error_count} {dict(self.errors) if self.errors else ''}"
        )


def _record_error(result: SoakResult, kind: str, detail: str) -> None:
    result.errors[kind] += 1
    if len(result.error_examples) < 10:
        result.error_examples.append(f"{kind}: {detail[:300]}")


def _stream_outcome(text: str) -> tuple[str, dict]:
    """The final event of an SSE answer ('done' or 'error') and its data."""
    final: tuple[str, dict] = ("missing", {})
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        event = next((line[7:] for line in lines if line.startswith("event: ")), "")
        data = "".join(line[6:] for line in lines if line.startswith("data: "))
        if event in ("done", "error"):
            final = (event, json.loads(data))
    return final


async def _one_user(client: httpx.AsyncClient, key: str, index: int, turns: int, result: SoakResult) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    response = await client.post(f"{API}/conversations/", json={"title": f"soak {index}"}, headers=headers)
    if response.status_code != 201:
        _record_error(result, f"create status {response.status_code}", response.text)
        return
    conversation_id = response.json()["id"]
    result.conversation_ids.append(conversation_id)
    url = f"{API}/conversations/{conversation_id}/turns/"
    for turn in range(turns):
        content = f"user {index} message {turn}: how are you?"
        started = time.monotonic()
        if turn % 2:
            async with client.stream("POST", url, json={"content": content, "stream": True}, headers=headers) as r:
                body = (await r.aread()).decode()
            if r.status_code != 200:
                _record_error(result, f"stream status {r.status_code}", body)
                return
            event, data = _stream_outcome(body)
            status = (data.get("assistant_turn") or {}).get("status")
            if event != "done" or status != "complete":
                _record_error(result, f"stream {event} {status}", body[-300:])
                return
        else:
            response = await client.post(url, json={"content": content}, headers=headers)
            if response.status_code != 201:
                _record_error(result, f"status {response.status_code}", response.text)
                return
            status = response.json()["assistant_turn"]["status"]
            if status != "complete":
                _record_error(result, f"answer {status}", response.text)
                return
        result.turn_latencies.append(time.monotonic() - started)


async def drive(base_url: str, keys: list[str], *, turns: int, concurrency: int = 50,
                time_limit: float = 900.0, request_timeout: float = 60.0) -> SoakResult:
    """Run every user's conversation against a live server; bounded by `time_limit` seconds in all."""
    result = SoakResult(users=len(keys), turns_per_user=turns)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    started = time.monotonic()

    async def run_user(client, key, index):
        async with semaphore:
            try:
                await _one_user(client, key, index, turns, result)
            except httpx.HTTPError as exc:
                _record_error(result, type(exc).__name__, repr(exc))

    async with httpx.AsyncClient(base_url=base_url, timeout=request_timeout, limits=limits) as client:
        tasks = [asyncio.create_task(run_user(client, key, i)) for i, key in enumerate(keys)]
        done, pending = await asyncio.wait(tasks, timeout=time_limit)
        for task in pending:
            task.cancel()
        if pending:
            _record_error(result, "time limit", f"{len(pending)} users unfinished after {time_limit}s")
            await asyncio.gather(*pending, return_exceptions=True)
    result.seconds = time.monotonic() - started
    return result


def idle_in_transaction(dsn: str, database: str) -> list[tuple]:
    """Connections to `database` sitting idle inside an open transaction (they hold locks and a pool slot)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, state, left(query, 120) FROM pg_stat_activity "
            "WHERE datname = %s AND state LIKE 'idle in transaction%%'",
            [database],
        ).fetchall()


def stored_counts(conversation_ids: list[str]) -> dict:
    """Turns stored for the soak's conversations, by role and status (Django ORM)."""
    from django.db.models import Count

    from conversations.models import Turn

    rows = (
        Turn.objects.filter(conversation_id__in=conversation_ids)
        .values("role", "status").annotate(n=Count("id")).order_by()
    )
    return {f"{row['role']}/{row['status']}": row["n"] for row in rows}


def make_users(count: int, prefix: str = "soak") -> list[str]:
    """Create `count` users with one API key each; returns the raw keys."""
    from accounts.models import ApiKey, User

    User.objects.bulk_create([User(username=f"{prefix}{i}", password="!") for i in range(count)])
    users = User.objects.filter(username__startswith=prefix).order_by("id")
    return [ApiKey.generate(user=user, name="soak")[1] for user in users]


def check(result: SoakResult, counts: dict, idle: list, expected: int) -> list[str]:
    """Every way the soak can fail, as messages (empty: passed)."""
    problems = []
    if result.error_count:
        problems.append(f"{result.error_count} errors: {dict(result.errors)}; e.g. {result.error_examples[:3]}")
    if counts.get("user/complete", 0) != expected:
        problems.append(f"user turns stored: {counts.get('user/complete', 0)}, expected {expected} ({counts})")
    if counts.get("assistant/complete", 0) != expected:
        problems.append(f"complete answers stored: {counts.get('assistant/complete', 0)}, expected {expected}")
    if sum(counts.values()) != 2 * expected:
        problems.append(f"unexpected turns: {counts}")
    if idle:
        problems.append(f"connections idle in transaction: {idle}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--token-delay", type=float, default=0.005, help="fake upstream seconds between tokens")
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/chatsite_soak")
    args = parser.parse_args()

    from conversations.tests.fake_upstream import Behaviour, FakeUpstream
    from tests.servers import Server, upstream_env

    base, database = args.database_url.rsplit("/", 1)
    admin_dsn = f"{base.replace('postgres://', 'postgresql://', 1)}/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    env = {**os.environ, "DATABASE_URL": args.database_url, "CHATSITE_ENV_FILE": "/nonexistent",
           "DJANGO_SETTINGS_MODULE": "chatsite.settings_test"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    os.environ.update({"DATABASE_URL": args.database_url, "DJANGO_SETTINGS_MODULE": "chatsite.settings_test"})
    import django

    django.setup()
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    keys = make_users(args.users)

    upstream = FakeUpstream().start_in_thread()
    upstream.behaviour = Behaviour(token_delay=args.token_delay)
    upstream.requests = _Counted()
    server = Server(database_url=args.database_url, workers=args.workers,
                    env={**upstream_env(upstream.base_url), "CHAT_THROTTLE_RATE": "1000/min"})
    server.start()
    try:
        result = asyncio.run(drive(server.base_url, keys, turns=args.turns, concurrency=args.concurrency,
                                   time_limit=args.time_limit))
        time.sleep(1)  # let the last answers' short transactions finish
        idle = idle_in_transaction(admin_dsn, database)
    finally:
        server.stop()
        upstream.stop()
    counts = stored_counts(result.conversation_ids)
    server_errors = [line for line in server.log().splitlines() if "ERROR" in line or "Traceback" in line]
    print(result.summary())
    print(f"stored: {counts}; upstream chat requests: {upstream.requests.appended}; "
          f"idle in transaction: {len(idle)}; server error log lines: {len(server_errors)}")
    problems = check(result, counts, idle, args.users * args.turns)
    if server_errors:
        problems.append(f"server logged errors, e.g. {server_errors[:3]}")
    for problem in problems:
        print("FAIL:", problem)
    print("PASSED" if not problems else "FAILED")
    return 1 if problems else 0


class _Counted(list):
    """Counts the fake upstream's requests without keeping them (a full soak would hold 2,500 bodies)."""

    appended = 0  # not `count`: that is list's own method

    def append(self, item):
        self.appended += 1


if __name__ == "__main__":
    sys.exit(main())
