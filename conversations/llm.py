"""Model backends behind one small interface: the only module that talks to model servers.

A backend streams an answer for a list of OpenAI-style messages as `TextDelta` items (and `ToolCallDelta`
items when the model calls tools) and ends with one `Finished` (usage and finish reason). Failures are
raised as `conversations.errors` exceptions, so no caller ever sees an SDK type, a stack trace or a key.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import logging
import math
import random
import ssl
import threading
import time
import urllib.parse
import urllib.request
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from django.conf import settings
from django.utils import timezone

from chatsite import metrics, observability
from conversations import errors
from conversations.messages import ModelMessage, ToolCallChunk, message_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """Pieces of the model's tool calls, exactly as the upstream streamed them (OpenAI's `delta.tool_calls`)."""

    tool_calls: list[ToolCallChunk]


@dataclass(frozen=True)
class Finished:
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    usage_approximate: bool
    model: str


StreamItem = TextDelta | ToolCallDelta | Finished


@dataclass(frozen=True)
class Embeddings:
    """Vectors for a list of texts, in their order, and what the upstream counted for them."""

    vectors: list[list[float]]
    prompt_tokens: int
    model: str


def approximate_tokens(text: str) -> int:
    """Offline token estimate for upstreams whose tokenizer we don't have (no tiktoken: it downloads).

    One token per 3 UTF-8 bytes: about right for Korean, generous for English (~4.5 bytes a token),
    so context trimming errs on the side of fitting.
    """
    return math.ceil(len(text.encode("utf-8")) / 3)


MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators per message, as chat templates add
IMAGE_TOKENS = 800  # what one image part counts against the context budget (conversations.attachments)

# A model backend's state, as /healthz reports it.
UP, STARTING, DOWN = "up", "starting", "down"
STATE_TTL = 5.0
STATE_TIMEOUT = 2.0
TOKENIZE_TIMEOUT = 2.0


class Backend:
    """The interface both backends implement."""

    name: str
    default_model: str
    # Added to every chat's system prompt (after the chat's own): what this backend's models need told.
    system_note: str = ""
    # Why this backend computes no embeddings, or None when it does (its `embeddings`).
    embeddings_refused: str | None = "The configured model backend computes no embeddings."

    def stream(
        self, messages: list[ModelMessage], *, model: str, max_tokens: int, options: dict[str, Any] | None = None
    ) -> AsyncGenerator[StreamItem, None]:
        """Stream an answer. `options`: Chat Completions parameters from the caller (temperature, stop, seed,
        max_completion_tokens, response_format...), validated by the caller and sent as given."""
        raise NotImplementedError

    def refused_option(self, options: dict[str, Any]) -> tuple[str, str] | None:
        """(parameter, reason) for the first option this backend cannot honour; None if it can honour all."""
        return None

    async def embeddings(self, texts: list[str], *, model: str, dimensions: int | None = None) -> Embeddings:
        """One vector per text; errors.EmbeddingsUnsupported when this backend has no embedding model."""
        raise errors.EmbeddingsUnsupported(self.embeddings_refused)

    # Token counts come in two forms. `count_tokens` and `message_tokens` may block (the embedded model's
    # tokenizer is an HTTP call): for sync code in a thread (services run through sync_to_async, attachments,
    # management commands). Code on an event loop awaits `count_tokens_async` and `message_tokens_async`, which
    # never block it. Both give the same numbers.

    def count_tokens(self, text: str) -> int:
        return approximate_tokens(text)

    async def count_tokens_async(self, text: str) -> int:
        return approximate_tokens(text)

    def message_tokens(self, message: ModelMessage) -> int:
        text, images = self._counted_text(message)
        return self.count_tokens(text) + IMAGE_TOKENS * images + MESSAGE_OVERHEAD_TOKENS

    async def message_tokens_async(self, message: ModelMessage) -> int:
        text, images = self._counted_text(message)
        return await self.count_tokens_async(text) + IMAGE_TOKENS * images + MESSAGE_OVERHEAD_TOKENS

    @staticmethod
    def _counted_text(message: ModelMessage) -> tuple[str, int]:
        """What of a message counts against the context: its text (and tool calls), and its number of images."""
        content, text = message.get("content"), message_text(message)
        images = sum(part["type"] == "image_url" for part in content) if isinstance(content, list) else 0
        if message.get("tool_calls"):
            text += json.dumps(message["tool_calls"])
        return text, images

    def context_tokens(self, model: str) -> int:
        return settings.CHAT_CONTEXT_TOKENS_BY_MODEL.get(model, settings.CHAT_CONTEXT_TOKENS)

    def models(self) -> list[str]:
        extra = [name for name in settings.CHAT_MODELS if name != self.default_model]
        return [self.default_model, *extra]

    def state(self) -> str:
        raise NotImplementedError


# --- OpenAI and OpenAI-compatible servers -------------------------------------------------------

# Retries before the first byte of an answer (OPENAI_MAX_RETRIES of them), on the statuses and with the
# delays the openai SDK uses, so switching the transport changed no operator's expectations.
RETRY_STATUSES = frozenset({408, 409, 429})
RETRY_INITIAL_DELAY = 0.5
RETRY_MAX_DELAY = 8.0
RETRY_AFTER_LIMIT = 60.0  # a longer Retry-After is passed on to the caller, not waited out


def _retry_after(response: Any) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _should_retry(status: int, headers: Any) -> bool:
    explicit = headers.get("x-should-retry")  # OpenAI's own hint wins
    if explicit in ("true", "false"):
        return explicit == "true"
    return status in RETRY_STATUSES or status >= 500


def retry_delay(retries_so_far: int, retry_after: float | None) -> float:
    """Seconds to wait before the next attempt: the upstream's Retry-After when it is short, else an
    exponential backoff with jitter (0.5 s, 1 s, 2 s... at most 8 s, each up to a quarter shorter)."""
    if retry_after is not None and 0 < retry_after <= RETRY_AFTER_LIMIT:
        return retry_after
    return min(RETRY_INITIAL_DELAY * 2.0**retries_so_far, RETRY_MAX_DELAY) * (1 - 0.25 * random.random())


ERROR_BODY_BYTES = 8192  # of an upstream's error response, read for its reason

# How model servers say a prompt is longer than the model's context: OpenAI's error code, llama.cpp server's
# error type, and the words of vLLM's (and many others') message.
CONTEXT_TOO_LONG_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
CONTEXT_TOO_LONG_WORDS = ("maximum context length", "context length exceeded", "exceeds the available context")


def says_context_too_long(body: bytes) -> bool:
    """Whether an upstream's error body (OpenAI's shape: {"error": {"code", "type", "message"}}) says the prompt
    did not fit the model's context."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return False
    if not isinstance(error, dict):
        return False
    if error.get("code") in CONTEXT_TOO_LONG_CODES or error.get("type") in CONTEXT_TOO_LONG_CODES:
        return True
    message = str(error.get("message") or "").lower()
    return any(words in message for words in CONTEXT_TOO_LONG_WORDS)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Certificates checked against the system's trust store, host names verified; loaded once per process."""
    return ssl.create_default_context()


