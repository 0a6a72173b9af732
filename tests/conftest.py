"""Fixtures for the suites that run real servers (tests/security, tests/resilience): uvicorn subprocesses on the
test database, and a Redis database of their own."""

from __future__ import annotations

import os
import uuid

import pytest
from django.db import connection

from tests.servers import Server, database_url


@pytest.fixture
def uvicorn_server():
    """Start uvicorn subprocesses on the (PostgreSQL) test database; all are stopped after the test."""
    started = []

    def start(*, ready_status: int = 200, wait: bool = True, **kwargs) -> Server:
        """A started server; with wait=False call .wait_ready() on it (to start several at once)."""
        kwargs.setdefault("database_url", database_url(connection.settings_dict))
        server = Server(**kwargs)
        started.append(server)
        server.launch()
        return server.wait_ready(ready_status=ready_status) if wait else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_url():
    """A Redis database for cross-worker tests, with a key prefix unique to this test."""
    import redis

    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    return url, f"sec-{uuid.uuid4().hex[:12]}"
