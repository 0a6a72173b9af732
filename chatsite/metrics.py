"""Prometheus metrics (prometheus-client), correct across uvicorn workers.

With PROMETHEUS_MULTIPROC_DIR set in the environment before the server starts (`manage.py serve` sets and
empties one), every worker writes its samples there and a scrape of any worker adds them all up (the
client's multiprocess mode; gauges count live workers only). Without it (one process: `runserver`, tests)
the default registry is used. Labels never carry message text, titles, user names or keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
# Gauges add up the live workers' values only; in one process, the client's default mode.
_LIVE: Literal["livesum", "all"] = "livesum" if MULTIPROCESS else "all"

# Seconds: from tens of milliseconds (a fast upstream) to minutes (a long local answer).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 21, 34, 60, 120, 300)

CHATS_STARTED = Counter("chatsite_chats_started", "Answers started.", ["surface", "model"])
CHATS_FINISHED = Counter(
    "chatsite_chats_finished", "Answers ended: complete, failed (with the error code) or cancelled.",
    ["surface", "model", "outcome", "error"],
)
TOKENS = Counter("chatsite_tokens", "Tokens of stored answers.", ["model", "kind"])
TIME_TO_FIRST_TOKEN = Histogram(
    "chatsite_time_to_first_token_seconds", "From the model call to the answer's first text.", ["model"],
    buckets=LATENCY_BUCKETS,
)
ANSWER_DURATION = Histogram(
    "chatsite_answer_duration_seconds", "From the model call to the stored answer.", ["model"], buckets=LATENCY_BUCKETS
)
ANSWERS_RUNNING = Gauge("chatsite_answers_running", "Answers being written now.", multiprocess_mode=_LIVE)
FOLLOWERS = Gauge("chatsite_followers", "Clients following a running answer now.", multiprocess_mode=_LIVE)
UPSTREAM_REQUESTS = Counter(
    "chatsite_upstream_requests", "Requests to the model server, by HTTP status (or connection, timeout).", ["status"]
)
REFUSALS = Counter("chatsite_refusals", "Chat requests refused before the model was asked.", ["reason"])
HTTP_REQUESTS = Counter("chatsite_http_requests", "HTTP requests by route and status.", ["route", "method", "status"])
HTTP_DURATION = Histogram(
    "chatsite_http_request_duration_seconds", "Time to the response's headers, by route.", ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DB_POOL = Gauge(
    "chatsite_db_pool_connections", "PostgreSQL pool connections by state.", ["state"], multiprocess_mode=_LIVE
)


def http_request(*, route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_DURATION.labels(route).observe(seconds)


def chat_started(*, surface: str, model: str) -> None:
    CHATS_STARTED.labels(surface, model).inc()
    ANSWERS_RUNNING.inc()


def chat_finished(*, surface: str, model: str, outcome: str, error: str = "", prompt_tokens: int = 0,
                  completion_tokens: int = 0, first_token_seconds: float | None = None, seconds: float) -> None:
    ANSWERS_RUNNING.dec()
    CHATS_FINISHED.labels(surface, model, outcome, error).inc()
    TOKENS.labels(model, "prompt").inc(prompt_tokens)
    TOKENS.labels(model, "completion").inc(completion_tokens)
    if first_token_seconds is not None:
        TIME_TO_FIRST_TOKEN.labels(model).observe(first_token_seconds)
    ANSWER_DURATION.labels(model).observe(seconds)


def upstream_request(status: str) -> None:
    UPSTREAM_REQUESTS.labels(status).inc()


def refused(reason: str) -> None:
    REFUSALS.labels(reason).inc()


def db_pool_state() -> None:
    """The PostgreSQL pool's connections in use and idle in this worker (a scrape adds the workers up)."""
    from django.db import connection

    existing = getattr(connection, "existing_pool", None)  # chatsite.postgresql; SQLite has no pool
    pool = existing() if existing is not None else None
    if pool is None:
        return
    stats = pool.get_stats()
    size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
    DB_POOL.labels("in_use").set(size - idle)
    DB_POOL.labels("idle").set(idle)


def exposition() -> bytes:
    """Every worker's metrics in the text format (this process's only, without multiprocess mode)."""
    db_pool_state()
    if not MULTIPROCESS:
        from prometheus_client import REGISTRY

        return generate_latest(REGISTRY)
    _forget_dead_workers()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def _forget_dead_workers() -> None:
    """Drop the live gauges of workers that are gone (a restarted worker's running answers are not running)."""
    for path in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
