"""Browser tests: Debian's Chromium driven by Playwright against chatsite served by uvicorn (ASGI).

Why uvicorn and not pytest-django's live_server: live_server is a WSGI server, and under WSGI Django
collects an async streaming response completely before sending it, so an answer would arrive in one
piece. uvicorn runs the real ASGI app, so the page sees the answer token by token, as in production.

The server gets its own database (a temporary SQLite file, or `<name>_browser` on PostgreSQL when
DATABASE_URL points there), migrated once per session. Tests read it back with plain SQL. The model is
the project's fake OpenAI-compatible upstream, in this process, so tests change its behaviour live.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from conversations.tests.fake_searxng import FakeSearXNG
from tests.browser.helpers import ARTIFACTS, ROOT, launch_chromium
from tests.servers import free_port


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


@dataclass
class ServerDatabase:
    url: str
    path: Path | None = None  # SQLite file

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgres://", "postgresql://"))

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the server's data with plain SQL (placeholders written as %s)."""
        if self.is_postgres:
            import psycopg

            with psycopg.connect(_libpq_url(self.url)) as connection:
                return connection.execute(sql, params).fetchall()
        assert self.path is not None, "a SQLite server database has its file"
        with sqlite3.connect(self.path) as connection:
            return connection.execute(sql.replace("%s", "?"), params).fetchall()


def _libpq_url(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _make_database(tmp: Path) -> ServerDatabase:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        path = tmp / "browser.sqlite3"
        return ServerDatabase(url=f"sqlite:///{path}", path=path)
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'chatsite'}_browser"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(_libpq_url(admin_url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return ServerDatabase(url=urlunsplit(parts._replace(path=f"/{name}")))


@dataclass
class LiveServer:
    url: str
    db: ServerDatabase
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)  # the server's environment (for a task worker beside it)
    users: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def searxng():
    """A fake SearXNG with its result pages, for web search (test_web_search_browser.py)."""
    server = FakeSearXNG().start_in_thread()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def server(_fake_upstream_server, searxng):
    ARTIFACTS.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="chatsite-browser-"))
    db = _make_database(tmp)
    down_port = free_port()  # nothing listens there: the down MCP server's
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings_test",
        "DATABASE_URL": db.url,
        "LLM_BACKEND": "openai",
        "OPENAI_BASE_URL": _fake_upstream_server.base_url,
        "OPENAI_API_KEY": "sk-test-SECRET-upstream-key-0123456789",
        "OPENAI_MODEL": "fake-model",
        # The model picker offers these (test_model_picker.py); the third may call server tools (test_tool_steps.py).
        "CHAT_MODELS": "fake-model,fake-model-mini,fake-tool-model",
        "CHAT_TOOL_MODELS": "fake-tool-model",
        "CHAT_SERVER_TOOLS": "calculator,current_time,remember",
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "10",
        "REDIS_URL": "",
        "CHAT_THROTTLE_RATE": "1000/min",
        "SIGNUP_ATTEMPTS_PER_HOUR": "100000",  # every browser test signs up from 127.0.0.1
        "CHAT_MODEL_TITLES": "0",
        "CHAT_VISION_MODELS": "fake-model",  # images are sent to it (tests/browser/test_attachments_browser.py)
        "CHAT_SEARCH_URL": searxng.base_url,  # web search, where a chat turns it on
        "CHAT_OUTBOUND_ALLOWED_HOSTS": f"127.0.0.1:{searxng.port},127.0.0.1:{down_port}",
        # An MCP server over stdio (conversations/tests/mcp_server.py): its delete_note asks the user first. And one
        # that is down: an allowed HTTP address nothing listens on (test_mcp_browser.py shows why in the page).
        "CHAT_MCP_SERVERS": json.dumps([{
            "name": "notes", "command": sys.executable, "args": [str(ROOT / "conversations/tests/mcp_server.py")],
            "tools": {"delete_note": {"approval": True}},
        }, {"name": "wiki", "url": f"http://127.0.0.1:{down_port}/mcp"}]),
        "MEDIA_ROOT": str(tmp / "media"),
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    log_path = ARTIFACTS / "browser-server.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "chatsite.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--lifespan", "off"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 (our server)
                if response.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"chatsite did not start; see {log_path}:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
    yield LiveServer(url=url, db=db, process=process, log_path=log_path, env=env)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def upstream(_fake_upstream_server):
    """The fake upstream the server talks to, reset before and after each test."""
    _fake_upstream_server.reset()
    yield _fake_upstream_server
    _fake_upstream_server.reset()


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test file. Not for the session: Playwright's sync API keeps its event loop running in this
    thread while it is open, and every later test of this worker that runs a loop (asyncio.run, an async test)
    would fail with "cannot be called from a running event loop"."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@dataclass
class PageRecorder:
    """What a page did that the tests check: requests, console errors, dialogs, XSS hook calls."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    accept_dialogs: bool = False  # confirm() answers: dismissed unless a test expects to confirm

    def offsite_requests(self, base_url: str) -> list[str]:
        return [url for url in self.requests if not url.startswith((base_url + "/", "data:", "blob:"))]


# Runs before any page script (Playwright injects it outside the page's CSP): XSS payloads in the tests
# call window.__xss(), so any payload that executes leaves a trace here.
XSS_HOOK = "window.__xssCalls = []; window.__xss = (...args) => { window.__xssCalls.push(String(args)); };"


@pytest.fixture
def make_page(browser, server, request):
    contexts, pages = [], []

    def make(*, width=1280, height=860, color_scheme="light"):
        context = browser.new_context(
            base_url=server.url, viewport={"width": width, "height": height}, color_scheme=color_scheme,
            accept_downloads=True,
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        recorder = PageRecorder()
        page.on("request", lambda request: recorder.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and recorder.console_errors.append(message.text))
        page.on("pageerror", lambda error: recorder.console_errors.append(str(error)))

        def on_dialog(dialog):
            recorder.dialogs.append(dialog.message)
            if recorder.accept_dialogs:
                dialog.accept()
            else:
                dialog.dismiss()

        page.on("dialog", on_dialog)
        page.add_init_script(XSS_HOOK)
        page.recorder = recorder
        pages.append(page)
        return page

    yield make
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # Leave evidence for CI: what the page looked like and what the server logged.
        failures = ARTIFACTS / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(pages):
            name = f"{request.node.name}-{number}"
            page.screenshot(path=str(failures / f"{name}.png"), full_page=True)
            (failures / f"{name}.html").write_text(page.content(), encoding="utf-8")
    for context in contexts:
        context.close()
