"""A live chatsite (uvicorn, ASGI, on 127.0.0.1) driven by the official `openai` client and a raw SSE reader.

The server runs in a thread of the test process, so it shares the test database (SQLite's shared
in-memory test DB, or the PostgreSQL test DB).
"""

import asyncio
import socket
import threading
import time

import aiohttp
import openai
import psutil
import pytest
import uvicorn
from django.db import OperationalError, connections

from accounts.models import ApiKey
from conversations.models import Conversation, Turn
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def live_asgi():
    from chatsite.asgi import application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()
    # The server's threads borrowed pooled PostgreSQL connections: close the pool so the test DB can go.
    for connection in connections.all():
        if hasattr(connection, "close_pool"):
            connection.close_pool()


@pytest.fixture
def raw_key(user):
    return ApiKey.generate(user=user, name="openai client")[1]


@pytest.fixture
def client(live_asgi, raw_key, fake_upstream):
    return openai.OpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, max_retries=0, timeout=20)


@pytest.fixture
def async_client(live_asgi, raw_key, fake_upstream):
    return openai.AsyncOpenAI(base_url=f"{live_asgi}/v1", api_key=raw_key, max_retries=0, timeout=20)


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What is 2+2?"},
]


def assert_stored(user, reply: str) -> Conversation:
    conversation = Conversation.objects.get(owner=user)
    assert conversation.source == Conversation.Source.OPENAI_API and conversation.system_prompt == "Be brief."
    assert list(conversation.turns.values_list("position", "role", "content", "status")) == [
        (1, "user", "Hi", "complete"), (2, "assistant", "Hello!", "complete"),
        (3, "user", "What is 2+2?", "complete"), (4, "assistant", reply, "complete"),
    ]
    return conversation


def test_sync_client_non_stream(client, user, fake_upstream):
    raw = client.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES)
    completion = raw.parse()
    reply = fake_upstream.behaviour.reply
    assert completion.choices[0].message.content == reply
    assert completion.choices[0].finish_reason == "stop" and completion.object == "chat.completion"
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    conversation = assert_stored(user, reply)
    assert raw.headers["X-Chatsite-Conversation"] == str(conversation.pk)
    assert fake_upstream.chat_requests[-1].messages == MESSAGES  # history as stored, in order


def test_sync_client_stream_with_usage(client, user, fake_upstream):
    stream = client.chat.completions.create(
        model="fake-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == fake_upstream.behaviour.reply
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert_stored(user, text)


async def test_async_client_non_stream_and_stream(async_client, user, fake_upstream):
    completion = await async_client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert completion.choices[0].message.content == fake_upstream.behaviour.reply
    stream = await async_client.chat.completions.create(model="fake-model", messages=MESSAGES, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == fake_upstream.behaviour.reply
    # The same history resent by the same key continues its conversation: the question again is a new branch.
    count = await Conversation.objects.filter(owner=user, source=Conversation.Source.OPENAI_API).acount()
    assert count == 1
    assert await Turn.objects.filter(conversation__owner=user, role="assistant", status="complete").acount() == 3
    assert await Turn.objects.filter(conversation__owner=user, position=3).acount() == 2


def test_continue_a_conversation_by_header_or_metadata(client, user, other_user, fake_upstream):
    first = client.chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": "one"}]
    )
    conversation_id = first.headers["X-Chatsite-Conversation"]
    client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "two"}],
        extra_headers={"X-Chatsite-Conversation": conversation_id},
    )
    stream = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "three"}], stream=True,
        metadata={"chatsite_conversation_id": conversation_id},
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == fake_upstream.behaviour.reply
    conversation = Conversation.objects.get(pk=conversation_id)
    assert [t.content for t in conversation.turns.filter(role="user")] == ["one", "two", "three"]
    assert [m["content"] for m in fake_upstream.chat_requests[-1].messages if m["role"] == "user"] == [
        "one", "two", "three",
    ]

    foreign = conversation_create(owner=other_user)
    requests_before = len(fake_upstream.chat_requests)
    for header in [str(foreign.pk), "not-a-uuid"]:
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(
                model="fake-model", messages=[{"role": "user", "content": "sneak"}],
                extra_headers={"X-Chatsite-Conversation": header},
            )
        assert caught.value.body["code"] == "not_found" and caught.value.body["message"]
    assert foreign.turns.count() == 0 and len(fake_upstream.chat_requests) == requests_before


