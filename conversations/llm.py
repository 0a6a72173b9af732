"""Model backends behind one small interface: the only module that talks to model servers.

A backend streams an answer for a list of OpenAI-style messages as `TextDelta` items (and `ToolCallDelta`
items when the model calls tools) and ends with one `Finished` (usage and finish reason). Failures are
raised as `conversations.errors` exceptions, so no caller ever sees an SDK type, a stack trace or a key.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import ssl
import threading
import time
import urllib.request
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from chatsite import metrics, observability
from conversations import errors
from conversations.messages import ModelMessage, ToolCallChunk, message_text

if TYPE_CHECKING:
    import openai

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

    def stream(
        self, messages: list[ModelMessage], *, model: str, max_tokens: int, options: dict[str, Any] | None = None
    ) -> AsyncGenerator[StreamItem, None]:
        """Stream an answer. `options`: Chat Completions parameters from the caller (temperature, stop, seed,
        max_completion_tokens, response_format...), validated by the caller and sent as given."""
        raise NotImplementedError

    def refused_option(self, options: dict[str, Any]) -> tuple[str, str] | None:
        """(parameter, reason) for the first option this backend cannot honour; None if it can honour all."""
        return None

    def count_tokens(self, text: str) -> int:
        return approximate_tokens(text)

    def message_tokens(self, message: ModelMessage) -> int:
        content, text = message.get("content"), message_text(message)
        images = sum(part["type"] == "image_url" for part in content) if isinstance(content, list) else 0
        if message.get("tool_calls"):
            text += json.dumps(message["tool_calls"])
        return self.count_tokens(text) + IMAGE_TOKENS * images + MESSAGE_OVERHEAD_TOKENS

    def context_tokens(self, model: str) -> int:
        return settings.CHAT_CONTEXT_TOKENS_BY_MODEL.get(model, settings.CHAT_CONTEXT_TOKENS)

    def models(self) -> list[str]:
        extra = [name for name in settings.CHAT_MODELS if name != self.default_model]
        return [self.default_model, *extra]

    def state(self) -> str:
        raise NotImplementedError


# --- OpenAI and OpenAI-compatible servers -------------------------------------------------------


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


@functools.cache
def _tls_context() -> ssl.SSLContext:
    import httpx2  # the openai SDK's HTTP client: the same trust store it would load per client

    return httpx2.create_ssl_context()


CLIENTS_PER_LOOP = 8


class OpenAIBackend(Backend):
    name = "openai"
    state_ttl = STATE_TTL

    def __init__(
        self, *, api_key: str, base_url: str, default_model: str, timeout: float, max_retries: int,
        sampling: dict[str, Any] | None = None,
    ):
        self._api_key = api_key
        self._base_url = base_url or None
        self._sampling = sampling or {}
        self._state: tuple[float, str] = (-math.inf, DOWN)
        self.default_model = default_model
        self._timeout = timeout
        self._max_retries = max_retries
        # An AsyncOpenAI client's connection pool belongs to the event loop that created it.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[openai.AsyncOpenAI]] = (
            weakref.WeakKeyDictionary()
        )
        self._turn = 0

    def _client(self) -> openai.AsyncOpenAI:
        """One of this event loop's clients, in turn.

        The HTTP connection pool under the SDK (httpcore) walks every pooled connection, probing idle
        ones' sockets, each time a request starts or ends: with hundreds of answers streaming at once
        that is O(connections) per request. Spreading requests over CLIENTS_PER_LOOP clients keeps each
        pool small (what one pool cost under load: bench/ANALYSIS.md).
        """
        loop = asyncio.get_running_loop()
        clients = self._clients.setdefault(loop, [])
        if len(clients) < CLIENTS_PER_LOOP:
            clients.append(self._new_client())
            return clients[-1]
        self._turn = (self._turn + 1) % len(clients)
        return clients[self._turn]

    def _new_client(self) -> openai.AsyncOpenAI:
        import openai

        return openai.AsyncOpenAI(
            # Self-hosted servers often need no key, but the SDK insists on one.
            api_key=self._api_key or "not-needed",
            base_url=self._base_url,
            timeout=self._timeout,
            max_retries=self._max_retries,
            # Loading CA certificates is most of a client's start-up cost: do it once per process.
            http_client=openai.DefaultAsyncHttpxClient(verify=_tls_context()),
        )

    def state(self) -> str:
        """up, starting or down; probed at most every `state_ttl` seconds per process (health checks poll)."""
        checked_at, state = self._state
        if time.monotonic() - checked_at > self.state_ttl:
            state = self._probe_state()
            self._state = (time.monotonic(), state)
        return state

    def _probe_state(self) -> str:
        url = (self._base_url or "https://api.openai.com/v1").rstrip("/") + "/models"
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http(s) base URL from settings)
            with urllib.request.urlopen(request, timeout=STATE_TIMEOUT, context=_tls_context()):  # noqa: S310
                return UP
        except (OSError, ValueError):
            return DOWN

    def _translate(self, exc: Exception) -> errors.UpstreamError:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return errors.UpstreamTimeout()
        if isinstance(exc, openai.APIConnectionError):
            return errors.UpstreamUnavailable()
        if isinstance(exc, openai.RateLimitError):
            return errors.UpstreamRateLimited(retry_after=_retry_after(exc.response))
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return errors.UpstreamMisconfigured()
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500:
                return errors.UpstreamError(f"The model service failed (HTTP {exc.status_code}).")
            return errors.UpstreamRejected(f"The model service rejected the request (HTTP {exc.status_code}).")
        return errors.UpstreamStreamBroken()

    async def stream(
        self, messages: list[ModelMessage], *, model: str, max_tokens: int, options: dict[str, Any] | None = None
    ) -> AsyncGenerator[StreamItem, None]:
        """Stream through the SDK's client (its retries, timeouts and error types), reading the raw SSE lines.

        Parsing the lines ourselves skips building an SDK object per chunk, a cost paid for every streamed
        token (bench/ANALYSIS.md). Deltas that arrive in one network read are sent on as one.
        """
        import openai

        client = self._client()
        parts: list[str] = []
        usage = None
        finish_reason = ""
        answered_model = model
        streaming = False
        body = {
            **self._sampling, "model": model, "messages": messages, "max_tokens": max_tokens, **(options or {}),
            "stream": True, "stream_options": {"include_usage": True},
        }
        if "max_completion_tokens" in body and "max_tokens" not in (options or {}):
            del body["max_tokens"]  # the caller's newer name for it: OpenAI refuses both at once
        try:
            # The client's own `post` (what `chat.completions.create` calls after turning its typed
            # arguments into this same JSON body, walking every message of the history on every request; see
            # bench/ANALYSIS.md): the SDK's auth, retries, timeouts and errors, and an unread response.
            request_id = observability.current("request_id")
            response = await client.post(
                "/chat/completions", body=body, cast_to=object, stream=True, stream_cls=openai.AsyncStream[object],
                options={"security": {"bearer_auth": True},
                         **({"headers": {"X-Request-ID": request_id}} if request_id else {})},
            )
            metrics.upstream_request(str(response.response.status_code))
            async with response:
                streaming = True
                pending = b""
                async for data in response.response.aiter_bytes():
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    texts, calls = [], []
                    for line in lines:
                        if not line.startswith(b"data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == b"[DONE]":
                            continue
                        chunk = json.loads(payload)
                        if chunk.get("error"):
                            raise errors.UpstreamError()
                        answered_model = chunk.get("model") or answered_model
                        if chunk.get("usage"):
                            usage = chunk["usage"]
                        for choice in chunk.get("choices") or ():
                            delta = choice.get("delta") or {}
                            text = delta.get("content")
                            if text:
                                texts.append(text)
                            if delta.get("tool_calls"):
                                calls.extend(delta["tool_calls"])
                            if choice.get("finish_reason"):
                                finish_reason = choice["finish_reason"]
                    if texts:
                        text = "".join(texts)
                        parts.append(text)
                        yield TextDelta(text)
                    if calls:
                        yield ToolCallDelta(calls)
        except openai.OpenAIError as exc:
            logger.warning("upstream error: %s", type(exc).__name__)
            if not streaming:
                metrics.upstream_request(
                    str(exc.status_code) if isinstance(exc, openai.APIStatusError)
                    else "timeout" if isinstance(exc, openai.APITimeoutError) else "connection"
                )
            if streaming and isinstance(exc, openai.APIConnectionError):
                raise errors.UpstreamStreamBroken() from None  # dropped mid-answer
            raise self._translate(exc) from None
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            # Malformed chunks (JSON errors are ValueErrors), or the connection dropped mid-answer.
            logger.warning("upstream stream broken: %s", type(exc).__name__)
            raise errors.UpstreamStreamBroken() from None
        except Exception as exc:
            if type(exc).__module__.startswith(("httpx", "httpcore", "h11", "anyio")):
                logger.warning("upstream stream broken: %s", type(exc).__name__)
                raise errors.UpstreamStreamBroken() from None
            raise

        if not finish_reason:
            # The stream ended without saying it was finished: treat as broken, keep the partial text.
            raise errors.UpstreamStreamBroken()
        if usage is not None:
            yield Finished(
                finish_reason, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                False, answered_model,
            )
        else:
            prompt = sum(self.message_tokens(m) for m in messages)
            yield Finished(finish_reason, prompt, self.count_tokens("".join(parts)), True, answered_model)


# --- The embedded local model: its own server process (conversations.model_server) ------------------


class LocalServerBackend(OpenAIBackend):
    """The embedded model, served by llama.cpp's OpenAI-compatible server on 127.0.0.1.

    Answers take the same path as any OpenAI-compatible server. What differs: the context window is the
    model's own, token counts come from the model's own tokenizer (the server's tokenize endpoint; the
    approximation if it is down), and its state (up, starting, down) is known from its supervisor.
    """

    name = "local"
    state_ttl = 0.0  # a connect and a file read on this machine: always fresh

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
        self._exact_count = functools.lru_cache(maxsize=4096)(self._tokenizer_count)

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
        try:
            return self._exact_count(text)
        except (OSError, ValueError, KeyError, TypeError):
            # The model server is down or restarting: trim with the estimate rather than fail the turn.
            return approximate_tokens(text)

    def _tokenizer_count(self, text: str) -> int:
        request = urllib.request.Request(  # noqa: S310 (http on 127.0.0.1)
            self._tokenize_url, data=json.dumps({"input": text}).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with urllib.request.urlopen(request, timeout=TOKENIZE_TIMEOUT) as response:  # noqa: S310 (loopback)
            return int(json.loads(response.read())["count"])

    def _probe_state(self) -> str:
        from conversations import model_server

        if super()._probe_state() == UP:
            return UP
        recorded = model_server.read_state(self.port).get("state")
        return STARTING if recorded == STARTING else DOWN


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
