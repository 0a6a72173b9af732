"""/metrics with two uvicorn workers sharing PROMETHEUS_MULTIPROC_DIR: whichever worker a scrape reaches,
the counts add up over both; and LOG_FORMAT=json gives one JSON object per line with the request's ids."""

import json
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from chatsite.tests.test_observability import samples, total
from conversations.services import conversation_create
from tests.servers import upstream_env
from tests.support import requires_postgresql

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_scrape_adds_up_every_worker(uvicorn_server, fake_upstream, user, api_key, tmp_path):
    requires_postgresql("server processes sharing the test database")
    env = {**upstream_env(fake_upstream.base_url), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "METRICS_TOKEN": "scrape", "CHAT_THROTTLE_RATE": "1000/min", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    server = uvicorn_server(workers=2, env=env)
    fake_upstream.behaviour.ttft = 0.2  # answers overlap, so both workers take connections

    def chat(i):
        conversation = conversation_create(owner=user)
        response = httpx.post(f"{server.base_url}/api/v1/conversations/{conversation.pk}/turns/",
                              json={"content": f"hi {i}"}, headers={"Authorization": f"Bearer {api_key}"},
                              timeout=30)
        assert response.status_code == 201, response.text

    chats = 0
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(5):  # rounds of 6 at once, until both workers have served some (almost always the first)
            list(pool.map(chat, range(chats, chats + 6)))
            chats += 6
            if len(worker_pids(tmp_path)) == 2:
                break
    assert len(worker_pids(tmp_path)) == 2
    scrapes = [httpx.get(f"{server.base_url}/metrics", headers={"Authorization": "Bearer scrape"}, timeout=10)
               for _ in range(6)]
    for scrape in scrapes:
        assert scrape.status_code == 200
        found = samples(scrape.text)
        assert total(found, "chatsite_chats_started_total", surface="rest") == chats
        assert total(found, "chatsite_chats_finished_total", outcome="complete") == chats
        assert total(found, "chatsite_upstream_requests_total", status="200") == chats
        assert total(found, "chatsite_answer_duration_seconds_count") == chats
        assert total(found, "chatsite_answers_running") == 0

    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    access = [json.loads(line) for line in lines if '"chatsite.access"' in line]
    assert access, server.log()[-2000:]
    chat_lines = [entry for entry in access if entry.get("status") == 201]
    assert len(chat_lines) == chats
    for entry in chat_lines:
        assert entry["user_id"] == user.pk and entry["conversation_id"] and len(entry["request_id"]) == 32
        assert entry["route"] == "api/v1/conversations/<uuid:conversation_id>/turns/" and entry["duration_ms"] > 0
    assert "hi 3" not in server.log()  # no message text in the logs


def worker_pids(directory) -> set[str]:
    """The processes that wrote samples (the client's files are named <kind>_<pid>.db)."""
    return {path.stem.rsplit("_", 1)[-1] for path in directory.glob("counter_*.db")}
