"""The upstream transport (conversations.llm over aiohttp) against the fake upstream over real HTTP: what reaches
the model server, what comes back, and every way it fails."""

import asyncio
import json
import logging
import os
import ssl
import subprocess
import sys
import threading

import pytest
from aiohttp import web

from chatsite import observability
from conversations import errors, llm
from conversations.tests.fake_upstream import FakeUpstream
from tests.servers import free_port

KEY = "sk-test-SECRET-transport-key-0123456789"
HI = [{"role": "user", "content": "Hi"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}]


def make_backend(base_url: str, *, timeout: float = 5.0, max_retries: int = 0) -> llm.OpenAIBackend:
    return llm.OpenAIBackend(
        api_key=KEY, base_url=base_url, default_model="fake-model", timeout=timeout, max_retries=max_retries
    )


@pytest.fixture
async def backends(fake_upstream):
    """Backends pointed at the fake upstream; their sessions are closed on the test's own loop."""
    made: list[llm.OpenAIBackend] = []

    def make(base_url: str | None = None, **kwargs) -> llm.OpenAIBackend:
        made.append(make_backend(base_url or fake_upstream.base_url, **kwargs))
        return made[-1]

    yield make
    for backend in made:
        await backend.aclose()


@pytest.fixture
def quick_retries(monkeypatch):
    """Retry delays of milliseconds, so that a test of three attempts does not wait out the backoff."""
    monkeypatch.setattr(llm, "RETRY_INITIAL_DELAY", 0.01)


async def collect(backend, messages=HI, **kwargs) -> tuple[list, Exception | None]:
    """Everything the backend yielded, and what it raised at the end (if anything)."""
    items = []
    try:
        async for item in backend.stream(messages, model="fake-model", max_tokens=100, **kwargs):
            items.append(item)
    except errors.UpstreamError as exc:
        return items, exc
    return items, None


def text_of(items) -> str:
    return "".join(item.text for item in items if isinstance(item, llm.TextDelta))


async def test_an_answer_streams_as_text_and_ends_with_the_upstreams_usage(fake_upstream, backends):
    items, error = await collect(backends())
    assert error is None
    assert text_of(items) == fake_upstream.behaviour.reply
    finished = items[-1]
    assert isinstance(finished, llm.Finished) and not finished.usage_approximate
    assert (finished.finish_reason, finished.completion_tokens, finished.model) == ("stop", 11, "fake-model")
    (request,) = fake_upstream.chat_requests
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body["stream"] is True and request.body["stream_options"] == {"include_usage": True}
    assert request.messages == HI


async def test_a_connection_dropped_mid_answer_keeps_the_text_before_it_and_is_not_retried(
    fake_upstream, backends, quick_retries
):
    fake_upstream.behaviour.drop_after = 3
    items, error = await collect(backends(max_retries=2))
    assert isinstance(error, errors.UpstreamStreamBroken)
    assert text_of(items) == "Hello from the "
    assert not any(isinstance(item, llm.Finished) for item in items)
    assert len(fake_upstream.chat_requests) == 1  # after the first byte, never again


async def test_a_malformed_chunk_keeps_the_text_before_it(fake_upstream, backends):
    fake_upstream.behaviour.malformed_after = 3
    items, error = await collect(backends())
    assert isinstance(error, errors.UpstreamStreamBroken)
    assert text_of(items) == "Hello from the "


async def test_a_refused_connection_is_unavailable_at_once_not_a_timeout(backends):
    port = free_port()  # nothing listens there
    items, error = await collect(backends(f"http://127.0.0.1:{port}/v1", timeout=60))
    assert type(error) is errors.UpstreamUnavailable and items == []


async def test_tool_call_pieces_are_relayed_as_the_upstream_streamed_them(fake_upstream, backends):
    items, error = await collect(backends(), options={"tools": TOOLS})
    assert error is None
    calls = [item.tool_calls for item in items if isinstance(item, llm.ToolCallDelta)]
    # The fake sends the name, then the arguments in three pieces: four chunks, four deltas, each as sent.
    assert len(calls) == 4 and all(len(pieces) == 1 for pieces in calls)
    assert calls[0][0]["function"] == {"name": "get_weather", "arguments": ""} and calls[0][0]["id"]
    arguments = "".join(pieces[0]["function"]["arguments"] for pieces in calls)
    assert arguments == fake_upstream.behaviour.tool_arguments
    assert items[-1].finish_reason == "tool_calls"
    assert fake_upstream.chat_requests[0].body["tools"] == TOOLS


@pytest.mark.parametrize(
    ("status", "error_class", "message"),
    [
        (500, errors.UpstreamError, "HTTP 500"),
        (503, errors.UpstreamError, "HTTP 503"),
        (401, errors.UpstreamMisconfigured, "API key"),
        (403, errors.UpstreamMisconfigured, "API key"),
        (400, errors.UpstreamRejected, "HTTP 400"),
        (404, errors.UpstreamRejected, "HTTP 404"),
    ],
)
async def test_an_error_status_before_the_first_byte_is_an_error_with_that_status(
    fake_upstream, backends, status, error_class, message
):
    fake_upstream.behaviour.fail_status = status
    items, error = await collect(backends())
    assert type(error) is error_class and message in error.message and items == []
    assert KEY not in error.message


async def test_a_prompt_too_long_for_the_models_context_says_so(fake_upstream, backends):
    fake_upstream.behaviour.fail_status, fake_upstream.behaviour.fail_code = 400, "context_length_exceeded"
    items, error = await collect(backends())
    assert type(error) is errors.UpstreamContextTooLong and error.code == "context_length_exceeded"
    assert error.status == 502 and items == []


@pytest.mark.parametrize(("body", "too_long"), [
    ({"error": {"code": "context_length_exceeded", "message": "..."}}, True),  # OpenAI
    ({"error": {"type": "exceed_context_size_error", "message": "the request exceeds the available context size"}},
     True),  # llama.cpp's server
    ({"error": {"message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
                "type": "BadRequestError", "code": 400}}, True),  # vLLM
    ({"error": {"message": "Invalid 'temperature'", "code": "invalid_value"}}, False),
    ({"error": "context_length_exceeded"}, False),
    ([], False),
], ids=["openai", "llama.cpp", "vllm", "other-error", "odd-shape", "not-an-object"])
def test_what_an_upstream_error_body_says_of_the_context(body, too_long):
    assert llm.says_context_too_long(json.dumps(body).encode()) is too_long
    assert llm.says_context_too_long(b"<html>Bad Request</html>") is False


async def test_a_rate_limit_passes_its_retry_after_on(fake_upstream, backends):
    fake_upstream.behaviour.fail_status = 429
    fake_upstream.behaviour.retry_after = "7"
    items, error = await collect(backends())
    assert type(error) is errors.UpstreamRateLimited and error.retry_after == 7


async def test_retries_happen_before_the_first_byte(fake_upstream, backends, quick_retries):
    fake_upstream.behaviour.fail_status = 500
    fake_upstream.behaviour.fail_count = 2
    items, error = await collect(backends(max_retries=2))
    assert error is None and text_of(items) == fake_upstream.behaviour.reply
    assert len(fake_upstream.chat_requests) == 3


async def test_retries_give_up_after_the_configured_number(fake_upstream, backends, quick_retries):
    fake_upstream.behaviour.fail_status = 429
    fake_upstream.behaviour.retry_after = "3600"  # too long to wait out: the backoff's delays are used
    items, error = await collect(backends(max_retries=2))
    assert type(error) is errors.UpstreamRateLimited and error.retry_after == 3600
    assert len(fake_upstream.chat_requests) == 3


async def test_a_refused_connection_is_retried_like_the_sdk_did(backends, monkeypatch):
    fake = FakeUpstream()
    fake.port = free_port()
    backend = backends(fake.base_url, max_retries=3)

    async def serve_after_the_first_refusal():
        await asyncio.sleep(0.05)
        runner = web.AppRunner(fake.app())
        await runner.setup()
        await web.TCPSite(runner, fake.host, fake.port).start()
        return runner

    server = asyncio.create_task(serve_after_the_first_refusal())
    monkeypatch.setattr(llm, "RETRY_INITIAL_DELAY", 0.2)  # the server is up by the second attempt
    items, error = await collect(backend)
    await backend.aclose()
    await (await server).cleanup()
    assert error is None and text_of(items) == fake.behaviour.reply
    assert len(fake.chat_requests) == 1


