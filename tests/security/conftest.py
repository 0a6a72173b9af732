"""Fixtures for the security suite: the error-shape assertion, a real uvicorn server, PostgreSQL helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_SECRET = "sk-test-SECRET-upstream-key-0123456789"


def assert_error_shape(response, status: int | tuple[int, ...], code: str | None = None) -> dict:
    """The API's one error shape: `{"error": {"code": str, "message": str, "fields"?: ...}}`."""
    statuses = (status,) if isinstance(status, int) else status
    body_text = response.content.decode(errors="replace") if hasattr(response, "content") else response.text
    assert response.status_code in statuses, (response.status_code, body_text[:500])
    assert response["Content-Type"].startswith("application/json") if hasattr(response, "__getitem__") and not \
        isinstance(response, httpx.Response) else response.headers["content-type"].startswith("application/json"), \
        body_text[:300]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    assert set(error) <= {"code", "message", "fields"}, body
    if code is not None:
        assert error["code"] == code, body
    return error


def requires_postgresql(reason: str):
    if connection.vendor != "postgresql":
        pytest.skip(f"PostgreSQL only ({reason}); CI runs this file on PostgreSQL too")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A real `uvicorn chatsite.asgi:application` subprocess on 127.0.0.1, on the test database."""

    def __init__(self, *, workers: int = 1, env: dict | None = None):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        db = connection.settings_dict
        self.env = {
            key: value for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "PYTEST"))
        }
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "chatsite.settings_test",
            "CHATSITE_ENV_FILE": "/nonexistent",
            "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
                            f"{db['PORT'] or 5432}/{db['NAME']}",
            "LOG_LEVEL": "WARNING",
        })
        self.env.update(env or {})
        self.log_path = ROOT / "test-artifacts" / f"uvicorn-{self.port}.log"
        self.workers = workers
        self.process = None

    def start(self) -> Server:
        self.log_path.parent.mkdir(exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "chatsite.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(self.workers), "--no-access-log"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"uvicorn did not start: {self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@pytest.fixture
def uvicorn_server():
    """Start uvicorn subprocesses (PostgreSQL test database); all are stopped after the test."""
    started = []

    def start(**kwargs) -> Server:
        server = Server(**kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_url():
    """A Redis database for cross-worker tests, with a key prefix unique to this test."""
    import redis

    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    return url, f"sec-{uuid.uuid4().hex[:12]}"
