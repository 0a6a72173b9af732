"""Django settings for chatsite, read from the environment (and a local .env in development).

Safe for production by default: DEBUG is off unless set, and then SECRET_KEY must be given.
Every variable is listed in the README's configuration table and in .env.example.
"""

from pathlib import Path

import environ
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = Path(env.str("CHATSITE_ENV_FILE", default=str(BASE_DIR / ".env")))
if _env_file.is_file():
    environ.Env.read_env(_env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or run `make run`, which writes a "
            "development .env with DEBUG=1 and a generated key)."
        )
    SECRET_KEY = "django-insecure-development-only-key"  # noqa: S105 (DEBUG only)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if not DEBUG else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "servestatic",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "accounts",
    "conversations",
    "personal",
    "knowledge",
    "django_tasks",
    "django_tasks_db",
    "teams",
]

# Every entry is async-capable, so the streaming views run on the event loop without adaptation.
MIDDLEWARE = [
    "chatsite.observability.RequestContextMiddleware",  # first: every response carries its X-Request-ID
    "chatsite.middleware.RefuseControlCharactersMiddleware",  # a NUL never reaches a view (or PostgreSQL)
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",  # WhiteNoise's async fork: static files off the event loop
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "teams.audit.AuditActorMiddleware",  # after authentication: the audit log names who made a change
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
WSGI_APPLICATION = "chatsite.wsgi.application"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite in the project folder unless DATABASE_URL says otherwise.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    # psycopg 3 with Django's connection pool: connections are borrowed per request (and per short
    # DB step while an answer streams), so the pool size bounds what the server uses at once.
    _db["CONN_MAX_AGE"] = 0
    # With the pool, each connection is tested as it is lent (one round trip): after a database restart or a
    # network blip the pool would otherwise hand out dead connections. chatsite's backend is Django's with a
    # check that replaces a whole pool of dead connections at once (see chatsite/postgresql/base.py).
    _db["ENGINE"] = "chatsite.postgresql"
    _db["CONN_HEALTH_CHECKS"] = True
    if env.bool("DB_POOL", default=True):
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN, so two
    # appends never deadlock upgrading a read lock, and the busy timeout queues writers.
    _db.setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "accounts.backends.PasswordsOffWhenSsoOnly",  # first: with SSO_ONLY no password reaches the others
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "accounts.oidc.OidcBackend",  # single sign-on (mozilla-django-oidc), when OIDC_RP_CLIENT_ID is set
]

LOGIN_URL = "login"
# Database sessions that record whose they are (accounts/sessions.py), so one person's can be ended at once.
SESSION_ENGINE = "accounts.sessions"
LOGIN_REDIRECT_URL = "conversations:home"
LOGOUT_REDIRECT_URL = "login"

# Cache: shared Redis when REDIS_URL is set (throttles, quotas and stop signals across workers).
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",  # one connection pool per process, shared by threads
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="chatsite"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# django-redis's own factory can build two pools when threads ask for the first connection at once.
DJANGO_REDIS_CONNECTION_FACTORY = "chatsite.redis_pool.SharedPoolConnectionFactory"

# Email: console in development; EMAIL_URL (smtp://user:pass@host:587 or submission://...) for real mail.
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="chatsite@localhost")

# Internationalization: English and Korean.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ko", _("Korean"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")  # where collectstatic writes
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded attachments: files under MEDIA_ROOT, or any S3-compatible store (several hosts share it) when
# ATTACHMENTS_S3_BUCKET is set (django-storages; credentials and endpoint from its AWS_* settings).
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
_attachments_bucket = env.str("ATTACHMENTS_S3_BUCKET", default="")
STORAGES = {
    "default": (
        {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": _attachments_bucket, "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "default_acl": "private", "querystring_auth": True, "file_overwrite": False,
        }}
        if _attachments_bucket else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "chatsite.storage.StaticFilesStorage"
    },
}
SERVESTATIC_USE_FINDERS = env.bool("SERVESTATIC_USE_FINDERS", default=DEBUG)

# Request limits: Django's body limit also bounds JSON bodies in DRF (413 in the API's error shape).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

# Security. Production defaults; a TLS-terminating proxy sets SECURE_PROXY_SSL_HEADER.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# A strict Content-Security-Policy (django-csp): no inline scripts or styles, no off-site images (markdown images
# cannot leak data), no framing. Views that need more say so with csp_update (the vendored Swagger UI); files
# users uploaded are served with a sandbox policy of their own (conversations/attachments.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF],
        "style-src": [CSP_SELF],
        "img-src": [CSP_SELF, "data:"],
        "font-src": [CSP_SELF],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_SELF],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
    },
}
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

