"""`manage.py serve` as `make run` starts it: uvicorn plus the embedded model's supervised server process.

A real model server is killed mid-answer through the production stack (uvicorn, REST API, API key):
the web server keeps serving, the answer is stored failed, and the next message is answered by the
restarted model server. Ctrl-C stops both processes; a killed supervisor leaves no orphan.
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

pytestmark = pytest.mark.local_model


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

    def __init__(self, tmp_path: Path):
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
            "LLM_BACKEND": "local",
            "LOCAL_MODEL_PORT": str(self.model_port),
            "LOCAL_MODEL_STATE_DIR": str(self.state_dir),
            "CHAT_MAX_ANSWER_TOKENS": "300",
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

    def start(self) -> "Serve":
        self.manage("migrate", "--noinput", "-v", "0")
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        _wait_for(lambda: self.health().get("model", {}).get("state") == "up", 120, "the model server to be up")
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


def test_killing_the_model_server_mid_answer_keeps_the_web_server_serving(serve):
    serve.start()
    serve.manage("shell", "-c", "from accounts.models import User; User.objects.create_user('alice', password='x')")
    key = serve.manage("create_api_key", "alice").strip()
    api = httpx.Client(base_url=serve.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
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


def test_a_killed_supervisor_leaves_no_orphan(serve):
    serve.start()
    model_pid = serve.model_state()["pid"]
    web_pids = serve.web_pids()
    assert web_pids and _alive(model_pid)

    serve.process.kill()  # SIGKILL: no chance to clean up; the kernel tells the children
    serve.process.wait()
    _wait_for(lambda: not any(_alive(pid) for pid in [*web_pids, model_pid]), 20, "the children to stop")
