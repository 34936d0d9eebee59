"""Settings for InfTool.  Every environment variable is read here and nowhere else.

``INFTOOL_ENV`` defaults to ``production``: the secrets have no default, a missing one fails
loudly, and DEBUG is off.  ``INFTOOL_ENV=local`` (the Makefile sets it for its targets) works on
one machine with nothing else set (PostgreSQL and Redis on 127.0.0.1); DEBUG stays off there
too unless ``DEBUG=true`` (``make run`` sets it).
"""

from pathlib import Path
from urllib.parse import urlsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Production unless said otherwise: a bare `manage.py` or worker never runs with DEBUG on or
# with a key anyone can read in this repository.  A development machine says
# INFTOOL_ENV=local (the Makefile does for its targets); DEBUG is on only where DEBUG=true.
ENVIRONMENT = env.str("INFTOOL_ENV", default="production")
if ENVIRONMENT not in {"local", "test", "production"}:
    raise environ.ImproperlyConfigured(
        f"INFTOOL_ENV={ENVIRONMENT!r}; use one of local, test, production"
    )
PRODUCTION = ENVIRONMENT == "production"

# ------------------------------------------------------------------ core
DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION:
    for _name in ("SECRET_KEY", "ALLOWED_HOSTS"):
        if not env.str(_name, default=""):
            raise environ.ImproperlyConfigured(
                f"{_name} is not set, and INFTOOL_ENV is production (its default): set {_name}, or"
                " INFTOOL_ENV=local on a development machine (make sets it for its targets)"
            )
    SECRET_KEY = env.str("SECRET_KEY")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="inftool-local-development-key-not-for-production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "channels",
    "csp",
    "inftool_web.core",
    "inftool_web.catalog",
    "inftool_web.synth",
    "inftool_web.loop",
    "inftool_web.api",
    "inftool_web.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "inftool_web.core.limits.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "inftool_web.urls"
WSGI_APPLICATION = "inftool_web.wsgi.application"
ASGI_APPLICATION = "inftool_web.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# ------------------------------------------------------------------ database
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/inftool"),
}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"].setdefault("CONN_MAX_AGE", 0)
# Connections per process kept in a pool (psycopg_pool); 0 = none, each thread opens its own.
# The ASGI entry point (inftool_web/asgi.py) sets a default: a web process serves every
# request on a new thread, so without a pool each request would connect to PostgreSQL anew.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
if DATABASE_POOL_MAX_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # the pool hands out only live connections
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DATABASE_POOL_MAX_SIZE), "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=30.0),
    }