# Login throttling (django-axes): lock a username+IP after a few failures, for a cool-off period.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The address a lockout is keyed on: REMOTE_ADDR; behind N trusted proxies that append to X-Forwarded-For,
# the N-th entry from its right (entries further left are the client's to forge).
AXES_TRUSTED_PROXY_COUNT = env.int("AXES_TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "accounts.addresses.client_ip_address"
# Only password attempts count: a refused single sign-on is not a guess, and must not lock an office's address out.
AXES_WHITELIST_CALLABLE = "accounts.backends.not_a_password_attempt"
# Sign-up submissions per client address per hour (a taken username is named, so probing is slowed instead).
SIGNUP_ATTEMPTS_PER_HOUR = env.int("SIGNUP_ATTEMPTS_PER_HOUR", default=10)
# Who may create an account (accounts/signup.py): open, invite (an admin's invite link), domain (an e-mail
# address at one of SIGNUP_ALLOWED_DOMAINS) or approval (the account waits, inactive, until staff approve it).
# The same rule applies to an account created by a first single sign-on.
SIGNUP_MODE = env.str("SIGNUP_MODE", default="open")
if SIGNUP_MODE not in ("open", "invite", "domain", "approval"):
    raise ImproperlyConfigured("SIGNUP_MODE must be open, invite, domain or approval.")
SIGNUP_ALLOWED_DOMAINS = [domain.lower().lstrip("@") for domain in env.list("SIGNUP_ALLOWED_DOMAINS", default=[])]
if SIGNUP_MODE == "domain" and not SIGNUP_ALLOWED_DOMAINS:
    raise ImproperlyConfigured("SIGNUP_MODE=domain needs SIGNUP_ALLOWED_DOMAINS (e.g. example.com,example.org).")

# Single sign-on with OpenID Connect (mozilla-django-oidc; accounts/oidc.py): on when OIDC_RP_CLIENT_ID is set.
# Its back-channel requests (token, keys, user info) go through chatsite/outbound.py: an identity provider on a
# private address must be listed in CHAT_OUTBOUND_ALLOWED_HOSTS.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
# The provider's issuer (`issuer` in its discovery document). When set, ID tokens from another issuer are refused,
# and back-channel logout (/accounts/oidc/backchannel-logout/) is on: it checks logout tokens against it.
OIDC_OP_ISSUER = env.str("OIDC_OP_ISSUER", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_USE_PKCE = True
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
# The claim that lists a user's groups; on every sign-in the user's groups become those of the list that exist
# here (groups are created by staff, never by the provider). Empty: groups are not touched.
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_AUTHENTICATE_CLASS = "accounts.oidc.OidcAuthenticationRequestView"
OIDC_CALLBACK_CLASS = "accounts.oidc.OidcCallbackView"
if OIDC_RP_CLIENT_ID and not all(
    (OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_USER_ENDPOINT, OIDC_OP_JWKS_ENDPOINT)
):
    raise ImproperlyConfigured(
        "OIDC_RP_CLIENT_ID is set: set OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, "
        "OIDC_OP_USER_ENDPOINT and OIDC_OP_JWKS_ENDPOINT too (the provider's discovery document lists them)."
    )
# Password sign-in and sign-up off: people sign in through the provider only. API keys keep working.
SSO_ONLY = env.bool("SSO_ONLY", default=False)
if SSO_ONLY and not OIDC_RP_CLIENT_ID:
    raise ImproperlyConfigured("SSO_ONLY needs single sign-on configured (OIDC_RP_CLIENT_ID and the endpoints).")

# REST API.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "chatsite.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "chat": env.str("CHAT_THROTTLE_RATE", default="30/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "chatsite API",
    "DESCRIPTION": "Conversations, turns and an OpenAI-compatible endpoint.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "conversations.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TurnRoleEnum": "conversations.models.Turn.Role",
        "MessageRoleEnum": "conversations.api.message_lists.MESSAGE_ROLES",
    },
}

# The model. LLM_BACKEND=openai|local; unset: openai when OPENAI_API_KEY or OPENAI_BASE_URL is set.
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT = env.float("OPENAI_TIMEOUT", default=60.0)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)
LLM_BACKEND = env.str("LLM_BACKEND", default="") or (
    "openai" if (OPENAI_API_KEY or OPENAI_BASE_URL) else "local"
)
if LLM_BACKEND not in {"openai", "local"}:
    raise ImproperlyConfigured(f"LLM_BACKEND must be 'openai' or 'local', not {LLM_BACKEND!r}.")