async def test_a_silent_upstream_is_a_timeout(fake_upstream, backends):
    fake_upstream.behaviour.hang = True
    items, error = await collect(backends(timeout=0.3))
    assert type(error) is errors.UpstreamTimeout and items == []


async def test_an_upstream_that_stalls_mid_answer_is_a_timeout_after_its_text(fake_upstream, backends):
    fake_upstream.behaviour.tokens = 3
    fake_upstream.behaviour.token_delay = 2.0
    items, error = await collect(backends(timeout=0.3))
    assert type(error) is errors.UpstreamTimeout
    assert text_of(items) == "Hello "


async def test_the_request_id_is_forwarded(fake_upstream, backends):
    token = observability.log_context.set({"request_id": "req-transport-42"})
    try:
        await collect(backends())
    finally:
        observability.log_context.reset(token)
    await collect(backends())  # outside a request: no header
    first, second = fake_upstream.chat_requests
    assert first.headers["X-Request-ID"] == "req-transport-42"
    assert "X-Request-ID" not in second.headers


async def test_no_key_no_authorization_header(fake_upstream):
    backend = llm.OpenAIBackend(api_key="", base_url=fake_upstream.base_url, default_model="m", timeout=5,
                                max_retries=0)
    try:
        await collect(backend)
    finally:
        await backend.aclose()
    assert "Authorization" not in fake_upstream.chat_requests[0].headers


async def test_the_key_is_never_logged(fake_upstream, backends, caplog, quick_retries):
    caplog.set_level(logging.DEBUG)
    backend = backends(max_retries=1)
    await collect(backend)
    for fault in ({"fail_status": 401}, {"fail_status": 500}, {"drop_after": 2}, {"malformed_after": 1}):
        fake_upstream.behaviour = type(fake_upstream.behaviour)(**fault)
        await collect(backend)
    assert "upstream" in caplog.text  # the failures were logged...
    assert KEY not in caplog.text and KEY[-12:] not in caplog.text  # ...without the key


async def test_one_session_per_event_loop_reusing_its_connections(fake_upstream, backends):
    backend = backends()
    await collect(backend)
    await collect(backend)
    other_loop: list = []
    thread = threading.Thread(target=lambda: other_loop.append(asyncio.run(_collect_and_close(backend))))
    thread.start()
    thread.join(10)
    await collect(backend)
    first, second, other, third = (request.peer for request in fake_upstream.chat_requests)
    assert first == second == third  # this loop's pooled connection, reused
    assert other != first  # another loop: its own session and connection
    assert text_of(other_loop[0][0]) == fake_upstream.behaviour.reply


async def _collect_and_close(backend):
    try:
        return await collect(backend)
    finally:
        await backend.aclose()


async def test_closing_the_sessions_closes_their_connections(fake_upstream, backends):
    backend = backends()
    await collect(backend)
    await llm.close_sessions()
    await collect(backend)  # a new session, a new connection
    first, second = (request.peer for request in fake_upstream.chat_requests)
    assert first != second


