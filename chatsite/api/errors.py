"""The API's one error shape, `{"error": {"code", "message", "fields"?}}`, made by one handler."""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from chatsite import metrics, observability
from conversations.errors import ChatError, DatabaseUnavailable

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    error: dict[str, object] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    request_id = observability.current("request_id")
    if request_id:
        error["request_id"] = request_id  # the same as the X-Request-ID header, to quote in a report
    return {"error": error}


def error_response(code: str, message: str, status_code: int, *, fields=None, retry_after=None):
    """A plain Django JsonResponse in the API's error shape (for non-DRF views: SSE, /v1, healthz)."""
    response = JsonResponse(error_body(code, message, fields), status=status_code)
    if retry_after is not None:
        response["Retry-After"] = str(int(retry_after))
    return response


def chat_error_response(exc: ChatError):
    return error_response(exc.code, exc.message, exc.status, retry_after=exc.retry_after)


def is_database_unavailable(exc: BaseException | None) -> bool:
    """The connection to the database failed or was lost (or timed out): retrying soon may work.

    Looks through the exception's causes too, since a failing query is often re-raised as something else.
    """
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OperationalError | InterfaceError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def database_unavailable_response():
    return chat_error_response(DatabaseUnavailable(retry_after=DATABASE_RETRY_AFTER_SECONDS))


def _flatten(detail):
    if isinstance(detail, list):
        return [str(item) for item in detail]
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    return [str(detail)]


REFUSAL_CODES = {"quota_exceeded", "busy"}


def exception_handler(exc, context):
    if isinstance(exc, exceptions.Throttled):
        metrics.refused("throttled")
    elif isinstance(exc, ChatError) and exc.code in REFUSAL_CODES:
        metrics.refused(exc.code)
    if isinstance(exc, ChatError):
        return chat_error_response(exc)
    if isinstance(exc, RequestDataTooBig):
        return error_response("request_too_large", "The request body is too large.", 413)
    if is_database_unavailable(exc):
        logger.error("database unavailable", exc_info=exc)
        return database_unavailable_response()
    if isinstance(exc, (RedisError, ConnectionInterrupted)):  # ConnectionInterrupted: django-redis's wrapper
        # Throttles, quotas and running answers live in the shared cache: without it, refuse clearly.
        logger.error("shared cache unavailable: %s", type(exc).__name__)
        return error_response(
            "cache_unavailable", "The service is briefly unavailable. Please retry in a few seconds.", 503,
            retry_after=DATABASE_RETRY_AFTER_SECONDS,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            non_field = detail.get("non_field_errors")
            message = str(non_field[0]) if isinstance(non_field, list) and non_field else "Some fields are invalid."
            body = error_body("invalid", message, _flatten(detail))
        else:
            messages = _flatten(detail)
            body = error_body("invalid", messages[0] if messages else "Invalid input.")
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if not isinstance(code, str):
            code = "error"
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            code = "not_authenticated"
            response.status_code = status.HTTP_401_UNAUTHORIZED
        body = error_body(code, str(getattr(exc, "detail", exc)))
    response.data = body
    return response
