"""Faults through the API: every upstream failure keeps the user's message, answers a clear error in the one
shape (JSON) or as an `error` event (stream), leaves no pending/streaming turn, and a retry works."""

import json
import time

import pytest
from rest_framework.test import APIClient

from conversations.models import Turn
from conversations.services import conversation_create
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db(transaction=True)

# name -> (fake upstream behaviour, settings, expected HTTP status, expected error code)
FAULTS = {
    "timeout": ({"hang": True}, {"OPENAI_TIMEOUT": 0.5}, 504, "upstream_timeout"),
    "connection refused": ({}, {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, 503, "upstream_unavailable"),
    "429 short Retry-After": ({"fail_status": 429, "retry_after": "3"}, {}, 429, "upstream_rate_limited"),
    "429 long Retry-After": ({"fail_status": 429, "retry_after": "3600"}, {}, 429, "upstream_rate_limited"),
    "500": ({"fail_status": 500}, {}, 502, "upstream_error"),
    "401": ({"fail_status": 401}, {}, 502, "upstream_misconfigured"),
    "drop mid-stream": ({"drop_after": 3}, {}, 502, "upstream_stream_broken"),
    "malformed stream": ({"malformed_after": 3}, {}, 502, "upstream_stream_broken"),
}


def sse_events(response) -> list[tuple[str, dict]]:
    events = []
    for block in b"".join(response).decode().split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        name = next(line[7:] for line in lines if line.startswith("event: "))
        events.append((name, json.loads("".join(line[6:] for line in lines if line.startswith("data: ")))))
    return events


def assert_nothing_running():
    running = list(Turn.objects.filter(status=Turn.Status.PENDING).values("id", "status"))
    assert running == [], f"stuck turns: {running}"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_upstream_fault_keeps_the_message_and_retry_works(fake_upstream, settings, user, key_client, fault, stream):
    behaviour, overrides, status, code = FAULTS[fault]
    conversation = conversation_create(owner=user)
    for name, value in behaviour.items():
        setattr(fake_upstream.behaviour, name, value)
    for name, value in overrides.items():
        setattr(settings, name, value)
    url = f"/api/v1/conversations/{conversation.pk}/turns/"

    started = time.monotonic()
    response = key_client.post(url, {"content": "please answer", "stream": stream}, format="json")
    assert time.monotonic() - started < 10  # bounded: a long Retry-After is passed on, not waited out

    if stream:
        assert response.status_code == 200
        events = sse_events(response)
        names = [name for name, _ in events]
        assert names[0] == "turn" and names[-1] == "error", names
        error = events[-1][1]
        assert set(error["error"]) == {"code", "message"} and error["error"]["code"] == code, error
        assert error["assistant_turn"]["status"] == "failed"
    else:
        error = assert_error_shape(response, status, code)
        if status == 429:
            assert response["Retry-After"] == behaviour["retry_after"]
    assert "Traceback" not in response.content.decode(errors="replace") if not stream else True

    turns = list(Turn.objects.filter(conversation=conversation).order_by("position"))
    assert [(t.position, t.role, t.status) for t in turns] == [(1, "user", "complete"), (2, "assistant", "failed")]
    assert turns[0].content == "please answer"
    assert turns[1].error and "Traceback" not in turns[1].error
    assert_nothing_running()

    # Retry: the upstream is back; regenerate writes a new version of the failed answer (which is kept).
    fake_upstream.reset()
    settings.OPENAI_BASE_URL = fake_upstream.base_url
    retry = key_client.post(f"/api/v1/conversations/{conversation.pk}/regenerate/", {}, format="json")
    assert retry.status_code == 200, retry.content
    assert retry.json()["assistant_turn"]["status"] == "complete"
    turns = list(Turn.objects.filter(conversation=conversation).order_by("id"))
    assert [(t.position, t.role, t.status) for t in turns] == [
        (1, "user", "complete"), (2, "assistant", "failed"), (2, "assistant", "complete"),
    ]
    assert turns[2].content == fake_upstream.behaviour.reply and turns[2].parent_id == turns[0].pk
    assert [m["content"] for m in fake_upstream.chat_requests[-1].messages][-1] == "please answer"
    assert_nothing_running()


def test_rate_limit_with_sdk_retries_stays_bounded(fake_upstream, settings, user, key_client):
    """With the production retry setting, an upstream that keeps answering 429 (1 h) is given up on quickly."""
    settings.OPENAI_MAX_RETRIES = 2
    fake_upstream.behaviour.fail_status = 429
    fake_upstream.behaviour.retry_after = "3600"
    conversation = conversation_create(owner=user)
    started = time.monotonic()
    response = key_client.post(f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "hi"}, format="json")
    assert time.monotonic() - started < 30
    assert_error_shape(response, 429, "upstream_rate_limited")
    assert response["Retry-After"] == "3600"
    assert 1 <= len(fake_upstream.chat_requests) <= 3  # the SDK may retry (twice at most) or give up at once
    assert_nothing_running()


def test_a_stream_dropped_by_the_client_leaves_a_cancelled_answer(fake_upstream, user, api_key):
    """Closing the stream early (a browser tab closed) stores the partial answer as cancelled, not stuck."""
    fake_upstream.behaviour.tokens = 200
    fake_upstream.behaviour.token_delay = 0.01
    conversation = conversation_create(owner=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    response = client.post(f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "long", "stream": True},
                           format="json")
    chunks = iter(response)
    first = [next(chunks) for _ in range(3)]
    assert any(b"event: delta" in chunk for chunk in first) or any(b"event: turn" in chunk for chunk in first)
    response.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Turn.objects.filter(status=Turn.Status.PENDING).exists():
        time.sleep(0.1)
    assert_nothing_running()
    answer = Turn.objects.get(conversation=conversation, role="assistant")
    assert answer.status in ("cancelled", "complete")
    assert Turn.objects.get(conversation=conversation, role="user").content == "long"