def test_sessions_on_a_running_loop_are_closed_at_exit(fake_upstream):
    """As under the answer engine: a loop in a daemon thread, never closed; the process exits quietly."""
    script = f"""
import asyncio, threading
from conversations import llm
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()
backend = llm.OpenAIBackend(api_key="", base_url="{fake_upstream.base_url}", default_model="m", timeout=5,
                            max_retries=0)
async def answer():
    return [item async for item in backend.stream([{{"role": "user", "content": "Hi"}}], model="m", max_tokens=9)]
print(len(asyncio.run_coroutine_threadsafe(answer(), loop).result(10)))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings_test"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "10"  # nine deltas and Finished
    assert "Unclosed" not in done.stderr, done.stderr


async def test_hundreds_of_answers_stream_at_once(fake_upstream, backends):
    """More concurrent answers than aiohttp's default pool (100): none waits for another's connection."""
    fake_upstream.behaviour.ttft = 3.0
    backend = backends(timeout=30)
    streams = [asyncio.create_task(collect(backend)) for _ in range(150)]
    for _ in range(200):
        if len(fake_upstream.chat_requests) == 150:
            break
        await asyncio.sleep(0.05)
    assert len(fake_upstream.chat_requests) == 150 and fake_upstream.completed == 0
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    for _ in range(200):  # the fake's handlers end too (so none writes into the next test's counts)
        if fake_upstream.completed + fake_upstream.disconnects == 150:
            break
        await asyncio.sleep(0.05)


def test_tls_is_verified_against_the_systems_trust_store():
    context = llm.tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the system's CA certificates, loaded


@pytest.fixture
def self_signed(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return cert, server


async def test_https_upstreams_must_present_a_trusted_certificate(self_signed, monkeypatch):
    cert, server_context = self_signed
    fake = FakeUpstream()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_context).start()
    url = f"https://127.0.0.1:{port}/v1"
    try:
        untrusted = make_backend(url)
        items, error = await collect(untrusted)
        await untrusted.aclose()
        assert type(error) is errors.UpstreamUnavailable and fake.chat_requests == []

        # The same server once its certificate is in the trust store OpenSSL loads (SSL_CERT_FILE names it).
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        llm.tls_context.cache_clear()
        trusted = make_backend(url)
        items, error = await collect(trusted)
        await trusted.aclose()
        assert error is None and text_of(items) == fake.behaviour.reply
    finally:
        llm.tls_context.cache_clear()
        await runner.cleanup()


# --- Token counts -----------------------------------------------------------------------------------


@pytest.fixture
async def local_backend(fake_upstream):
    """The embedded model's backend, its server played by the fake upstream (same routes as llama.cpp's)."""
    backend = llm.LocalServerBackend(port=fake_upstream.port, model_name="fake-model", n_ctx=2048, timeout=5,
                                     max_retries=0)
    yield backend
    await backend.aclose()


def tokenize_requests(fake):
    return [r for r in fake.requests if r.path == "/extras/tokenize/count"]


async def test_counting_tokens_on_the_event_loop_never_blocks_it(fake_upstream, local_backend):
    fake_upstream.behaviour.ttft = 0.5  # the tokenizer answers slowly
    ticks = 0
    counting = asyncio.create_task(local_backend.count_tokens_async("one two three"))
    while not counting.done():
        ticks += 1
        await asyncio.sleep(0.02)
    assert counting.result() == 3  # the model's count (the fake's: one a word), not the 3-bytes estimate (5)
    assert ticks >= 5  # the loop ran other work meanwhile (a blocking call would have let it tick once)


async def test_sync_and_async_counts_agree_and_share_one_cache(fake_upstream, local_backend):
    assert await local_backend.count_tokens_async("a b c d") == 4
    assert await asyncio.to_thread(local_backend.count_tokens, "a b c d") == 4
    assert await asyncio.to_thread(local_backend.count_tokens, "e f") == 2
    assert await local_backend.count_tokens_async("e f") == 2
    assert len(tokenize_requests(fake_upstream)) == 2  # each text asked for once
    message = {"role": "user", "content": "a b c d"}
    assert await local_backend.message_tokens_async(message) == local_backend.message_tokens(message) == 8


async def test_counts_fall_back_to_the_estimate_when_the_tokenizer_is_away():
    backend = llm.LocalServerBackend(port=free_port(), model_name="m", n_ctx=2048, timeout=5, max_retries=0)
    try:
        assert await backend.count_tokens_async("Hello world, again") == llm.approximate_tokens("Hello world, again")
    finally:
        await backend.aclose()


async def test_usage_is_counted_without_blocking_when_the_upstream_sends_none(fake_upstream, local_backend):
    fake_upstream.behaviour.include_usage = False
    items, error = await collect(local_backend)
    finished = items[-1]
    assert error is None and finished.usage_approximate
    assert finished.completion_tokens == len(fake_upstream.behaviour.reply.split())  # the tokenizer's count
    assert len(tokenize_requests(fake_upstream)) == 2  # the prompt's message and the answer
