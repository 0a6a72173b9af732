"""Settings for the test suite: the real settings, with a test secret and the fast password hasher."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("CHATSITE_ENV_FILE", "/nonexistent")
os.environ.setdefault("CHAT_MODEL_TITLES", "0")
os.environ.setdefault("DEBUG", "0")
# One thread for the embedded model's server in tests: `make test` runs two pytest-xdist workers on two cores, and
# llama.cpp's threads spin at each step's barrier, so two threads on a machine already busy slowed a short answer
# past three minutes (CI). `manage.py serve` subprocesses of the tests read these settings too.
os.environ.setdefault("LOCAL_MODEL_THREADS", "1")

from chatsite.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
SERVESTATIC_USE_FINDERS = True
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
ALLOWED_HOSTS = ["*"]
if "LOCAL_MODEL_STATE_DIR" not in os.environ:
    # One state directory per pytest-xdist worker (PYTEST_XDIST_WORKER is gw0, gw1, ...; unset without xdist).
    _worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    LOCAL_MODEL_STATE_DIR = BASE_DIR / "test-artifacts" / f"model-server-{_worker}"  # noqa: F405
