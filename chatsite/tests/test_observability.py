"""Operators: request ids on responses, error bodies, log lines and upstream requests; JSON logs; /metrics
protected and counting chats (several workers: tests/resilience/test_metrics_across_workers.py)."""

import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatsite.observability import ContextFilter, JsonFormatter, request_id_from
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def total(found: dict, name: str, **labels) -> float:
    return sum(value for (sample, pairs), value in found.items()
               if sample == name and set(labels.items()) <= set(pairs))


@pytest.mark.parametrize("path", ["/healthz", "/accounts/login/", "/api/v1/conversations/", "/v1/models", "/nope"])
def test_every_response_carries_a_request_id(client, path):
    response = client.get(path)
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0


def test_a_sane_incoming_request_id_is_kept_and_a_bad_one_replaced(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.42:x_y")["X-Request-ID"] == "lb-7f3a.42:x_y"
    for bad in ["x" * 129, "has space", "new\nline", "ü", ""]:
        assert request_id_from(bad) != bad
    assert client.get("/healthz", HTTP_X_REQUEST_ID="<script>")["X-Request-ID"] != "<script>"


def test_the_error_body_quotes_the_request_id(client):
    response = client.get("/api/v1/conversations/", HTTP_X_REQUEST_ID="trace-me-1")
    assert response.status_code == 401
    assert response.json()["error"]["request_id"] == "trace-me-1" == response["X-Request-ID"]


@pytest.mark.django_db(transaction=True)  # the answer is stored from the answer engine's thread
def test_log_lines_of_a_request_carry_its_ids_and_the_upstream_gets_the_request_id(
    key_client, user, fake_upstream, caplog
):
    conversation = conversation_create(owner=user)
    with caplog.at_level(logging.INFO):
        response = key_client.post(f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "secret words"},
                                   format="json", HTTP_X_REQUEST_ID="chat-request-1")
    assert response.status_code == 201
    access = [r for r in caplog.records if r.name == "chatsite.access"]
    assert len(access) == 1
    record = access[0]
    ContextFilter().filter(record)
    assert record.request_id == "chat-request-1" and record.user_id == user.pk
    assert record.conversation_id == str(conversation.pk)
    assert record.route == "api/v1/conversations/<uuid:conversation_id>/turns/" and record.status == 201
    assert fake_upstream.chat_requests[-1].headers["X-Request-ID"] == "chat-request-1"
    assert not [r for r in caplog.records if "secret words" in r.getMessage()]  # no message text at INFO


def test_json_log_lines_are_one_object_each_with_the_context():
    record = logging.LogRecord("chatsite.access", logging.INFO, __file__, 1, "%s %s", ("GET", "x"), None)
    record.route, record.status, record.duration_ms = "healthz", 200, 1.5
    record.request_id, record.user_id, record.conversation_id = "r1", 7, None
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "GET x" and entry["level"] == "INFO" and entry["logger"] == "chatsite.access"
    assert entry["request_id"] == "r1" and entry["user_id"] == 7 and "conversation_id" not in entry
    assert entry["route"] == "healthz" and entry["status"] == 200 and entry["time"].endswith("+00:00")


def test_metrics_are_not_public(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "scrape-token"
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").status_code == 200
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", ["127.0.0.1"]
    assert client.get("/metrics").status_code == 200  # the test client's REMOTE_ADDR


@pytest.mark.django_db(transaction=True)
def test_metrics_count_chats_tokens_refusals_and_requests(client, key_client, user, fake_upstream, settings):
    settings.METRICS_TOKEN = "t"

    def scrape():
        return samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode())

    before = scrape()
    conversation = conversation_create(owner=user)
    turns = f"/api/v1/conversations/{conversation.pk}/turns/"
    assert key_client.post(turns, {"content": "hello"}, format="json").status_code == 201
    fake_upstream.behaviour.fail_status = 503
    assert key_client.post(turns, {"content": "again"}, format="json").status_code == 502
    settings.CHAT_DAILY_TOKEN_QUOTA = 1
    assert key_client.post(turns, {"content": "over"}, format="json").status_code == 429
    after = scrape()

    def grew(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("chatsite_chats_started_total", surface="rest", model="fake-model") == 2
    assert grew("chatsite_chats_finished_total", outcome="complete") == 1
    assert grew("chatsite_chats_finished_total", outcome="failed", error="upstream_error") == 1
    assert grew("chatsite_refusals_total", reason="quota_exceeded") == 1
    assert grew("chatsite_upstream_requests_total", status="200") == 1
    assert grew("chatsite_upstream_requests_total", status="503") == 1
    assert grew("chatsite_tokens_total", kind="completion") > 0
    assert grew("chatsite_time_to_first_token_seconds_count") == 1
    assert grew("chatsite_answer_duration_seconds_count") == 2
    assert grew("chatsite_http_requests_total", route="api/v1/conversations/<uuid:conversation_id>/turns/",
                status="201") == 1
    # None of this test's answers is left counted as running (answers of earlier tests may still end meanwhile).
    assert total(after, "chatsite_answers_running") <= total(before, "chatsite_answers_running")
    exposition = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    assert "hello" not in exposition and user.username not in exposition and str(conversation.pk) not in exposition
