"""What operators see: a request id on every request, response, error and log line; the context of each log
line (user, conversation, route); one access line per request; JSON logs for shippers (LOG_FORMAT=json).

The request's context lives in a context variable, so it follows the request into its thread, the answer
engine's task it starts (asyncio copies the context) and the upstream request (X-Request-ID).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from django.utils.functional import SimpleLazyObject

from chatsite import metrics
from chatsite.middleware import HybridMiddleware

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# request_id, user_id, conversation_id, surface: whatever is known so far in this request.
log_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("chatsite_log_context", default=None)
access_logger = logging.getLogger("chatsite.access")


def current(name: str):
    context = log_context.get()
    return context.get(name) if context else None


def annotate(**values) -> None:
    """Add to this request's log context (user_id, conversation_id...); nothing outside a request."""
    context = log_context.get()
    if context is not None:
        context.update({key: value for key, value in values.items() if value is not None})


def detached_context() -> contextvars.Context:
    """A context for work that outlives the request (an answer): this request's log context, and nothing else
    of the request's (no framework state bound to the request's threads)."""
    context = contextvars.Context()
    values = log_context.get()
    context.run(log_context.set, dict(values) if values is not None else None)
    return context


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when it is a sane one (1-128 of A-Z a-z 0-9 . _ : -), else a new one."""
    if header and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def surface_of(path: str) -> str:
    """Which product surface a request is: the OpenAI-compatible API, the prototype's /api/chat, REST, or pages."""
    if path.startswith("/v1/"):
        return "v1"
    if path.rstrip("/") == "/api/chat":
        return "api_chat"
    if path.startswith("/api/"):
        return "rest"
    return "page"


def _user_id(request, *, may_load: bool):
    """The request's user id, if known without a query (an API key's user is; a session's once loaded)."""
    user = request.__dict__.get("user")
    if user is None:
        return None
    if isinstance(user, SimpleLazyObject):
        if not may_load or not getattr(request, "session", None) or not request.session.accessed:
            return None
        user = request.user  # the view loaded it with the session (sync code only)
    return user.pk if user.is_authenticated else None


class RequestContextMiddleware(HybridMiddleware):
    """First in MIDDLEWARE: the request id (the client's or a new one) on the response, in error bodies
    (chatsite.api.errors) and on every log line; then one access line and the HTTP metrics per request.

    An exception inside is already a response when it gets here (Django converts it at each layer).
    """

    def process_request(self, request):
        request.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        context = {"request_id": request.request_id, "surface": surface_of(request.path)}
        request.log_context_token = log_context.set(context)
        request.started_at = time.perf_counter()

    def process_response(self, request, response):
        try:
            response[REQUEST_ID_HEADER] = request.request_id
            duration = time.perf_counter() - request.started_at
            match = getattr(request, "resolver_match", None)
            route = match.route if match is not None else "unmatched"
            annotate(user_id=_user_id(request, may_load=not self.is_async))
            metrics.http_request(route=route, method=request.method, status=response.status_code, seconds=duration)
            metrics.db_pool_state()
            access_logger.info(
                "%s %s %s %.1f ms", request.method, route, response.status_code, duration * 1000,
                extra={"route": route, "method": request.method, "status": response.status_code,
                       "duration_ms": round(duration * 1000, 1)},
            )
        finally:
            log_context.reset(request.log_context_token)
        return response


class ContextFilter(logging.Filter):
    """Puts the request's context on every record (for the text format's [request id] and the JSON fields)."""

    FIELDS = ("request_id", "user_id", "conversation_id")

    def filter(self, record):
        context = log_context.get() or {}
        for name in self.FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        record.request_id_text = record.request_id or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's context, and the access fields."""

    EXTRA = ("route", "method", "status", "duration_ms")

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for name in (*ContextFilter.FIELDS, *self.EXTRA):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