LOCAL_MODEL_PATH = env.str("LOCAL_MODEL_PATH", default="")
LOCAL_MODEL_NAME = env.str("LOCAL_MODEL_NAME", default="smollm2-135m-instruct")
LOCAL_MODEL_CONTEXT = env.int("LOCAL_MODEL_CONTEXT", default=2048)
LOCAL_MODEL_THREADS = env.int("LOCAL_MODEL_THREADS", default=2)
# The embedded model runs in its own process (llama.cpp's OpenAI-compatible server) on 127.0.0.1, started
# and restarted by `manage.py serve` (conversations.model_server); its state and log go to LOCAL_MODEL_STATE_DIR.
LOCAL_MODEL_PORT = env.int("LOCAL_MODEL_PORT", default=8001)
LOCAL_MODEL_STATE_DIR = Path(env.str("LOCAL_MODEL_STATE_DIR", default=str(BASE_DIR / "var")))

# Chat behaviour.
CHAT_DEFAULT_SYSTEM_PROMPT = env.str(
    "CHAT_DEFAULT_SYSTEM_PROMPT", default="You are a helpful assistant. Answer concisely."
)
CHAT_MODELS = env.list("CHAT_MODELS", default=[])
# Embedding models of the upstream offered at /v1/embeddings (and to llm.embed), the first the default.
EMBEDDING_MODELS = env.list("EMBEDDING_MODELS", default=["text-embedding-3-small"])
CHAT_CONTEXT_TOKENS = env.int("CHAT_CONTEXT_TOKENS", default=8192)
CHAT_CONTEXT_TOKENS_BY_MODEL = env.dict("CHAT_CONTEXT_TOKENS_BY_MODEL", cast={"value": int}, default={})
CHAT_MAX_ANSWER_TOKENS = env.int("CHAT_MAX_ANSWER_TOKENS", default=512)
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=16000)
CHAT_DAILY_TOKEN_QUOTA = env.int("CHAT_DAILY_TOKEN_QUOTA", default=0)
# What a user in no group may use (teams/policy.py; a group's policy in the admin says it for its members).
# web_search and mcp_tools count only with server_tools (its kinds of tool).
_KNOWN_FEATURES = [
    "share_links", "file_uploads", "temporary_chats", "api_keys", "server_tools", "web_search", "mcp_tools",
]
CHAT_DEFAULT_FEATURES = env.list("CHAT_DEFAULT_FEATURES", default=_KNOWN_FEATURES)
_unknown_features = set(CHAT_DEFAULT_FEATURES) - set(_KNOWN_FEATURES)
if _unknown_features:
    raise ImproperlyConfigured(f"CHAT_DEFAULT_FEATURES: unknown feature(s) {', '.join(sorted(_unknown_features))}.")
CHAT_MODEL_TITLES = env.bool("CHAT_MODEL_TITLES", default=True)
CHAT_STALE_TURN_SECONDS = env.int("CHAT_STALE_TURN_SECONDS", default=600)
# A running answer's heartbeat lives this long unless its worker renews it (every 3 s): a worker that dies
# mid-answer leaves the answer failed (and the chat free) within about this many seconds.
CHAT_ANSWER_HEARTBEAT_SECONDS = env.int("CHAT_ANSWER_HEARTBEAT_SECONDS", default=15)
CHAT_SHOW_REVIEWER = env.bool("CHAT_SHOW_REVIEWER", default=False)
# False: staff never read chat contents in the admin (lists show metadata only, review pages refuse).
STAFF_CAN_READ_CHATS = env.bool("STAFF_CAN_READ_CHATS", default=True)
# A temporary chat is never listed and is deleted this many hours after it starts (manage.py housekeeping).
CHAT_TEMPORARY_HOURS = env.int("CHAT_TEMPORARY_HOURS", default=24)
# `manage.py serve` runs `manage.py housekeeping` at start and then this often; 0: never (run it from cron instead).
CHAT_HOUSEKEEPING_SECONDS = env.int("CHAT_HOUSEKEEPING_SECONDS", default=3600)
if CHAT_HOUSEKEEPING_SECONDS < 0:
    raise ImproperlyConfigured("CHAT_HOUSEKEEPING_SECONDS must be 0 (off) or a number of seconds.")
