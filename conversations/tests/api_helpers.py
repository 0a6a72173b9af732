"""Shared helpers for the REST API tests: the error-shape assertion and clients logged in for real."""

from django.test import Client
from django.utils.crypto import get_random_string
from rest_framework.test import APIClient


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is `status` in the one error shape; returns the error object."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def session_client(username: str, password: str) -> APIClient:
    """An APIClient with a session from a real login POST, CSRF enforced, and a matching CSRF token.

    Sends the token on every request; `client.without_csrf()` returns a copy that doesn't.
    """
    login = Client()
    response = login.post("/accounts/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.status_code
    api = APIClient(enforce_csrf_checks=True)
    api.cookies = login.cookies
    token = get_random_string(32)
    api.cookies["csrftoken"] = token
    api.credentials(HTTP_X_CSRFTOKEN=token)
    return api
