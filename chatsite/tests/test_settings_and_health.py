"""Settings safety, the health check, and the first-run message."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECRET_KEY", "DEBUG", "DATABASE_URL"))}
    env.update({"CHATSITE_ENV_FILE": "/nonexistent", "DJANGO_SETTINGS_MODULE": "chatsite.settings"})
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_missing_secret_key_is_an_error_when_debug_is_off():
    result = run_python("import django; django.setup()", DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY is not set" in result.stderr


def test_debug_is_off_by_default():
    result = run_python("import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
                        SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_postgres_url_uses_psycopg_pool():
    code = "import django; django.setup(); from django.conf import settings; import json; " \
           "print(json.dumps(settings.DATABASES['default'], default=str))"
    result = run_python(code, SECRET_KEY="x" * 50, DATABASE_URL="postgres://u:p@db.example:5432/chat")
    db = json.loads(result.stdout)
    assert db["ENGINE"] == "chatsite.postgresql"  # Django's, with the pool check of chatsite/postgresql/base.py
    assert db["OPTIONS"]["pool"]["max_size"] == 10


@pytest.mark.django_db
def test_healthz_ok_with_the_model_backend_up(client, fake_upstream):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok", "database": "up", "cache": "up", "model": {"backend": "openai", "state": "up"},
    }


@pytest.mark.django_db
def test_with_the_shared_cache_down_chat_writes_are_503_and_healthz_says_so(client, key_client, user, settings):
    from conversations.services import conversation_create

    port = free_port()  # a Redis that is not there
    conversation = conversation_create(owner=user)
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0",
        "OPTIONS": {"socket_connect_timeout": 0.5},
    }}
    response = key_client.post(f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "hi"}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "cache_unavailable" and response["Retry-After"] == "5"
    assert conversation.turns.count() == 0  # refused before anything was stored
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["cache"] == "down"


@pytest.mark.django_db
def test_healthz_reports_a_down_model_without_failing(client, settings):
    port = free_port()  # a port nothing listens on
    settings.LLM_BACKEND = "local"
    settings.LOCAL_MODEL_PORT = port
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["model"] == {"backend": "local", "state": "down"}


@pytest.mark.django_db
def test_healthz_says_starting_while_the_supervisor_loads_the_model(client, settings, tmp_path):
    port = free_port()
    settings.LLM_BACKEND = "local"
    settings.LOCAL_MODEL_PORT = port
    settings.LOCAL_MODEL_STATE_DIR = tmp_path
    (tmp_path / f"model-server-{port}.json").write_text(json.dumps({"state": "starting", "pid": 1}))
    assert client.get("/healthz").json()["model"] == {"backend": "local", "state": "starting"}


def test_healthz_is_503_json_when_the_database_is_down():
    code = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz'); print(r.status_code, r.content.decode())"
    )
    # Port 1 on loopback: nothing listens, so the DB connection is refused.
    result = run_python(code, SECRET_KEY="x" * 50, ALLOWED_HOSTS="testserver",
                        DATABASE_URL="postgres://nobody@127.0.0.1:1/none", DB_POOL="0")
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().split(" ", 1)
    assert status == "503"
    assert json.loads(body)["status"] == "error"


@pytest.mark.django_db
def test_welcome_message_says_how_to_create_an_admin_and_use_openai(settings):
    from io import StringIO

    from django.core.management import call_command

    settings.LLM_BACKEND = "local"
    out = StringIO()
    call_command("welcome", stdout=out)
    text = out.getvalue()
    assert "make superuser" in text
    assert "OPENAI_BASE_URL" in text and "OPENAI_API_KEY" in text
    assert "SmolLM2" in text or "smollm2" in text
