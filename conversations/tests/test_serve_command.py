"""`manage.py serve` as `make run` starts it: uvicorn plus the embedded model's supervised server process.

A real model server is killed mid-answer through the production stack (uvicorn, REST API, API key):
the web server keeps serving, the answer is stored failed, and the next message is answered by the
restarted model server. Ctrl-C stops both processes; a killed supervisor leaves no orphan. The supervisor
runs housekeeping (temporary chats and unsent files past their time) once at start, however many workers.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Serve:
    """`python manage.py serve` in its own session, as a terminal would run `make run`."""

    def __init__(self, tmp_path: Path, *, local_model: bool = True):
        self.local_model = local_model
        self.port = free_port()
        self.model_port = free_port()
        self.state_dir = tmp_path / "var"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            key: value for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "PYTEST", "OPENAI_", "LLM_", "CHAT_"))
        } | {
            "DJANGO_SETTINGS_MODULE": "chatsite.settings_test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "LLM_BACKEND": "local" if local_model else "openai",
            "OPENAI_BASE_URL": "" if local_model else f"http://127.0.0.1:{free_port()}/v1",  # none: no chat here
            "LOCAL_MODEL_PORT": str(self.model_port),
            "LOCAL_MODEL_STATE_DIR": str(self.state_dir),
            "CHAT_MAX_ANSWER_TOKENS": "160",
            "CHAT_MODEL_TITLES": "0",
            "OPENAI_MAX_RETRIES": "0",
            "PYTHONUNBUFFERED": "1",
            # What a deployer (or `make run PORT=...`) may have in the environment: the model server must
            # not read these (llama_cpp.server's settings come from the environment too).
            "PORT": str(self.port), "HOST": "0.0.0.0", "MODEL": "/nonexistent.gguf", "API_KEY": "x",
        }
        self.log_path = tmp_path / "serve.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def start(self, *, workers: int = 1) -> "Serve":
        self.manage("migrate", "--noinput", "-v", "0")
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--port", str(self.port), "--workers", str(workers)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        if self.local_model:
            _wait_for(lambda: self.health().get("model", {}).get("state") == "up", 120, "the model server to be up")
        else:
            _wait_for(lambda: self.health().get("status") == "ok", 60, "the web server to be up")
        return self

    def health(self) -> dict:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return {}

    def model_state(self) -> dict:
        return json.loads((self.state_dir / f"model-server-{self.model_port}.json").read_text())

    def web_pids(self) -> list[int]:
        """uvicorn's pid(s): the supervisor's children other than the model server."""
        assert self.process is not None, "started"
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        model_pid = self.model_state()["pid"]
        return [int(pid) for pid in children if int(pid) != model_pid]

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def serve(tmp_path):
    server = Serve(tmp_path)
    yield server
    server.stop()


@pytest.mark.local_model
def test_killing_the_model_server_mid_answer_keeps_the_web_server_serving(serve):
    serve.start()
    serve.manage("shell", "-c", "from accounts.models import User; User.objects.create_user('alice', password='x')")
    key = serve.manage("create_api_key", "alice").strip()
    # Up to a full answer of CHAT_MAX_ANSWER_TOKENS from the embedded model, on a busy 2-core machine.
    api = httpx.Client(base_url=serve.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=180)
    conversation = api.post("/api/v1/conversations/", json={}).json()["id"]
    model_pid = serve.model_state()["pid"]
    web_pids = serve.web_pids()

    events = []
    killed = False
    with api.stream(
        "POST", f"/api/v1/conversations/{conversation}/turns/",
        json={"content": "Write a long story about a dragon.", "stream": True},
    ) as response:
        assert response.status_code == 200
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[len("data: "):])))
                if not killed and [name for name, _ in events].count("delta") == 3:
                    state = serve.model_state()
                    model_pid, restarts = state["pid"], state["restarts"]
                    os.kill(model_pid, signal.SIGKILL)  # the model process dies mid-answer (once)
                    killed = True

    names = [name for name, _ in events]
    assert names[0] == "turn" and names[-1] == "error", names
    error = events[-1][1]
    assert error["error"]["code"] == "upstream_stream_broken"
    assert error["assistant_turn"]["status"] == "failed"

    # The web server kept serving: same processes, pages and API answer.
    assert serve.web_pids() == web_pids
    assert serve.health()["status"] == "ok"
    turns = api.get(f"/api/v1/conversations/{conversation}/turns/").json()["results"]
    assert [turn["role"] for turn in turns] == ["user", "assistant"]
    assert turns[0]["content"] == "Write a long story about a dragon."
    assert turns[1]["status"] == "failed"
    assert turns[1]["error"] == "The model service stopped in the middle of the answer."
    assert httpx.get(f"{serve.base_url}/accounts/login/").status_code == 200

    # The supervisor restarted the model server; the next message is answered.
    _wait_for(lambda: serve.health()["model"]["state"] == "up", 60, "the restarted model server")
    assert serve.model_state()["pid"] != model_pid
    assert serve.model_state()["restarts"] == restarts + 1
    answer = api.post(f"/api/v1/conversations/{conversation}/turns/", json={"content": "Say hi."})
    assert answer.status_code == 201, answer.text
    assert answer.json()["assistant_turn"]["status"] == "complete"
    assert "killed by SIGKILL; restarting" in serve.log()

    # Ctrl-C (SIGINT to the terminal's process group) stops everything, in order.
    new_model_pid = serve.model_state()["pid"]
    os.killpg(serve.process.pid, signal.SIGINT)
    assert serve.process.wait(30) == 0, serve.log()
    assert not any(_alive(pid) for pid in [*web_pids, model_pid, new_model_pid])
    assert serve.model_state()["state"] == "down"


@pytest.mark.local_model
def test_a_killed_supervisor_leaves_no_orphan(serve):
    serve.start()
    model_pid = serve.model_state()["pid"]
    web_pids = serve.web_pids()
    assert web_pids and _alive(model_pid)

    serve.process.kill()  # SIGKILL: no chance to clean up; the kernel tells the children
    serve.process.wait()
    _wait_for(lambda: not any(_alive(pid) for pid in [*web_pids, model_pid]), 20, "the children to stop")


HOUSEKEEPING_DATA = """
from datetime import timedelta
from django.core.files.base import ContentFile
from django.utils import timezone
from accounts.models import User
from conversations.attachments import attachment_create
from conversations.models import Attachment, Conversation
alice = User.objects.create_user("alice", password="x")
now = timezone.now()
for title, delete_after in (("expired 1", now - timedelta(hours=1)), ("expired 2", now - timedelta(seconds=1)),
                            ("still running", now + timedelta(hours=1)), ("kept", None)):
    Conversation.objects.create(owner=alice, title=title, delete_after=delete_after)