def test_models_and_errors(client, live_asgi, fake_upstream):
    assert [m.id for m in client.models.list()] == ["fake-model", "text-embedding-3-small"]
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=[{"role": "assistant", "content": "hi"}])
    assert caught.value.body["code"] == "invalid" and caught.value.body["type"] == "invalid_request_error"
    bad = openai.OpenAI(base_url=f"{live_asgi}/v1", api_key="cs_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert fake_upstream.chat_requests == []


def test_upstream_failure_mid_stream_raises_in_the_client(client, user, fake_upstream):
    fake_upstream.behaviour.drop_after = 2
    stream = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert caught.value.body["code"] == "upstream_stream_broken"
    answer = Turn.objects.get(conversation__owner=user, role="assistant")
    assert answer.status == Turn.Status.FAILED


async def settled_answer(conversation) -> Turn | None:
    """The conversation's first answer once it is no longer pending (up to 5 s).

    Retries a read that meets the server thread's write: the in-memory SQLite test database is shared
    with it, and concurrent access there fails with "table is locked".
    """
    answer = None
    for _ in range(50):
        await asyncio.sleep(0.1)
        try:
            answer = await Turn.objects.aget(conversation=conversation, position=2)
        except OperationalError:
            continue
        if answer.status != Turn.Status.PENDING:
            break
    return answer


async def test_a_rest_client_that_disconnects_mid_answer_still_gets_it_written(live_asgi, raw_key, user, fake_upstream):
    fake_upstream.behaviour.tokens = 120
    fake_upstream.behaviour.token_delay = 0.005
    conversation = await Conversation.objects.acreate(owner=user)
    url = f"{live_asgi}/api/v1/conversations/{conversation.pk}/turns/"
    async with aiohttp.ClientSession() as session, session.post(url, json={"content": "long", "stream": True},
                            headers={"Authorization": f"Bearer {raw_key}"}) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        deltas = 0
        async for line in response.content:
            if line.startswith(b"event: delta"):
                deltas += 1
            if deltas == 3:
                break
        response.close()  # drop the connection mid-answer
    # Wait for the upstream side first, without touching the database: the in-memory SQLite test database
    # is shared with the server thread, and concurrent access there fails with "table is locked".
    for _ in range(250):
        if fake_upstream.completed:
            break
        await asyncio.sleep(0.02)
    answer = await settled_answer(conversation)
    assert answer.status == Turn.Status.COMPLETE and len(answer.content.split()) == 120
    assert not fake_upstream.chat_requests[-1].disconnected


async def test_an_openai_client_that_disconnects_mid_answer_cancels_it(live_asgi, raw_key, user, fake_upstream):
    """As with OpenAI: on /v1, a streaming client that goes away stops the answer (kept as cancelled)."""
    fake_upstream.behaviour.tokens = 500
    fake_upstream.behaviour.token_delay = 0.01
    async with aiohttp.ClientSession() as session, session.post(
        f"{live_asgi}/v1/chat/completions", headers={"Authorization": f"Bearer {raw_key}"},
        json={"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "long"}]},
    ) as response:
        assert response.status == 200
        conversation_id = response.headers["X-Chatsite-Conversation"]
        chunks = 0
        async for line in response.content:
            chunks += line.startswith(b"data: {")
            if chunks == 4:
                break
        response.close()
    for _ in range(250):
        if fake_upstream.chat_requests[-1].disconnected:
            break
        await asyncio.sleep(0.02)
    assert fake_upstream.chat_requests[-1].disconnected  # the upstream request was closed, not left running
    answer = await settled_answer(await Conversation.objects.aget(pk=conversation_id))
    assert answer.status == Turn.Status.CANCELLED
    assert answer.content.startswith("Hello from") and len(answer.content.split()) < 500


def upstream_connections(fake_upstream) -> int:
    """Open TCP connections from this process (the live server's thread) to the fake upstream."""
    return sum(1 for c in psutil.Process().net_connections("tcp")
               if c.raddr and c.raddr.port == fake_upstream.port and c.status == psutil.CONN_ESTABLISHED)


async def test_a_slow_reader_does_not_hold_up_the_answer(live_asgi, raw_key, user, fake_upstream, settings):
    """The client stops reading, so the server's send waits for the socket; the answer is written to its
    end regardless (it does not wait for its followers), and stored when the client leaves."""
    fake_upstream.behaviour.reply = "Hello from " + "x" * 8000
    fake_upstream.behaviour.tokens = 1500  # ~4 MB of text: more than the socket buffers hold
    settings.CHAT_MAX_ANSWER_TOKENS = 1500  # (the upstream cuts an answer at max_tokens)
    conversation = await Conversation.objects.acreate(owner=user)
    host, port = live_asgi.removeprefix("http://").split(":")
    body = b'{"content": "long", "stream": true}'
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /api/v1/conversations/{conversation.pk}/turns/ HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {raw_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    for _ in range(500):  # read no more; the upstream still finishes
        if fake_upstream.completed:
            break
        await asyncio.sleep(0.02)
    assert fake_upstream.completed == 1
    writer.transport.abort()  # leave without reading
    answer = await settled_answer(conversation)
    assert answer.status == Turn.Status.COMPLETE and len(answer.content.split()) == 1500
