"""A real OpenID Connect provider for the single sign-on tests: django-oauth-toolkit in a Django process of its own.

Its people live in a JSON file the test writes (IDP_DIRECTORY): username -> password, email, email_verified,
groups, and the provider session id (sid) its next ID token carries. The test changes a person's groups or e-mail
there between two sign-ins, and the provider reads it on each request. Everything else (authorization, PKCE,
tokens, signed ID tokens, keys, user info) is the toolkit's, but for back-channel logout (backchannel.py), which a
test triggers.
"""

import os
from pathlib import Path

SECRET_KEY = "test-only-identity-provider-key"  # noqa: S105 (a test server)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.oidc_provider.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "tests.oidc_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [Path(__file__).parent / "templates"],
    "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("IDP_DATABASE", ":memory:")}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTHENTICATION_BACKENDS = ["tests.oidc_provider.directory.DirectoryBackend"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "/login/"
USE_TZ = True
# Its session cookie must not overwrite chatsite's: both run on 127.0.0.1 (cookies ignore the port).
SESSION_COOKIE_NAME = "idp_sessionid"
CSRF_COOKIE_NAME = "idp_csrftoken"

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": os.environ.get("IDP_RSA_PRIVATE_KEY", ""),
    "PKCE_REQUIRED": True,
    "OAUTH2_VALIDATOR_CLASS": "tests.oidc_provider.directory.DirectoryValidator",
    "SCOPES": {"openid": "OpenID Connect", "email": "E-mail address", "profile": "Profile"},
}