for name, hours in (("old draft", 25), ("fresh draft", 1)):
    upload = ContentFile(b"draft", name=name)
    upload.size = 5
    file = attachment_create(owner=alice, upload=upload)
    Attachment.objects.filter(pk=file.pk).update(created_at=now - timedelta(hours=hours))
"""

REMAINING = (
    "from conversations.models import Attachment, Conversation; "
    "print(sorted(Conversation.objects.values_list('title', flat=True)), "
    "sorted(Attachment.objects.values_list('name', flat=True)))"
)


def test_serve_runs_housekeeping_once_at_start_in_the_supervisor_not_in_each_worker(tmp_path):
    serve = Serve(tmp_path, local_model=False)
    serve.env.update({"CHAT_HOUSEKEEPING_SECONDS": "3600", "MEDIA_ROOT": str(tmp_path / "media")})
    try:
        serve.manage("migrate", "--noinput", "-v", "0")
        serve.manage("shell", "-c", HOUSEKEEPING_DATA)
        serve.start(workers=2)
        _wait_for(lambda: "housekeeping: Deleted" in serve.log(), 60, "the first housekeeping run")
        remaining = serve.manage("shell", "--no-imports", "-c", REMAINING).strip()
        assert remaining == "['kept', 'still running'] ['fresh draft']"
        assert httpx.get(f"{serve.base_url}/accounts/login/").status_code == 200

        # Ctrl-C: one run, by the supervisor, whatever the number of workers; everything stops.
        os.killpg(serve.process.pid, signal.SIGINT)
        assert serve.process.wait(30) == 0, serve.log()
        runs = [line for line in serve.log().splitlines() if "housekeeping: " in line]
        assert len(runs) == 1, serve.log()
        assert runs[0].endswith("housekeeping: Deleted 2 temporary chat(s), 1 unsent file(s).")
        assert "conversations.housekeeping" in runs[0]  # logged by the supervisor's timer
    finally:
        serve.stop()


def test_serve_without_housekeeping_when_the_interval_is_zero(tmp_path):
    serve = Serve(tmp_path, local_model=False)
    serve.env.update({"CHAT_HOUSEKEEPING_SECONDS": "0", "MEDIA_ROOT": str(tmp_path / "media")})
    try:
        serve.manage("migrate", "--noinput", "-v", "0")
        serve.manage("shell", "-c", HOUSEKEEPING_DATA)
        serve.start()
        assert httpx.get(f"{serve.base_url}/accounts/login/").status_code == 200
        os.killpg(serve.process.pid, signal.SIGINT)
        assert serve.process.wait(30) == 0, serve.log()
        assert "housekeeping" not in serve.log()
        remaining = serve.manage("shell", "--no-imports", "-c", REMAINING).strip()
        assert remaining == "['expired 1', 'expired 2', 'kept', 'still running'] ['fresh draft', 'old draft']"
    finally:
        serve.stop()


def test_the_supervised_task_worker_runs_queued_tasks_and_is_restarted(tmp_path):
    """The background task worker runs next to the web server; killed, it is started again and runs the next."""
    serve = Serve(tmp_path, local_model=False)
    try:
        serve.start()
        queue = "from tests.task_support import leave_mark; leave_mark.enqueue({!r})"
        first, second = tmp_path / "first", tmp_path / "second"
        serve.manage("shell", "-c", queue.format(str(first)))
        worker_pid = int(_wait_for(lambda: first.exists() and first.read_text(), 30, "the first task to run"))
        assert worker_pid != serve.process.pid and _alive(worker_pid)

        os.kill(worker_pid, signal.SIGKILL)
        serve.manage("shell", "-c", queue.format(str(second)))
        restarted_pid = int(_wait_for(lambda: second.exists() and second.read_text(), 30, "the second task"))
        assert restarted_pid != worker_pid
        assert "task worker (pid" in serve.log() and "killed by SIGKILL; restarting" in serve.log()

        os.killpg(serve.process.pid, signal.SIGINT)
        assert serve.process.wait(30) == 0, serve.log()
        assert not _alive(restarted_pid)
    finally:
        serve.stop()
