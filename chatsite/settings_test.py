"""Settings for the test suite: the real settings, with a test secret and the fast password hasher."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("CHATSITE_ENV_FILE", "/nonexistent")
os.environ.setdefault("CHAT_MODEL_TITLES", "0")
os.environ.setdefault("DEBUG", "0")

from chatsite.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
SERVESTATIC_USE_FINDERS = True
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
ALLOWED_HOSTS = ["*"]
if "LOCAL_MODEL_STATE_DIR" not in os.environ:
    LOCAL_MODEL_STATE_DIR = BASE_DIR / "test-artifacts" / "model-server"  # noqa: F405
