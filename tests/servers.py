"""Real servers for the security and resilience suites: uvicorn subprocesses on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_SECRET = "sk-test-SECRET-upstream-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for a Django PostgreSQL settings dict (trust auth on 127.0.0.1 in tests and CI)."""
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


SERVER_APPLICATION_NAME = "chatsite-test-server"


def upstream_env(base_url: str) -> dict:
    """Point a server at a fake upstream the way the `fake_upstream` fixture points the test process."""
    return {
        "LLM_BACKEND": "openai",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": UPSTREAM_SECRET,
        "OPENAI_MODEL": "fake-model",
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "5",
        "CHAT_MODEL_TITLES": "0",
    }


class Server:
    """`uvicorn chatsite.asgi:application` as a subprocess on 127.0.0.1, with its output kept in a log file."""

    def __init__(self, *, database_url: str, workers: int = 1, env: dict | None = None,
                 settings_module: str = "chatsite.settings_test"):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            key: value for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "PYTEST", "OPENAI_", "LLM_", "CHAT_"))
        }
        self.env.update({
            "DJANGO_SETTINGS_MODULE": settings_module,
            "CHATSITE_ENV_FILE": "/nonexistent",
            "SECRET_KEY": "test-only-secret-key-not-for-production",
            # Named, so a test can terminate the server's connections without killing its own.
            "DATABASE_URL": database_url + ("?application_name=" + SERVER_APPLICATION_NAME
                                            if database_url.startswith("postgres") and "?" not in database_url
                                            else ""),
            "LOG_LEVEL": "WARNING",
        })
        self.env.update(env or {})
        self.workers = workers
        self.log_path = ROOT / "test-artifacts" / f"uvicorn-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 30, *, ready_status: int = 200) -> Server:
        """Start and wait until /healthz answers `ready_status` (503 for a server whose database is down)."""
        return self.launch().wait_ready(timeout, ready_status=ready_status)

    def launch(self) -> Server:
        self.log_path.parent.mkdir(exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "chatsite.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(self.workers), "--no-access-log"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 30, *, ready_status: int = 200) -> Server:
        assert self.process is not None, "launched"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=5).status_code == ready_status:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"uvicorn did not start in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        if self._log is not None and not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._log is not None:
            self._log.close()


class TcpProxy:
    """A TCP relay to a server (PostgreSQL) that a test can cut and restore, to make the database vanish."""

    def __init__(self, target_host: str, target_port: int):
        import threading

        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.blocked = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def _accept(self):
        import threading

        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.blocked:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with self._lock:
                    self._sockets.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def cut(self):
        """Drop every open connection and refuse new ones (the database is unreachable)."""
        self.blocked = True
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self):
        self.blocked = False

    def close(self):
        self._closed = True
        self.cut()
        self.listener.close()
