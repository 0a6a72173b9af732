"""Assertions shared by the suites that talk to the API: the one error shape, and PostgreSQL-only tests."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.servers import ROOT, UPSTREAM_SECRET

__all__ = ["ROOT", "UPSTREAM_SECRET", "assert_error_shape", "requires_postgresql"]


def assert_error_shape(response, status: int | tuple[int, ...], code: str | None = None) -> dict:
    """The API's one error shape: `{"error": {"code": str, "message": str, "fields"?: ..., "request_id"?: str}}`."""
    statuses = (status,) if isinstance(status, int) else status
    body_text = response.content.decode(errors="replace") if hasattr(response, "content") else response.text
    assert response.status_code in statuses, (response.status_code, body_text[:500])
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), (content_type, body_text[:300])
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    allowed = {"code", "message", "fields", "request_id"}
    if "request_id" in error:  # the same id as the response's header, to quote in a report
        assert error["request_id"] == response.headers.get("X-Request-ID"), (error, dict(response.headers))
    if _request_path(response).startswith("/v1/"):
        allowed |= {"type", "param"}  # OpenAI's error fields too, for the official client's sake
    assert set(error) <= allowed, body
    if code is not None:
        assert error["code"] == code, body
    return error


def _request_path(response) -> str:
    request = getattr(response, "request", None)
    if isinstance(request, dict):  # Django's test clients: a WSGI environ, or an ASGI scope
        return request.get("PATH_INFO") or request.get("path", "")
    return request.url.path if request is not None else ""


def requires_postgresql(reason: str):
    if connection.vendor != "postgresql":
        pytest.skip(f"PostgreSQL only ({reason}); CI runs this file on PostgreSQL too")