# Background tasks (indexing documents, deleting an account's data): Django's task framework through the
# django-tasks backport. The database backend needs nothing more than the site's own database, and `manage.py
# serve` runs its worker, supervised. TASKS_BACKEND=rq puts the queue on Redis (REDIS_URL) for an operator who
# runs workers on other machines (`manage.py rqworker default`).
TASKS_BACKEND = env.str("TASKS_BACKEND", default="database")
if TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
elif TASKS_BACKEND == "rq":
    if not REDIS_URL:
        raise ImproperlyConfigured("TASKS_BACKEND=rq needs REDIS_URL.")
    INSTALLED_APPS += ["django_rq"]
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    RQ_QUEUES = {"default": {"URL": REDIS_URL}}
else:
    raise ImproperlyConfigured("TASKS_BACKEND must be 'database' or 'rq'.")
# How often the database worker looks for new tasks, in seconds.
TASKS_POLL_SECONDS = env.float("TASKS_POLL_SECONDS", default=1.0)
# Attachments: per file, per message, per user; how much of a document's text goes to the model; which models
# read images (the others get a clear refusal before anything is sent).
CHAT_ATTACHMENT_MAX_BYTES = env.int("CHAT_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
CHAT_ATTACHMENTS_PER_MESSAGE = env.int("CHAT_ATTACHMENTS_PER_MESSAGE", default=5)
CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES = env.int("CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES", default=200 * 1024 * 1024)
CHAT_ATTACHMENT_MAX_TEXT_CHARS = env.int("CHAT_ATTACHMENT_MAX_TEXT_CHARS", default=60_000)
CHAT_ATTACHMENT_MAX_PDF_PAGES = env.int("CHAT_ATTACHMENT_MAX_PDF_PAGES", default=300)
CHAT_VISION_MODELS = env.list("CHAT_VISION_MODELS", default=[])
# Server tools (conversations/answering/tools.py) the models in CHAT_TOOL_MODELS may call in the middle of an
# answer, up to CHAT_TOOL_ROUNDS rounds of calls per answer. Off for other models: many model servers refuse a
# request that offers tools to a model they do not know can call them.
CHAT_SERVER_TOOLS = env.list("CHAT_SERVER_TOOLS", default=["calculator", "current_time"])
CHAT_TOOL_MODELS = env.list("CHAT_TOOL_MODELS", default=[])
CHAT_TOOL_ROUNDS = env.int("CHAT_TOOL_ROUNDS", default=5)
# Web search (conversations/answering/search.py), a server tool offered in the chats where the user turns it on:
# CHAT_SEARCH_PROVIDER names the provider class; CHAT_SEARCH_URL is its base URL (empty: no web search at all).
CHAT_SEARCH_PROVIDER = env.str("CHAT_SEARCH_PROVIDER", default="searxng")
CHAT_SEARCH_URL = env.str("CHAT_SEARCH_URL", default="")
CHAT_SEARCH_RESULTS = env.int("CHAT_SEARCH_RESULTS", default=5)  # sources read per search
# Everything the server fetches on a user's behalf goes through chatsite/outbound.py, which refuses loopback,
# private, link-local and metadata addresses; these hosts ("host" or "host:port") are let through (an
# internal SearXNG, say).
CHAT_OUTBOUND_ALLOWED_HOSTS = env.list("CHAT_OUTBOUND_ALLOWED_HOSTS", default=[])
# MCP servers (conversations/answering/mcp.py) whose tools the users may enable per chat: a JSON list, one object
# per server: "name" (letters, digits, "-"), then either "command" (+ "args", "env"; run over stdio, one process
# per worker, started on first use) or "url" (streamable HTTP, through the outbound guard: allow-list a local
# server's host:port in CHAT_OUTBOUND_ALLOWED_HOSTS); optional "timeout" (seconds per call), "max_result_chars",
# and "tools": {"tool_name": {"approval": true, "timeout": 5}} (approval: the user allows each call on the page).
CHAT_MCP_SERVERS = env.json("CHAT_MCP_SERVERS", default=[])
# A tool call that needs the user's approval is refused (and the model told) after this many seconds unanswered.
CHAT_TOOL_APPROVAL_SECONDS = env.int("CHAT_TOOL_APPROVAL_SECONDS", default=300)
# An MCP server process (or HTTP session) unused this long is closed; the next call starts it again.
CHAT_MCP_IDLE_SECONDS = env.int("CHAT_MCP_IDLE_SECONDS", default=600)
# A user's memories in the system prompt (personal app): the most recent that fit in this many characters.
CHAT_MEMORY_PROMPT_CHARS = env.int("CHAT_MEMORY_PROMPT_CHARS", default=2_000)
# Knowledge bases (knowledge app): how many a user has, documents per base, a document's size and indexed text,
# the passages' size and overlap (characters), and how many passages an answer is given.
KNOWLEDGE_BASES_PER_USER = env.int("KNOWLEDGE_BASES_PER_USER", default=20)
KNOWLEDGE_DOCUMENTS_PER_BASE = env.int("KNOWLEDGE_DOCUMENTS_PER_BASE", default=100)
KNOWLEDGE_DOCUMENT_MAX_BYTES = env.int("KNOWLEDGE_DOCUMENT_MAX_BYTES", default=20 * 1024 * 1024)
KNOWLEDGE_DOCUMENT_MAX_CHARS = env.int("KNOWLEDGE_DOCUMENT_MAX_CHARS", default=3_000_000)
KNOWLEDGE_PASSAGE_CHARS = env.int("KNOWLEDGE_PASSAGE_CHARS", default=1_000)
KNOWLEDGE_PASSAGE_OVERLAP = env.int("KNOWLEDGE_PASSAGE_OVERLAP", default=150)
KNOWLEDGE_PASSAGES_PER_ANSWER = env.int("KNOWLEDGE_PASSAGES_PER_ANSWER", default=5)
# How an answer gets the passages (knowledge.retrieval): "step", searched with the question before the model call and
# put in the system prompt (every model); "tool", the knowledge_search server tool that the model calls with queries of
# its own (models in CHAT_TOOL_MODELS only: the others get no passages); "auto", the tool where server tools may be
# offered, else the step. Measured side by side in bench/KNOWLEDGE.md.
KNOWLEDGE_RETRIEVAL = env.str("KNOWLEDGE_RETRIEVAL", default="step")
if KNOWLEDGE_RETRIEVAL not in ("step", "tool", "auto"):
    raise ImproperlyConfigured(f"KNOWLEDGE_RETRIEVAL must be step, tool or auto, not {KNOWLEDGE_RETRIEVAL!r}.")
# Hybrid ranking: with an embeddings model named here (one the upstream's /v1/embeddings serves), the indexing task
# stores each passage's vector and answers fuse full-text and nearest-vector ranks; empty: full-text only (offline).
KNOWLEDGE_EMBEDDINGS_MODEL = env.str("KNOWLEDGE_EMBEDDINGS_MODEL", default="")
# Passages left without a vector (the embeddings model was down) are embedded by housekeeping's catch-up, at most
# this many per run, so a backlog is worked through a run at a time instead of in one long task.
KNOWLEDGE_EMBED_PASSAGES_PER_RUN = env.int("KNOWLEDGE_EMBED_PASSAGES_PER_RUN", default=2_000)
if KNOWLEDGE_EMBED_PASSAGES_PER_RUN < 1:
    raise ImproperlyConfigured("KNOWLEDGE_EMBED_PASSAGES_PER_RUN must be at least 1.")
# Uploads bigger than this are streamed to a temporary file, never held whole in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

# Under uvicorn, request threads are reused (chatsite/asgi.py); at most this many idle ones are kept.
ASGI_IDLE_REQUEST_THREADS = env.int("ASGI_IDLE_REQUEST_THREADS", default=256)

# Logs: readable text by default, one JSON object per line with LOG_FORMAT=json (for log shippers). Every line
# carries the request id (and user and conversation ids where known); chatsite.access logs one line per
# request (ACCESS_LOG=0 turns it off). No message text or secrets are logged at INFO.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'text' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "chatsite.observability.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id_text)s] %(message)s"},
        "json": {"()": "chatsite.observability.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "chatsite.access": {"level": "INFO" if env.bool("ACCESS_LOG", default=True) else "WARNING"},
    },
}

# Prometheus metrics at /metrics: only with a bearer token (METRICS_TOKEN) or from listed client addresses
# (METRICS_ALLOWED_IPS, the connection's own address: no proxy headers); otherwise 404. Several uvicorn
# workers: set PROMETHEUS_MULTIPROC_DIR (`manage.py serve` does) so that a scrape adds them up.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
CSRF_FAILURE_VIEW = "chatsite.views.csrf_failure"
