"""The soak test at CI size: 20 users × 3 turns through the API on PostgreSQL (full size: tests/resilience/soak.py)."""

import asyncio

import pytest
from django.db import connection

from tests.resilience import soak
from tests.servers import database_url, upstream_env
from tests.support import requires_postgresql

pytestmark = pytest.mark.django_db(transaction=True)

USERS, TURNS = 20, 3


def test_soak_small(fake_upstream, uvicorn_server):
    requires_postgresql("pg_stat_activity and a server process sharing the test database")
    fake_upstream.behaviour.token_delay = 0.005
    keys = soak.make_users(USERS)
    server = uvicorn_server(workers=2, env=upstream_env(fake_upstream.base_url))

    result = asyncio.run(soak.drive(server.base_url, keys, turns=TURNS, concurrency=10, time_limit=120))
    idle = soak.idle_in_transaction(
        database_url({**connection.settings_dict, "NAME": "postgres"}).replace("postgres://", "postgresql://", 1),
        connection.settings_dict["NAME"],
    )
    counts = soak.stored_counts(result.conversation_ids)
    print(result.summary())

    assert soak.check(result, counts, idle, USERS * TURNS) == []
    assert len(result.conversation_ids) == USERS
    assert len(fake_upstream.chat_requests) == USERS * TURNS
    assert "Traceback" not in server.log()