# A node that dies (power, network) holds its advisory locks (the iteration locks) until
# PostgreSQL notices its connection is gone; by default that is hours of TCP retransmits.
# TCP keepalives on both ends make it idle + interval * count seconds (30 + 10 * 3 = one
# minute): libpq's keepalives for this side, and the server's tcp_keepalives_* and
# tcp_user_timeout GUCs set for this session, so the server drops a dead client's session.
DATABASE_KEEPALIVES_IDLE = env.int("DATABASE_KEEPALIVES_IDLE", default=30)
DATABASE_KEEPALIVES_INTERVAL = env.int("DATABASE_KEEPALIVES_INTERVAL", default=10)
DATABASE_KEEPALIVES_COUNT = env.int("DATABASE_KEEPALIVES_COUNT", default=3)
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options.update({
    "keepalives": 1,
    "keepalives_idle": DATABASE_KEEPALIVES_IDLE,
    "keepalives_interval": DATABASE_KEEPALIVES_INTERVAL,
    "keepalives_count": DATABASE_KEEPALIVES_COUNT,
})
_server_timeout_ms = (DATABASE_KEEPALIVES_IDLE + DATABASE_KEEPALIVES_INTERVAL * DATABASE_KEEPALIVES_COUNT) * 1000
_db_options["options"] = " ".join(filter(None, [
    _db_options.get("options", ""),
    f"-c tcp_keepalives_idle={DATABASE_KEEPALIVES_IDLE}",
    f"-c tcp_keepalives_interval={DATABASE_KEEPALIVES_INTERVAL}",
    f"-c tcp_keepalives_count={DATABASE_KEEPALIVES_COUNT}",
    f"-c tcp_user_timeout={_server_timeout_ms}",  # unacknowledged data, where keepalives do not apply
]))
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_inftool")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ------------------------------------------------------------------ redis, celery, channels
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
# LLM tasks are long: a task is acknowledged only when it finishes, so a killed worker's
# task is delivered again; the visibility timeout must outlast the longest task.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=6 * 3600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=6 * 3600 + 300)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=7 * 3600),
    "global_keyprefix": env.str("CELERY_KEY_PREFIX", default=""),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "inftool_web.loop.tasks.synthesize_trajectory": {"queue": "roleplay"},
    "inftool_web.loop.tasks.synthesize_trajectories": {"queue": "roleplay"},
    "inftool_web.loop.tasks.train_*": {"queue": "gpu"},
    "inftool_web.loop.tasks.evaluate_*": {"queue": "gpu"},
}
# Retries of a role-play task on transient errors (model server or database away).
INFTOOL_TASK_MAX_RETRIES = env.int("INFTOOL_TASK_MAX_RETRIES", default=8)
INFTOOL_TASK_RETRY_BACKOFF = env.int("INFTOOL_TASK_RETRY_BACKOFF", default=5)
INFTOOL_TASK_RETRY_BACKOFF_MAX = env.int("INFTOOL_TASK_RETRY_BACKOFF_MAX", default=300)
# Celery's threads and solo pools ignore the time limits above, so the code keeps its own:
# a trajectory's run on a worker, and a training or evaluation stage, that passes its
# deadline is failed with the reason. A run cut short this many times (its worker died:
# out of memory, a crash) is a poison task: it is failed instead of being tried again.
INFTOOL_TRAJECTORY_DEADLINE_SECONDS = env.float("INFTOOL_TRAJECTORY_DEADLINE_SECONDS", default=3600.0)
INFTOOL_STAGE_DEADLINE_SECONDS = env.float("INFTOOL_STAGE_DEADLINE_SECONDS", default=6 * 3600.0)
INFTOOL_MAX_DELIVERIES = env.int("INFTOOL_MAX_DELIVERIES", default=3)
# Trajectories a role-play task runs together (the model decodes them in one batch); a worker
# with -c N threads keeps N x this many in flight.
INFTOOL_SYNTH_CHUNK = env.int("INFTOOL_SYNTH_CHUNK", default=16)
# Worker names (the part before "@" of celery -n) the health report and the dashboard expect to
# answer; one that does not is shown as down.  Empty: any one answering worker will do.
INFTOOL_EXPECTED_WORKERS = env.list("INFTOOL_EXPECTED_WORKERS", default=[])
CELERY_WORKER_QUEUES = env.list("CELERY_WORKER_QUEUES", default=["default", "roleplay", "gpu"])

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # A consumer waits for its next event with a blocking BZPOPMIN of up to 5 s, and
            # redis-py 8 gives up reading after 5 s by default: every socket idle that long was
            # torn down (django/channels_redis#422). Read for longer than the wait.
            "hosts": [{"address": env.str("CHANNELS_REDIS_URL", default=REDIS_URL), "socket_timeout": 30}],
            "prefix": env.str("CHANNELS_PREFIX", default="asgi"),
        },
    }
}