def _env_proxy(url: str) -> str | None:
    """The HTTP(S)_PROXY the environment sets for this URL (NO_PROXY honoured), looked up once."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class OpenAIBackend(Backend):
    """An OpenAI-compatible Chat Completions server, reached over aiohttp with one session per event loop.

    Not through the openai SDK's client: per request it costs three to four times what aiohttp alone does,
    and on its default HTTP stack more than twice as much per streamed token (bench/TRANSPORT.md). What the
    SDK gave is kept here: Bearer auth, retries before the first byte, named timeouts, TLS checked against
    the system's trust store, HTTP(S)_PROXY from the environment.
    """

    name = "openai"
    state_ttl = STATE_TTL
    embeddings_refused: str | None = None

    def __init__(
        self, *, api_key: str, base_url: str, default_model: str, timeout: float, max_retries: int,
        sampling: dict[str, Any] | None = None,
    ):
        self._base_url = (base_url or "https://api.openai.com/v1").rstrip("/")
        self._chat_url = f"{self._base_url}/chat/completions"
        self._embeddings_url = f"{self._base_url}/embeddings"
        self._proxy = _env_proxy(self._chat_url)
        self._sampling = sampling or {}
        self._state: tuple[float, str] = (-math.inf, DOWN)
        self.default_model = default_model
        self._timeout = timeout
        self._max_retries = max_retries
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:  # self-hosted servers often want none
            self._headers["Authorization"] = f"Bearer {api_key}"
        # A session (and its connection pool) belongs to the event loop that made it.
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        _open_backends.add(self)

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            for other in [other for other in self._sessions if other.is_closed()]:
                del self._sessions[other]  # nothing can run on a closed loop again
            session = self._sessions[loop] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    # No cap (aiohttp's default is 100): every streaming answer holds a connection for its whole
                    # length and a worker streams hundreds at once, so a cap would only make answers wait for
                    # others to end, and fail as timeouts. Idle connections are still pooled and reused.
                    limit=0,
                    ssl=tls_context() if self._chat_url.startswith("https:") else True,
                ),
                # Timeouts per step, as the SDK's were: connecting, and each wait for the next bytes.
                timeout=aiohttp.ClientTimeout(total=None, connect=self._timeout, sock_read=self._timeout),
            )
        return session

    async def aclose(self) -> None:
        """Close this event loop's session (its pooled connections); the next request opens a new one."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    def close_on_live_loops(self, *, timeout: float) -> None:
        """Close the sessions whose loops still run (in other threads) or wait; a closed loop's are left."""
        for loop, session in list(self._sessions.items()):
            with contextlib.suppress(Exception):  # the process is ending: a failure here changes nothing
                if loop.is_running():
                    asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout)
                elif not loop.is_closed():
                    loop.run_until_complete(session.close())

    def state(self) -> str:
        """up, starting or down; probed at most every `state_ttl` seconds per process (health checks poll)."""
        checked_at, state = self._state
        if time.monotonic() - checked_at > self.state_ttl:
            state = self._probe_state()
            self._state = (time.monotonic(), state)
        return state

    def _probe_state(self) -> str:
        headers = {"Authorization": self._headers["Authorization"]} if "Authorization" in self._headers else {}
        try:
            request = urllib.request.Request(f"{self._base_url}/models", headers=headers)  # noqa: S310 (from settings)
            with urllib.request.urlopen(request, timeout=STATE_TIMEOUT, context=tls_context()):  # noqa: S310
                return UP
        except (OSError, ValueError):
            return DOWN

    @staticmethod
    def _status_error(status: int, retry_after: float | None, body: bytes = b"") -> errors.UpstreamError:
        if status == 429:
            return errors.UpstreamRateLimited(retry_after=retry_after)
        if status in (401, 403):
            return errors.UpstreamMisconfigured()
        if status >= 500:
            return errors.UpstreamError(f"The model service failed (HTTP {status}).")
        if says_context_too_long(body):
            return errors.UpstreamContextTooLong()
        return errors.UpstreamRejected(f"The model service rejected the request (HTTP {status}).")

    async def _open_stream(self, body: bytes, *, url: str | None = None) -> aiohttp.ClientResponse:
        """POST the request (to Chat Completions, or `url`) and return the upstream's successful response, unread.

        Retries (up to `max_retries`) happen here and only here: before the answer's first byte. A refused
        connection fails at once (UpstreamUnavailable), a silent one after the timeout (UpstreamTimeout).
        """
        session = self._session()
        url = url or self._chat_url
        headers = self._headers if url == self._chat_url else {**self._headers, "Accept": "application/json"}
        request_id = observability.current("request_id")
        if request_id:
            headers = {**headers, "X-Request-ID": request_id}
        retries = 0
        while True:
            retry_after: float | None = None
            error: errors.UpstreamError
            try:
                response = await session.post(url, data=body, headers=headers, proxy=self._proxy)
            except TimeoutError:
                outcome, error, retryable = "timeout", errors.UpstreamTimeout(), True
            except (aiohttp.ClientError, OSError):  # refused, reset, name or TLS failure
                outcome, error, retryable = "connection", errors.UpstreamUnavailable(), True
            else:
                if 200 <= response.status < 300:
                    metrics.upstream_request(str(response.status))
                    return response
                retry_after = _retry_after(response)
                retryable = _should_retry(response.status, response.headers)
                error_body = b""
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    # The error's small body (read also so that the connection can be reused): it may say why.
                    error_body = (await response.read())[:ERROR_BODY_BYTES]
                response.release()
                outcome, error = str(response.status), self._status_error(response.status, retry_after, error_body)
            if not retryable or retries >= self._max_retries:
                logger.warning("upstream error: %s (%s)", type(error).__name__, outcome)
                metrics.upstream_request(outcome)
                raise error
            await asyncio.sleep(retry_delay(retries, retry_after))
            retries += 1

    async def stream(
        self, messages: list[ModelMessage], *, model: str, max_tokens: int, options: dict[str, Any] | None = None
    ) -> AsyncGenerator[StreamItem, None]:
        """Stream the answer, parsing the SSE lines as they arrive: one delta per upstream event, as it was
        streamed (text, or tool-call pieces). Each network read is consumed whole before its deltas are
        yielded, so a connection that drops right after its last bytes loses none of them: after the first
        byte nothing is retried, and UpstreamStreamBroken is raised after every delta that arrived."""
        parts: list[str] = []
        usage = None
        finish_reason = ""
        answered_model = model
        body = {
            **self._sampling, "model": model, "messages": messages, "max_tokens": max_tokens, **(options or {}),
            "stream": True, "stream_options": {"include_usage": True},
        }
        if "max_completion_tokens" in body and "max_tokens" not in (options or {}):
            del body["max_tokens"]  # the caller's newer name for it: OpenAI refuses both at once
        response = await self._open_stream(json.dumps(body).encode())
        try:
            async with response:  # releases the connection, or closes it when the answer was not read to its end
                pending = b""
                async for data in response.content.iter_any():
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    items: list[StreamItem] = []
                    failure: Exception | None = None
                    for line in lines:
                        if not line.startswith(b"data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == b"[DONE]":
                            continue
                        try:
                            chunk = json.loads(payload)
                            if chunk.get("error"):
                                failure = errors.UpstreamError()
                                break
                            answered_model = chunk.get("model") or answered_model
                            if chunk.get("usage"):
                                usage = chunk["usage"]
                            for choice in chunk.get("choices") or ():
                                delta = choice.get("delta") or {}
                                text = delta.get("content")
                                if text:
                                    parts.append(text)
                                    items.append(TextDelta(text))
                                if delta.get("tool_calls"):
                                    items.append(ToolCallDelta(delta["tool_calls"]))
                                if choice.get("finish_reason"):
                                    finish_reason = choice["finish_reason"]
                        except (ValueError, KeyError, TypeError, AttributeError) as exc:
                            failure = exc  # a malformed chunk (JSON errors are ValueErrors)
                            break
                    # What arrived before a failure in the same read is the answer's too: sent on first.
                    for item in items:
                        yield item
                    if failure is not None:
                        raise failure
        except TimeoutError:
            logger.warning("upstream stream stalled: no bytes for %s s", self._timeout)
            raise errors.UpstreamTimeout() from None
        except (aiohttp.ClientError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # The connection dropped mid-answer, or a malformed chunk.
            logger.warning("upstream stream broken: %s", type(exc).__name__)
            raise errors.UpstreamStreamBroken() from None

        if not finish_reason:
            # The stream ended without saying it was finished: treat as broken, keep the partial text.
            raise errors.UpstreamStreamBroken()
        if usage is not None:
            yield Finished(
                finish_reason, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                False, answered_model,
            )
        else:
            prompt = 0
            for message in messages:
                prompt += await self.message_tokens_async(message)
            completion = await self.count_tokens_async("".join(parts))
            yield Finished(finish_reason, prompt, completion, True, answered_model)


    async def embeddings(self, texts: list[str], *, model: str, dimensions: int | None = None) -> Embeddings:
        """The upstream's /embeddings, with the retries and timeouts of an answer (floats, in the texts' order)."""
        body: dict[str, Any] = {"model": model, "input": texts, "encoding_format": "float"}
        if dimensions is not None:
            body["dimensions"] = dimensions
        response = await self._open_stream(json.dumps(body).encode(), url=self._embeddings_url)
        try:
            async with response:
                payload = await response.json(content_type=None)
            rows = sorted(payload["data"], key=lambda row: row["index"])
            vectors = [[float(value) for value in row["embedding"]] for row in rows]
            if len(vectors) != len(texts):
                raise ValueError("one vector per text")
            usage = payload.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0) or sum(approximate_tokens(text) for text in texts)
            return Embeddings(vectors, prompt_tokens, payload.get("model") or model)
        except TimeoutError:
            raise errors.UpstreamTimeout() from None
        except (aiohttp.ClientError, OSError, ValueError, KeyError, TypeError, AttributeError):
            logger.warning("upstream embeddings: a malformed or broken response")
            raise errors.UpstreamError("The model service sent unreadable embeddings.") from None


_open_backends: weakref.WeakSet[OpenAIBackend] = weakref.WeakSet()


async def close_sessions() -> None:
    """Close every backend's session on the running loop: for a server's shutdown, before its loop closes."""
    for backend in list(_open_backends):
        await backend.aclose()


@atexit.register
def _close_sessions_at_exit() -> None:
    # The answer engine's loop runs in a daemon thread until the very end: its sessions are closed there, so
    # their sockets are not left to the garbage collector (which reports each as unclosed).
    for backend in list(_open_backends):
        backend.close_on_live_loops(timeout=1.0)


# --- The embedded local model: its own server process (conversations.model_server) ------------------


class _TokenCounts:
    """The most recently used token counts, shared by the sync and async counters (and their threads)."""

    def __init__(self, *, maxsize: int):
        self._maxsize = maxsize
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> int | None:
        with self._lock:
            count = self._counts.get(text)
            if count is not None:
                self._counts.move_to_end(text)
            return count

    def put(self, text: str, count: int) -> int:
        with self._lock:
            self._counts[text] = count
            if len(self._counts) > self._maxsize:
                self._counts.popitem(last=False)
        return count


class LocalServerBackend(OpenAIBackend):
    """The embedded model, served by llama.cpp's OpenAI-compatible server on 127.0.0.1.

    Answers take the same path as any OpenAI-compatible server. What differs: the context window is the
    model's own, token counts come from the model's own tokenizer (the server's tokenize endpoint; the
    approximation if it is down), and its state (up, starting, down) is known from its supervisor.
    """

    name = "local"
    state_ttl = 0.0  # a connect and a file read on this machine: always fresh
    # A 135M model otherwise writes programs as bare lines, whose comments render as headings.
    system_note = (
        "When you write code, put it in a Markdown code block: a line with ``` and the language before the code, "
        "and a line with ``` after it."
    )

    def __init__(self, *, port: int, model_name: str, n_ctx: int, timeout: float, max_retries: int):
        super().__init__(
            api_key="", base_url=f"http://127.0.0.1:{port}/v1", default_model=model_name,
            timeout=timeout, max_retries=max_retries,
            # A 135M model rambles at the server's default temperature (0.8).
            sampling={"temperature": 0.2, "top_p": 0.9},
        )
        self.port = port
        self._n_ctx = n_ctx
        self._tokenize_url = f"http://127.0.0.1:{port}/extras/tokenize/count"
        self._counts = _TokenCounts(maxsize=4096)  # one history is counted again on every turn

    def context_tokens(self, model: str) -> int:
        return settings.CHAT_CONTEXT_TOKENS_BY_MODEL.get(model, self._n_ctx)

    # What the embedded model cannot do (its chat template has no tool calling; llama.cpp's server has no
    # reasoning or service tiers): refused rather than ignored.
    _NO_TOOLS = "The embedded model (SmolLM2) cannot call tools; configure an upstream that can."
    REFUSED_OPTIONS = {
        "tools": _NO_TOOLS, "tool_choice": _NO_TOOLS, "parallel_tool_calls": _NO_TOOLS,
        "reasoning_effort": "The embedded model does not reason in steps: reasoning_effort has no meaning here.",
        "verbosity": "The embedded model's server has no verbosity setting.",
        "service_tier": "The embedded model has no service tiers.",
    }

    def refused_option(self, options: dict[str, Any]) -> tuple[str, str] | None:
        for name in options:
            if name in self.REFUSED_OPTIONS:
                return name, self.REFUSED_OPTIONS[name]
        return None

    embeddings_refused = (
        "The embedded model (SmolLM2) computes no embeddings: the site needs an upstream that serves /v1/embeddings "
        "(OPENAI_BASE_URL, with its models in EMBEDDING_MODELS)."
    )

    async def embeddings(self, texts: list[str], *, model: str, dimensions: int | None = None) -> Embeddings:
        raise errors.EmbeddingsUnsupported(self.embeddings_refused)

    async def stream(
        self, messages: list[ModelMessage], *, model: str, max_tokens: int, options: dict[str, Any] | None = None
    ) -> AsyncGenerator[StreamItem, None]:
        options = dict(options or {})
        if "max_completion_tokens" in options:  # llama.cpp's server knows only the older name
            options.setdefault("max_tokens", options.pop("max_completion_tokens"))
        response_format = options.get("response_format") or {}
        if response_format.get("type") == "json_schema":  # llama.cpp's form: a JSON object with a schema
            schema = (response_format.get("json_schema") or {}).get("schema")
            options["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
        async for item in super().stream(messages, model=model, max_tokens=max_tokens, options=options):
            yield item

    def models(self) -> list[str]:
        return [self.default_model]

    def count_tokens(self, text: str) -> int:
        """The model's own count (blocks up to TOKENIZE_TIMEOUT: never call it on an event loop)."""
        count = self._counts.get(text)
        if count is None:
            request = urllib.request.Request(  # noqa: S310 (http on 127.0.0.1)
                self._tokenize_url, data=json.dumps({"input": text}).encode(),
                headers={"Content-Type": "application/json"}, method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=TOKENIZE_TIMEOUT) as response:  # noqa: S310 (loopback)
                    count = self._counts.put(text, int(json.loads(response.read())["count"]))
            except (OSError, ValueError, KeyError, TypeError):
                # The model server is down or restarting: trim with the estimate rather than fail the turn.
                return approximate_tokens(text)
        return count

    async def count_tokens_async(self, text: str) -> int:
        """The model's own count, over this event loop's session: the loop goes on serving while it waits."""
        count = self._counts.get(text)
        if count is None:
            try:
                async with self._session().post(
                    self._tokenize_url, json={"input": text}, timeout=aiohttp.ClientTimeout(total=TOKENIZE_TIMEOUT),
                ) as response:
                    response.raise_for_status()
                    count = self._counts.put(text, int((await response.json())["count"]))
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError, TypeError):
                return approximate_tokens(text)
        return count

    def _probe_state(self) -> str:
        from conversations import model_server

        if super()._probe_state() == UP:
            return UP
        recorded = model_server.read_state(self.port).get("state")
        return STARTING if recorded == STARTING else DOWN


# --- Embeddings -----------------------------------------------------------------------------------


def embedding_models() -> list[str]:
    """The embedding models offered (EMBEDDING_MODELS), the default first."""
    return list(settings.EMBEDDING_MODELS)


async def embeddings(texts: list[str], *, model: str | None = None, dimensions: int | None = None) -> Embeddings:
    """Vectors for `texts` from the configured backend, with the tokens counted (EmbeddingsUnsupported when the
    backend has none; the upstream's failures as conversations.errors)."""
    if not texts:
        return Embeddings([], 0, model or "")
    backend = get_backend()
    chosen = model or next(iter(embedding_models()), "")
    return await backend.embeddings(texts, model=chosen, dimensions=dimensions)


async def embed(texts: list[str], *, model: str | None = None) -> list[list[float]]:
    """One vector per text, in order, from the default embedding model (or `model`): for code that only needs the
    vectors (knowledge retrieval)."""
    return (await embeddings(texts, model=model)).vectors


def embed_blocking(texts: list[str], *, model: str | None = None) -> list[list[float]]:
    """`embed` for sync code on a thread with no event loop running (the task worker, a service run in a thread): on
    a loop of its own, whose upstream session is closed before the loop ends."""

    async def embed_and_close() -> list[list[float]]:
        try:
            return await embed(texts, model=model)
        finally:
            await close_sessions()

    return asyncio.run(embed_and_close())


# --- Choosing the backend ------------------------------------------------------------------------

_backends: dict[tuple, Backend] = {}
_backends_lock = threading.Lock()


def get_backend() -> Backend:
    """The configured backend, created once per configuration (settings can change in tests)."""
    if settings.LLM_BACKEND == "local":
        key = (
            "local", settings.LOCAL_MODEL_PORT, settings.LOCAL_MODEL_NAME, settings.LOCAL_MODEL_CONTEXT,
            settings.OPENAI_TIMEOUT, settings.OPENAI_MAX_RETRIES,
        )
    else:
        key = (
            "openai", settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.OPENAI_MODEL,
            settings.OPENAI_TIMEOUT, settings.OPENAI_MAX_RETRIES,
        )
    with _backends_lock:
        backend = _backends.get(key)
        if backend is None:
            if key[0] == "local":
                backend = LocalServerBackend(
                    port=settings.LOCAL_MODEL_PORT, model_name=settings.LOCAL_MODEL_NAME,
                    n_ctx=settings.LOCAL_MODEL_CONTEXT, timeout=settings.OPENAI_TIMEOUT,
                    max_retries=settings.OPENAI_MAX_RETRIES,
                )
            else:
                backend = OpenAIBackend(
                    api_key=settings.OPENAI_API_KEY, base_url=settings.OPENAI_BASE_URL,
                    default_model=settings.OPENAI_MODEL, timeout=settings.OPENAI_TIMEOUT,
                    max_retries=settings.OPENAI_MAX_RETRIES,
                )
            _backends[key] = backend
        return backend
