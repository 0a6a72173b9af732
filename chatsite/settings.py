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
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LOGIN_URL = "login"
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
# Sign-up submissions per client address per hour (a taken username is named, so probing is slowed instead).
SIGNUP_ATTEMPTS_PER_HOUR = env.int("SIGNUP_ATTEMPTS_PER_HOUR", default=10)

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
CHAT_CONTEXT_TOKENS = env.int("CHAT_CONTEXT_TOKENS", default=8192)
CHAT_CONTEXT_TOKENS_BY_MODEL = env.dict("CHAT_CONTEXT_TOKENS_BY_MODEL", cast={"value": int}, default={})
CHAT_MAX_ANSWER_TOKENS = env.int("CHAT_MAX_ANSWER_TOKENS", default=512)
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=16000)
CHAT_DAILY_TOKEN_QUOTA = env.int("CHAT_DAILY_TOKEN_QUOTA", default=0)
CHAT_MODEL_TITLES = env.bool("CHAT_MODEL_TITLES", default=True)
CHAT_STALE_TURN_SECONDS = env.int("CHAT_STALE_TURN_SECONDS", default=600)
# A running answer's heartbeat lives this long unless its worker renews it (every 3 s): a worker that dies
# mid-answer leaves the answer failed (and the chat free) within about this many seconds.
CHAT_ANSWER_HEARTBEAT_SECONDS = env.int("CHAT_ANSWER_HEARTBEAT_SECONDS", default=15)
CHAT_SHOW_REVIEWER = env.bool("CHAT_SHOW_REVIEWER", default=False)
# A temporary chat is never listed and is deleted this many hours after it starts (manage.py housekeeping).
CHAT_TEMPORARY_HOURS = env.int("CHAT_TEMPORARY_HOURS", default=24)
# `manage.py serve` runs `manage.py housekeeping` at start and then this often; 0: never (run it from cron instead).
CHAT_HOUSEKEEPING_SECONDS = env.int("CHAT_HOUSEKEEPING_SECONDS", default=3600)
if CHAT_HOUSEKEEPING_SECONDS < 0:
    raise ImproperlyConfigured("CHAT_HOUSEKEEPING_SECONDS must be 0 (off) or a number of seconds.")
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
# A user's memories in the system prompt (personal app): the most recent that fit in this many characters.
CHAT_MEMORY_PROMPT_CHARS = env.int("CHAT_MEMORY_PROMPT_CHARS", default=2_000)
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
