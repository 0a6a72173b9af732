"""SSE answers under ASGI (django.test.AsyncClient): event order, failures, refusals, shared checks."""

import asyncio
import contextlib
import json
import threading
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import OperationalError
from django.test import AsyncClient

from accounts.models import ApiKey
from conversations import answering, services
from conversations.answering import liveness
from conversations.models import Conversation, Turn
from conversations.services import conversation_create, title_from_text
from conversations.tests.api_helpers import assert_error
from conversations.tests.factories import add_turns

pytestmark = pytest.mark.django_db(transaction=True)


def parse_sse(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture
def key_headers(user):
    _, raw = ApiKey.generate(user=user, name="sse")
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def conversation(user):
    return conversation_create(owner=user)


async def read_all(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


async def post_json(client, url, body, headers):
    return await client.post(url, json.dumps(body), content_type="application/json", headers=headers)


async def test_stream_turn_events_in_order(fake_upstream, conversation, key_headers):
    client = AsyncClient()
    response = await post_json(client, f"/api/v1/conversations/{conversation.pk}/turns/",
                               {"content": "Stream it", "stream": True}, key_headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache" and response["X-Accel-Buffering"] == "no"
    events = parse_sse(await read_all(response))
    names = [name for name, _ in events]
    assert names[0] == "turn" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"} and len(names) - 2 == len(fake_upstream.behaviour.reply.split(" "))

    first = events[0][1]
    assert first["user_turn"]["content"] == "Stream it" and first["user_turn"]["position"] == 1
    assert first["assistant_turn"]["status"] == "pending" and first["assistant_turn"]["position"] == 2
    text = "".join(data["text"] for name, data in events if name == "delta")
    done = events[-1][1]["assistant_turn"]
    assert done["status"] == "complete" and done["content"] == text == fake_upstream.behaviour.reply
    assert done["completion_tokens"] > 0 and done["id"] == first["assistant_turn"]["id"]
    stored = await Turn.objects.aget(pk=done["id"])
    assert stored.content == text and stored.status == Turn.Status.COMPLETE


async def test_accept_header_asks_for_a_stream(fake_upstream, conversation, key_headers):
    response = await post_json(AsyncClient(), f"/api/v1/conversations/{conversation.pk}/turns/",
                               {"content": "hi"}, {**key_headers, "Accept": "text/event-stream"})
    assert response["Content-Type"].startswith("text/event-stream")
    assert [name for name, _ in parse_sse(await read_all(response))][-1] == "done"


async def test_title_event_for_a_new_conversation(fake_upstream, conversation, key_headers, settings):
    settings.CHAT_MODEL_TITLES = True
    response = await post_json(AsyncClient(), f"/api/v1/conversations/{conversation.pk}/turns/",
                               {"content": "hello there", "stream": True}, key_headers)
    events = parse_sse(await read_all(response))
    assert [name for name, _ in events][-2:] == ["done", "title"]
    assert events[-1][1]["title"] == title_from_text(fake_upstream.behaviour.reply.strip("."))
    await conversation.arefresh_from_db()
    assert conversation.title == events[-1][1]["title"]


async def test_upstream_failure_is_an_error_event(fake_upstream, conversation, key_headers):
    fake_upstream.behaviour.drop_after = 2
    response = await post_json(AsyncClient(), f"/api/v1/conversations/{conversation.pk}/turns/",
                               {"content": "break", "stream": True}, key_headers)
    events = parse_sse(await read_all(response))
    assert [name for name, _ in events] == ["turn", "delta", "delta", "error"]
    error = events[-1][1]
    assert error["error"]["code"] == "upstream_stream_broken" and error["error"]["message"]
    assert error["assistant_turn"]["status"] == "failed" and error["assistant_turn"]["content"] == "Hello from "
    user_turn = await Turn.objects.aget(conversation=conversation, position=1)
    assert user_turn.content == "break"


async def test_regenerate_streams_the_same_format(fake_upstream, conversation, key_headers, user):
    await sync_to_async(answering.answer)(conversation=conversation, user=user, content="q")
    fake_upstream.behaviour.reply = "again"
    response = await post_json(AsyncClient(), f"/api/v1/conversations/{conversation.pk}/regenerate/",
                               {"stream": True, "content": "q edited"}, key_headers)
    events = parse_sse(await read_all(response))
    assert [name for name, _ in events] == ["turn", "delta", "done"]
    assert events[0][1]["user_turn"]["content"] == "q edited"
    assert events[-1][1]["assistant_turn"]["content"] == "again" and events[-1][1]["assistant_turn"]["position"] == 2
    assert events[0][1]["user_turn"]["sibling_count"] == 2  # a new version of the message; the old one is kept
    assert await Turn.objects.filter(conversation=conversation).acount() == 4


async def test_refusals_before_streaming_are_json(fake_upstream, conversation, key_headers, other_user):
    client = AsyncClient()
    url = f"/api/v1/conversations/{conversation.pk}/turns/"
    assert_error(await post_json(client, url, {"content": "  ", "stream": True}, key_headers), 400, "invalid")
    assert_error(await post_json(client, url, {"content": "hi", "stream": True}, {}), 401)
    foreign = await sync_to_async(conversation_create)(owner=other_user)
    assert_error(await post_json(client, f"/api/v1/conversations/{foreign.pk}/turns/",
                                 {"content": "hi", "stream": True}, key_headers), 404)
    bad = await client.post(url, b"{oops", content_type="application/json",
                            headers={**key_headers, "Accept": "text/event-stream"})
    assert_error(bad, 400, "parse_error")
    assert_error(await post_json(client, f"/api/v1/conversations/{conversation.pk}/regenerate/",
                                 {"stream": True}, key_headers), 409, "nothing_to_regenerate")

    await sync_to_async(add_turns)(conversation, ("user", "q"))
    await sync_to_async(add_turns)(conversation, ("assistant", ""), status="pending")
    running = await Turn.objects.aget(conversation=conversation, status="pending")
    await sync_to_async(liveness.vouch)([running.pk])  # a worker is producing it, however slow this machine is
    assert_error(await post_json(client, url, {"content": "hi", "stream": True}, key_headers), 409, "busy")
    assert fake_upstream.chat_requests == []


async def test_stream_shares_the_throttle(fake_upstream, conversation, key_headers, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"chat": "1/min"}}
    client = AsyncClient()
    url = f"/api/v1/conversations/{conversation.pk}/turns/"
    first = await post_json(client, url, {"content": "one", "stream": True}, key_headers)
    await read_all(first)
    response = await post_json(client, url, {"content": "two", "stream": True}, key_headers)
    assert_error(response, 429, "throttled")
    assert response["Retry-After"]
    response = await post_json(client, url, {"content": "three"}, key_headers)  # the JSON path counts the same
    assert_error(response, 429, "throttled")
    assert len(fake_upstream.chat_requests) == 1


async def wait_for_status(turn_id, statuses, timeout=10.0):
    """The turn once its status is one of `statuses`. A read that meets the server thread's write is tried
    again: the shared in-memory SQLite test database answers "table is locked" instead of waiting."""
    deadline = time.monotonic() + timeout
    turn = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OperationalError):
            turn = await Turn.objects.aget(pk=turn_id)
            if turn.status in statuses:
                return turn
        await asyncio.sleep(0.1)
    raise AssertionError(f"turn {turn_id} is still {turn and turn.status}")


async def test_closing_the_stream_leaves_the_answer_running_to_its_end(fake_upstream, conversation, key_headers):
    """A client going away (Django's ASGI handler cancels the task sending the response) drops only that
    follower: the answer is written to its end and stored."""
    fake_upstream.behaviour.tokens = 60
    fake_upstream.behaviour.token_delay = 0.005
    response = await post_json(AsyncClient(), f"/api/v1/conversations/{conversation.pk}/turns/",
                               {"content": "long one", "stream": True}, key_headers)
    received = []

    async def send_response():
        async for chunk in response.streaming_content:
            received.append(chunk)

    sending = asyncio.create_task(send_response())
    while len(received) < 4 and not sending.done():  # turn + 3 deltas
        await asyncio.sleep(0.005)
    sending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sending
    assert b"event: turn" in received[0] and received[0].startswith(b"id: 1\n")
    answer = await Turn.objects.aget(conversation=conversation, position=2)
    answer = await wait_for_status(answer.pk, {Turn.Status.COMPLETE})
    assert len(answer.content.split()) == 60
    assert not fake_upstream.chat_requests[-1].disconnected


async def test_a_client_leaving_during_the_checks_still_gets_its_answer_written(
    fake_upstream, conversation, key_headers, monkeypatch
):
    """The view runs on in its thread after the client left and starts the turn: the answer is written and
    stored for when the user comes back (nothing is left pending), and the chat goes on."""
    real_begin = services.turn_begin
    began = threading.Event()

    def slow_begin(**kwargs):
        began.set()
        time.sleep(0.3)  # the client is gone by now
        return real_begin(**kwargs)

    monkeypatch.setattr(services, "turn_begin", slow_begin)
    url = f"/api/v1/conversations/{conversation.pk}/turns/"
    request = asyncio.ensure_future(post_json(AsyncClient(), url, {"content": "hi", "stream": True}, key_headers))
    while not began.is_set():
        await asyncio.sleep(0.01)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    answer_id = None
    for _ in range(200):
        with contextlib.suppress(OperationalError):  # (see wait_for_status)
            answer_id = await Turn.objects.filter(conversation=conversation, position=2).values_list(
                "pk", flat=True).afirst()
        if answer_id is not None:
            break
        await asyncio.sleep(0.02)
    answer = await wait_for_status(answer_id, {Turn.Status.COMPLETE})
    assert answer.content == fake_upstream.behaviour.reply
    # Its liveness keys go when the engine lets go of the run, just after the store (answering.engine).
    for _ in range(100):
        if await cache.aget(f"chat:running:{answer.pk}") is None:
            break
        await asyncio.sleep(0.05)
    assert await cache.aget(f"chat:running:{answer.pk}") is None
    monkeypatch.undo()
    response = await post_json(AsyncClient(), url, {"content": "again", "stream": True}, key_headers)
    assert [name for name, _ in parse_sse(await read_all(response))][-1] == "done"


def sse_ids(raw: bytes) -> list[int]:
    return [int(line[4:]) for line in raw.decode().split("\n") if line.startswith("id: ")]


async def test_followers_get_the_same_events_in_order_and_a_late_one_resumes(fake_upstream, conversation, key_headers):
    fake_upstream.behaviour.tokens = 40
    # 4 s of answer: both followers must join while it runs, and a loaded CI machine took 1 s per request.
    fake_upstream.behaviour.token_delay = 0.1
    client = AsyncClient()
    started = await post_json(client, f"/api/v1/conversations/{conversation.pk}/turns/",
                              {"content": "story", "stream": True}, key_headers)
    stream_url = f"/api/v1/conversations/{conversation.pk}/stream/"
    first = await client.get(stream_url, headers=key_headers)  # from the start
    assert first.status_code == 200
    # A follower that saw events 1..5 and reconnects with Last-Event-ID.
    resumed = await client.get(stream_url, headers={**key_headers, "Last-Event-ID": "5"})
    by_post, by_first, by_resumed = await asyncio.gather(read_all(started), read_all(first), read_all(resumed))
    assert by_post == by_first
    ids = sse_ids(by_post)
    assert ids == list(range(1, len(ids) + 1))
    assert sse_ids(by_resumed) == ids[5:]
    events = parse_sse(by_post)
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert len(text.split()) == 40 and events[-1][0] == "done"
    assert "".join(d["text"] for n, d in parse_sse(by_resumed) if n == "delta") == text[
        len("".join(d["text"] for n, d in events[:5] if n == "delta")):]
    # Nothing running any more: 204.
    nothing = await client.get(stream_url, headers=key_headers)
    assert nothing.status_code == 204
    bad = await client.get(stream_url, headers={**key_headers, "Last-Event-ID": "x"})
    assert_error(bad, 400, "invalid")


async def test_stop_from_another_client_ends_the_answer_as_cancelled(fake_upstream, conversation, key_headers):
    fake_upstream.behaviour.tokens = 400
    fake_upstream.behaviour.token_delay = 0.01
    client = AsyncClient()
    started = await post_json(client, f"/api/v1/conversations/{conversation.pk}/turns/",
                              {"content": "story", "stream": True}, key_headers)
    reading = asyncio.ensure_future(read_all(started))
    await asyncio.sleep(0.2)
    stopped = await post_json(AsyncClient(), f"/api/v1/conversations/{conversation.pk}/stop/", {}, key_headers)
    assert stopped.status_code == 200
    events = parse_sse(await asyncio.wait_for(reading, 10))
    assert events[-1][0] == "done" and events[-1][1]["assistant_turn"]["status"] == "cancelled"
    answer = await Turn.objects.aget(conversation=conversation, position=2)
    assert answer.status == Turn.Status.CANCELLED and 0 < len(answer.content.split()) < 400


async def test_stop_cuts_an_answer_whose_upstream_sends_nothing(fake_upstream, conversation, key_headers):
    fake_upstream.behaviour.ttft = 30  # the first token would take 30 s
    client = AsyncClient()
    started = await post_json(client, f"/api/v1/conversations/{conversation.pk}/turns/",
                              {"content": "slow", "stream": True}, key_headers)
    reading = asyncio.ensure_future(read_all(started))
    await asyncio.sleep(0.2)
    await post_json(AsyncClient(), f"/api/v1/conversations/{conversation.pk}/stop/", {}, key_headers)
    events = parse_sse(await asyncio.wait_for(reading, 5))  # cut within the stop grace (1 s), not 30 s
    assert events[-1][1]["assistant_turn"]["status"] == "cancelled"


async def test_an_answer_abandoned_by_a_dead_worker_is_failed_by_a_follower(fake_upstream, conversation, key_headers):
    """A pending answer with no heartbeat (its worker died) is failed when someone follows it."""
    from asgiref.sync import sync_to_async
    from django.utils import timezone

    long_ago = timezone.now() - timedelta(seconds=30)
    await sync_to_async(add_turns)(conversation, ("user", "q"), created_at=long_ago)
    answer = await sync_to_async(add_turns)(conversation, ("assistant", "half"), status="pending", created_at=long_ago)
    response = await AsyncClient().get(f"/api/v1/conversations/{conversation.pk}/stream/", headers=key_headers)
    events = parse_sse(await read_all(response))
    assert [name for name, _ in events] == ["error"]
    assert events[0][1]["assistant_turn"]["status"] == "failed"
    assert (await Turn.objects.aget(pk=answer.pk)).status == Turn.Status.FAILED


@pytest.mark.django_db
def test_turn_data_matches_the_turn_serializer(user):
    from conversations.api.serializers import TurnSerializer
    from conversations.models import Turn
    from conversations.turn_json import turn_data

    conversation = Conversation.objects.create(owner=user)
    turn = Turn.objects.create(conversation=conversation, position=1, role="assistant", content="hi",
                               status="failed", error="boom", prompt_tokens=3, completion_tokens=4)
    assert turn_data(turn) == TurnSerializer(turn).data


def _threads_inside(module_files: tuple[str, ...]) -> list[str]:
    """The threads whose stack runs code of these files right now."""
    import sys
    import traceback

    found = []
    for thread_id, frame in sys._current_frames().items():
        stack = traceback.extract_stack(frame)
        if any(entry.filename.endswith(module_files) for entry in stack):
            found.append(f"{thread_id}: {stack[-1].filename}:{stack[-1].lineno}")
    return found


async def test_no_request_thread_waits_for_a_json_answer(fake_upstream, user, key_headers):
    """Ten JSON (not streamed) answers on every answering route, all waiting for a slow upstream: none of them
    holds a thread meanwhile (the view's thread trip is over; the wait is on the event loop)."""
    fake_upstream.behaviour.ttft = 1.5
    client = AsyncClient()
    conversations = [await sync_to_async(conversation_create)(owner=user) for _ in range(4)]
    first = await sync_to_async(answering.answer)(conversation=conversations[3], user=user, content="q")
    requests = [
        post_json(client, f"/api/v1/conversations/{conversations[0].pk}/turns/", {"content": "a"}, key_headers),
        post_json(client, f"/api/v1/conversations/{conversations[1].pk}/turns/", {"content": "b"}, key_headers),
        post_json(client, f"/api/v1/conversations/{conversations[2].pk}/turns/", {"content": "c"}, key_headers),
        post_json(client, f"/api/v1/conversations/{conversations[3].pk}/regenerate/",
                  {"turn_id": first.turn_id}, key_headers),
        post_json(client, "/api/chat", {"messages": [{"role": "user", "content": "d"}]}, key_headers),
        post_json(client, "/v1/chat/completions",
                  {"model": "fake-model", "messages": [{"role": "user", "content": "e"}]}, key_headers),
        post_json(client, "/v1/chat/completions",
                  {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "f"}]},
                  key_headers),
        post_json(client, "/v1/responses", {"model": "fake-model", "input": "g"}, key_headers),
        post_json(client, "/v1/responses", {"model": "fake-model", "input": "h", "stream": True}, key_headers),
    ]
    tasks = [asyncio.ensure_future(request) for request in requests]
    before = len(fake_upstream.chat_requests)
    for _ in range(500):
        if len(fake_upstream.chat_requests) - before == len(requests):
            break
        await asyncio.sleep(0.01)
    assert len(fake_upstream.chat_requests) - before == len(requests)  # every answer is waiting for its upstream
    assert not any(task.done() for task in tasks)
    busy = _threads_inside(("conversations/api/views.py", "conversations/api/openai_compat.py",
                            "conversations/api/responses.py", "rest_framework/views.py"))
    assert busy == [], busy
    responses = await asyncio.gather(*tasks)
    assert [r.status_code for r in responses] == [201, 201, 201, 200, 200, 200, 200, 200, 200]
    assert responses[0].json()["assistant_turn"]["content"] == fake_upstream.behaviour.reply
    assert responses[4].json() == {"role": "assistant", "content": fake_upstream.behaviour.reply}
    assert responses[5].json()["choices"][0]["message"]["content"] == fake_upstream.behaviour.reply
    assert responses[7].json()["status"] == "completed"


async def test_a_json_answer_that_fails_is_the_error_shape_after_the_wait(fake_upstream, user, key_headers):
    fake_upstream.behaviour.fail_status = 503
    conversation = await sync_to_async(conversation_create)(owner=user)
    response = await post_json(AsyncClient(), f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "x"},
                               key_headers)
    assert_error(response, 502, "upstream_error")
    completions = await post_json(AsyncClient(), "/v1/chat/completions",
                                  {"model": "fake-model", "messages": [{"role": "user", "content": "y"}]}, key_headers)
    assert completions.status_code == 502 and completions.json()["error"]["type"] == "api_error"