# ------------------------------------------------------------------ models
# Backend per agent role; each iteration may override these in its config.
INFTOOL_VAR_DIR = Path(env.str("INFTOOL_VAR_DIR", default=str(BASE_DIR / "var")))
INFTOOL_LLM_BACKEND = env.str("INFTOOL_LLM_BACKEND", default="embedded")
INFTOOL_LLM_BASE_URL = env.str("INFTOOL_LLM_BASE_URL", default="")
INFTOOL_LLM_MODEL = env.str("INFTOOL_LLM_MODEL", default="")
INFTOOL_LLM_API_KEY = env.str("INFTOOL_LLM_API_KEY", default="")
INFTOOL_ROLE_BACKENDS = {
    role: {
        "backend": env.str(f"INFTOOL_{role.upper()}_BACKEND", default=INFTOOL_LLM_BACKEND),
        "base_url": env.str(f"INFTOOL_{role.upper()}_BASE_URL", default=INFTOOL_LLM_BASE_URL),
        "model": env.str(f"INFTOOL_{role.upper()}_MODEL", default=INFTOOL_LLM_MODEL),
    }
    for role in ("user", "agent", "server", "verifier", "judge")
}
# Hosts an openai-backend role may send requests to (an iteration's base_url included), and
# the one host each API key's variable may go to (VARIABLE=host,...): see core/outbound.py.
# By default, the hosts configured above (and, off production, this machine).
_configured_hosts = {
    (urlsplit(url).hostname or "").lower()
    for url in [INFTOOL_LLM_BASE_URL, *(spec["base_url"] for spec in INFTOOL_ROLE_BACKENDS.values())]
} - {""}
INFTOOL_MODEL_HOSTS = env.list(
    "INFTOOL_MODEL_HOSTS",
    default=sorted(_configured_hosts | (set() if PRODUCTION else {"127.0.0.1", "localhost", "::1"})),
)
INFTOOL_API_KEY_HOSTS = env.dict(
    "INFTOOL_API_KEY_HOSTS",
    default={"INFTOOL_LLM_API_KEY": (urlsplit(INFTOOL_LLM_BASE_URL).hostname or "").lower()}
    if INFTOOL_LLM_BASE_URL else {},
)
# The OpenAI-compatible endpoint under /v1/ serves this checkpoint ("" = embedded model).
INFTOOL_SERVE_MODEL_PATH = env.str("INFTOOL_SERVE_MODEL_PATH", default="")
# What one /v1 request may ask of the shared model.  A request still waiting at the deadline
# gets 504 and its slots are freed; a larger n, max_tokens or set of JSON Schemas gets 400.
INFTOOL_SERVE_TIMEOUT_S = env.float("INFTOOL_SERVE_TIMEOUT_S", default=300.0)
INFTOOL_SERVE_MAX_N = env.int("INFTOOL_SERVE_MAX_N", default=8)
INFTOOL_SERVE_MAX_TOKENS = env.int("INFTOOL_SERVE_MAX_TOKENS", default=4096)
INFTOOL_SERVE_MAX_SCHEMA_BYTES = env.int("INFTOOL_SERVE_MAX_SCHEMA_BYTES", default=64 * 1024)
INFTOOL_SERVE_MAX_TOOLS = env.int("INFTOOL_SERVE_MAX_TOOLS", default=128)
INFTOOL_WATCHDOG_SECONDS = env.float("INFTOOL_WATCHDOG_SECONDS", default=120.0)  # 0 = no sweep for stranded work
INFTOOL_DEMO_ON_EMPTY = env.bool("INFTOOL_DEMO_ON_EMPTY", default=not PRODUCTION)
# The data card's MiniLM checks (near-duplicate requests, paraphrases of BFCL items); the
# test settings turn them off so that every finished test iteration does not load MiniLM.
INFTOOL_DATA_CARD_EMBEDDINGS = env.bool("INFTOOL_DATA_CARD_EMBEDDINGS", default=True)

# ------------------------------------------------------------------ auth, api
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "inftool_web.api.schema.ApiAutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["inftool_web.core.throttles.ApiUserRateThrottle"],
    "DEFAULT_PARSER_CLASSES": [
        "inftool_web.core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "InfTool API",
    "DESCRIPTION": "Tools, personas, iterations, trajectories, evaluations and dataset exports.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# ------------------------------------------------------------------ i18n, static
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# ------------------------------------------------------------------ security
SESSION_COOKIE_HTTPONLY = True
# htmx sends the token from the page (hx-headers on <body>), Swagger UI from its rendered
# script: no script reads the cookie, so scripts may not.
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# The largest request body (API, /v1, forms): larger ones get 413 (inftool_web/core/limits.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts and styles from this site only, no inline
# script or eval (htmx runs with allowEval off), no framing, forms post here only.  Inline
# style *attributes* stay allowed: progress bars and charts size themselves with them.
# Swagger UI (api/docs.py) widens style-src for its own page.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],  # CSP3: 'self' includes ws(s):// to this host
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
if PRODUCTION:
    if DEBUG:
        raise environ.ImproperlyConfigured(
            "DEBUG is on with INFTOOL_ENV=production: it shows settings and code to visitors; unset DEBUG"
        )
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Probes and in-cluster health checks speak plain HTTP to the pod, behind no TLS proxy.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    # Trusted only because the ingress / reverse proxy overwrites this header on every request.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Rate limits (fixed windows in Redis, see inftool_web/core/ratelimit.py).  The test suite logs
# in through the form many times a minute from one address; tests of the limits set their own.
_TEST = ENVIRONMENT == "test"
INFTOOL_LOGIN_RATE_PER_IP = env.str("INFTOOL_LOGIN_RATE_PER_IP", default="100000/min" if _TEST else "30/min")
INFTOOL_LOGIN_RATE_PER_USERNAME = env.str(
    "INFTOOL_LOGIN_RATE_PER_USERNAME", default="100000/min" if _TEST else "10/min"
)
INFTOOL_API_RATE = env.str("INFTOOL_API_RATE", default="100000/min" if _TEST else "600/min")
# Chat completions per API token on /v1 (each may hold model slots for minutes).
INFTOOL_SERVE_RATE = env.str("INFTOOL_SERVE_RATE", default="100000/min" if _TEST else "120/min")
# Proxies in front of the web servers (ingress, load balancer): the client address is this far
# from the right of X-Forwarded-For.  0 = use the socket's address, trusting no header.
INFTOOL_NUM_PROXIES = env.int("INFTOOL_NUM_PROXIES", default=0)

# ------------------------------------------------------------------ logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
