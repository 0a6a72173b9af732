"""The benchmark's servers: chatsite's environment and database, core pinning, starting and stopping.

Every server runs in a session of its own with its output in bench/out/NAME.log, and is stopped by its
process group, so nothing the benchmark starts outlives it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import OUT, ROOT

PYTHON = str(Path(sys.executable))
UVICORN = str(Path(sys.executable).parent / "uvicorn")


def chatsite_env(*, database_url: str, upstream_url: str, redis_url: str, cache_prefix: str,
                 pool_size: int | None = None) -> dict[str, str]:
    """chatsite's settings for its server and its setup scripts: PostgreSQL, Redis and the fake upstream."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "CHATSITE_ENV_FILE": "/nonexistent",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": cache_prefix,
        "LLM_BACKEND": "openai",
        "OPENAI_BASE_URL": f"{upstream_url}/v1",
        "OPENAI_API_KEY": "bench",
        "OPENAI_MODEL": "fake-model",
        "OPENAI_MAX_RETRIES": "0",  # like the direct and prototype clients: a failure shows as an error
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1",
        "CHAT_THROTTLE_RATE": "1000000/min",
        "CHAT_MODEL_TITLES": "0",  # a title is a second model call per new chat: not what is timed here
        "LOG_LEVEL": "WARNING",
    }
    if pool_size is not None:
        env["DB_POOL_MAX_SIZE"] = str(pool_size)
    return env


def reset_database(pg_server: str, name: str, env: dict[str, str]) -> None:
    """A new, migrated database `name` on the PostgreSQL server `pg_server` (dropped first if it exists)."""
    with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as pg:
        pg.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        pg.execute(f"CREATE DATABASE {name}")
    run_checked([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env, "migrate")


@dataclass
class Cores:
    server: list[int]
    load: list[int]

    @classmethod
    def split(cls) -> Cores:
        """The server under test gets the first core; the load generator and the upstream the rest."""
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2 or not shutil.which("taskset"):
            return cls(available, available)
        return cls(available[:1], available[1:])

    @property
    def pinned(self) -> bool:
        return self.server != self.load

    def prefix(self, role: str) -> list[str]:
        if not self.pinned:
            return []
        cpus = self.server if role == "server" else self.load
        return ["taskset", "-c", ",".join(map(str, cpus))]


class Processes:
    """Every process the benchmark starts, stopped (by pid, whole session) when it ends."""

    STOP_SECONDS = 10

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        log = open(OUT / f"{name}.log", "w")  # noqa: SIM115 (kept open for the process's life)
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(process)
        return process

    def stop(self, process: subprocess.Popen):
        self._terminate(process)
        self._wait_or_kill(process)

    def stop_all(self):
        # Every session is told first, so they shut down side by side.
        for process in reversed(self.started):
            self._terminate(process)
        for process in self.started:
            self._wait_or_kill(process)

    @staticmethod
    def _terminate(process: subprocess.Popen):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)

    def _wait_or_kill(self, process: subprocess.Popen):
        try:
            process.wait(self.STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(self.STOP_SECONDS)


def wait_for_http(url: str, method: str = "GET", body: bytes | None = None, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(url, data=body, method=method,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up; see bench/out/*.log") from None
            time.sleep(0.2)


def run_checked(command: list[str], env: dict, what: str) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout
