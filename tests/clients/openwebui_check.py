"""Open WebUI 0.12.4 as a client of a live chatsite, driven through Open WebUI's own HTTP API as its web page does.

Opt-in: `make test-openwebui` installs Open WebUI into a venv of its own outside the project (OPENWEBUI_VENV) and runs
this module; `make test` never collects it (its name is not test_*.py). Open WebUI runs as a real process bound to
127.0.0.1, with two OpenAI connections to the same chatsite, as docs/api.md advises an integrator: the chat model
through a key that stores chats, and Open WebUI's task model (`tasks.` prefix: titles, tags, follow-ups) through a
key that keeps its chats out of the history. The fake upstream answers every request with one JSON object that
answers each of Open WebUI's tasks, so their results can be checked on Open WebUI's side too.
"""

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from accounts.models import ApiKey
from conversations.models import Conversation
from conversations.tests.test_api_live import live_asgi, raw_key  # noqa: F401 (fixtures)
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

OPENWEBUI_VENV = Path(os.environ.get("OPENWEBUI_VENV", Path.home() / ".cache/chatsite/openwebui-venv"))
STARTUP_SECONDS = 600  # its first start migrates its database and imports a lot: minutes on a busy 2-core machine
ANSWER = {"title": "Seoul in three days", "tags": ["travel", "korea"],
          "follow_ups": ["What about Busan?", "When is the best season?"]}
QUESTIONS = ["Plan three days in Seoul.", "Add a day trip.", "Where should we stay?"]


@pytest.fixture
def openwebui(tmp_path, live_asgi, user, raw_key, fake_upstream):  # noqa: F811
    """A running Open WebUI, its OpenAI connections pointing at chatsite; yields its base URL."""
    executable = OPENWEBUI_VENV / "bin" / "open-webui"
    if not executable.exists():
        pytest.fail(f"No Open WebUI at {executable}: run `make test-openwebui`, which installs it there.")
    tasks_key = ApiKey.generate(user=user, name="open webui tasks", store_chats=False)[1]
    port = free_port()
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "DATA_DIR": str(tmp_path / "data"),
        "HF_HOME": str(tmp_path / "hf"), "WEBUI_SECRET_KEY": uuid.uuid4().hex,
        # Nothing from outside this machine: no model downloads, update checks or telemetry.
        "OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "false", "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true", "ENABLE_OLLAMA_API": "false", "RAG_EMBEDDING_ENGINE": "openai",
        "ENABLE_OPENAI_API": "true",
        "OPENAI_API_BASE_URLS": f"{live_asgi}/v1;{live_asgi}/v1", "OPENAI_API_KEYS": f"{raw_key};{tasks_key}",
        "OPENAI_API_CONFIGS": json.dumps({"1": {"enable": True, "prefix_id": "tasks"}}),
        "TASK_MODEL_EXTERNAL": "tasks.fake-model",
    }
    log_path = tmp_path / "openwebui.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own venv's executable)
            [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Open WebUI did not start (exit {process.poll()}):\n{_tail(log_path)}")
            time.sleep(2)
        yield base_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    print(f"Open WebUI's log: {log_path}")


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_open_webui_chats_through_chatsite(openwebui, user, fake_upstream):
    fake_upstream.behaviour.reply = json.dumps(ANSWER)
    with httpx.Client(base_url=openwebui, timeout=300) as owui:
        signup = owui.post("/api/v1/auths/signup", json={
            "name": "Alice", "email": "alice@example.com", "password": "a-long-Passw0rd",
        })
        assert signup.status_code == 200, signup.text
        assert signup.json()["role"] == "admin"  # the first account is Open WebUI's admin
        owui.headers["Authorization"] = f"Bearer {signup.json()['token']}"

        # Its model list is chatsite's /v1/models, once per connection (the tasks one under its prefix).
        models = {model["id"] for model in owui.get("/api/models").json()["data"]}
        assert {"fake-model", "tasks.fake-model", "text-embedding-3-small"} <= models, models

        # A chat as the page makes one: the chat, then each turn with the whole history and its side tasks.
        created = owui.post("/api/v1/chats/new", json={"chat": {
            "title": "New Chat", "models": ["fake-model"], "messages": [],
            "history": {"messages": {}, "currentId": None},
        }})
        assert created.status_code == 200, created.text
        chat_id = created.json()["id"]
        history: list[dict] = []
        parent_id = None
        for number, question in enumerate(QUESTIONS):
            user_message_id, answer_id = str(uuid.uuid4()), str(uuid.uuid4())
            history.append({"role": "user", "content": question})
            response = owui.post("/api/chat/completions", json={
                "model": "fake-model", "stream": False, "messages": history, "chat_id": chat_id,
                "parent_id": parent_id, "id": answer_id,
                "user_message": {"id": user_message_id, "parentId": parent_id, "childrenIds": [], "role": "user",
                                 "content": question, "timestamp": int(time.time()), "models": ["fake-model"]},
                "background_tasks": {"title_generation": number == 0, "tags_generation": number == 0,
                                     "follow_up_generation": True},
            })
            assert response.status_code == 200, response.text
            answer = response.json()["choices"][0]["message"]["content"]
            assert answer == fake_upstream.behaviour.reply
            history.append({"role": "assistant", "content": answer})
            parent_id = answer_id

        chat = owui.get(f"/api/v1/chats/{chat_id}").json()["chat"]
        tags = [tag["name"] for tag in owui.get(f"/api/v1/chats/{chat_id}/tags").json()]
    assert chat["title"] == ANSWER["title"]
    assert set(ANSWER["tags"]) <= set(tags), tags
    assert chat["history"]["messages"][parent_id].get("followUps") == ANSWER["follow_ups"]

    # In chatsite: the three turns are one conversation in the history, and nothing else is listed.
    listed = Conversation.objects.filter(owner=user, delete_after__isnull=True)
    assert listed.count() == 1
    stored = listed.get()
    assert [(turn.role, turn.content) for turn in stored.turns.order_by("position")] == [
        (message["role"], message["content"]) for message in history
    ]
    # The side tasks ("### Task:" prompts) went through the tasks key: answered, kept as temporary chats.
    task_requests = [request for request in fake_upstream.chat_requests
                     if any("### Task:" in str(message.get("content")) for message in request.messages)]
    temporary = Conversation.objects.filter(owner=user, delete_after__isnull=False)
    assert len(task_requests) >= 3 and temporary.count() == len(task_requests)
    print(f"Open WebUI: 3 turns stored as one conversation; {len(task_requests)} side tasks kept out of the history")
