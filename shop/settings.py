"""Settings for the shop.

Every value comes from the environment (django-environ), with defaults that run
on one machine: SQLite when DATABASE_URL is unset and Redis on localhost.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from outbox.conf import beat_schedule as outbox_beat_schedule
from shop.logs import logging_config, parse_levels
from shop.rates import Rate

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
# Only for DEBUG (make run): with DEBUG off the key must come from the environment,
# since anyone who knows it can forge sessions, messages and other signed data.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-change-me"  # noqa: S105 - public on purpose
SECRET_KEY = env.str("SECRET_KEY", default="")
if not DEBUG and SECRET_KEY in ("", DEVELOPMENT_SECRET_KEY):
    # One readable line and a non-zero exit, not a traceback.
    raise SystemExit(
        "SECRET_KEY is unset or the development default while DEBUG is off: set SECRET_KEY "
        "to a long random value (python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
        "or set DEBUG=true on a development machine."
    )
SECRET_KEY = SECRET_KEY or DEVELOPMENT_SECRET_KEY
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS (see production.env.example) -------------------------------------
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" makes a request
# whose proxy set that header count as secure. Only set it when the proxy always
# overwrites the header, or a client could claim HTTPS on plain HTTP.
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise SystemExit(
        "SECURE_PROXY_SSL_HEADER must be HEADER,VALUE (e.g. HTTP_X_FORWARDED_PROTO,https), "
        f"not {','.join(_proxy_ssl_header)!r}"
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if _proxy_ssl_header else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers probe health over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
# A browser session (the admin's, the browsable API's) lasts this long; beat deletes expired ones.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
X_FRAME_OPTIONS = "DENY"
# Bigger bodies are refused with 413 (an order of 50 lines is about 3 KB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "shop",
    "outbox",
    "orders",
    "inventory",
    "payments",
    "shipping",
    "notifications",
]

MIDDLEWARE = [
    # A request id for every request, and the context its events and log lines carry.
    "shop.middleware.RequestContextMiddleware",
    "shop.metrics.MetricsMiddleware",
    # Whatever fails below it, a client of /api/ gets a JSON error (metrics count it).
    "shop.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's, the API docs') from the web process itself, also under gunicorn.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": environ.Env.db_url_config(_database_url)}
if not DATABASES["default"].get("ENGINE"):
    raise ImproperlyConfigured(
        f"DATABASE_URL {_database_url!r} is not a database URL (e.g. postgres://user@host:5432/name)"
    )
# Persistent connections, checked before reuse: a web or worker process outlives a
# database restart without serving errors from a dead connection.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes share the file. IMMEDIATE transactions take the write
    # lock up front, so a busy database makes them wait (up to the timeout) instead
    # of failing with "database is locked"; WAL lets readers go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
else:
    # Parameters travel apart from the SQL (psycopg then quotes nothing in Python), and a
    # statement run DATABASE_PREPARE_THRESHOLD times on a connection is prepared: the
    # server parses and plans it once. 0 turns preparing off (a pooler in transaction
    # mode older than PgBouncer 1.21 cannot keep prepared statements).
    _prepare = env.int("DATABASE_PREPARE_THRESHOLD", default=5)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=_prepare or None
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a rule for passwords: its hook ends the user's API tokens when one is changed.
    {"NAME": "shop.auth.RevokeTokensOnPasswordChange"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Without collectstatic (a developer's checkout, the tests) serve them from the apps.
WHITENOISE_USE_FINDERS = DEBUG

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="shop@localhost")

# Logging (shop.logs): LOGGING is made at the end, once the beat schedule is known.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# "plain" lines, or "json": one object per line with the request, correlation and event ids.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain").lower()
try:
    # Per-logger levels, e.g. "outbox.handled=WARNING" (no line per event applied).
    LOG_LEVELS = parse_levels(env.str("LOG_LEVELS", default=""))
except ValueError as exc:
    raise SystemExit(f"LOG_LEVELS: {exc}") from None
# A handler's log lines carry these payload fields of the event it applies.
OUTBOX_LOG_PAYLOAD_FIELDS = ("order_id",)

# Where a browser session's login (/api-auth/login/, for the API docs) goes afterwards.
LOGIN_REDIRECT_URL = "/api/docs/"

# --- REST API -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "shop.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: every answer of /api/, errors too, is JSON (the docs are at /api/docs/).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["shop.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "DEFAULT_SCHEMA_CLASS": "shop.schema.AutoSchema",
    "EXCEPTION_HANDLER": "shop.drf.exception_handler",
    # Names that read as resources ("Orders", "Order cancel"), not "Order Collection Api".
    "VIEW_NAME_FUNCTION": "shop.drf.view_name",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shop API",
    "DESCRIPTION": "An event-driven shop built on a transactional outbox.",
    "VERSION": "1.0.0",
    # Serve Swagger UI from this server, not a CDN: the docs work offline too.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models name their states "Status": give each enum its own name.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.Order.Status",
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "ShipmentStatusEnum": "shipping.models.Shipment.Status",
        "ReservationStatusEnum": "inventory.models.Reservation.Status",
        "DeadLetterStatusEnum": "outbox.models.DeadLetter.Status",
    },
}

# Bearer token a Prometheus scraper sends to /metrics (staff sessions may read it too).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# --- API tokens (django-rest-knox) -------------------------------------------
# Tokens are stored hashed; each login makes a new one. They end at expiry, at
# logout, and when the user's password changes.
REST_KNOX = {
    "TOKEN_TTL": timedelta(seconds=env.int("AUTH_TOKEN_TTL_S", default=10 * 3600)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
# Live tokens one user may hold (one per device or client); a new login beyond
# this revokes the oldest.
AUTH_TOKENS_PER_USER = env.int("AUTH_TOKENS_PER_USER", default=10)

# --- Cache ------------------------------------------------------------------
# Django's cache, on the shared Redis: rate limit counters live here, so every web
# process and host counts against the same limits.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # The Redis of the streams unless told otherwise (REDIS_URL, below).
        "LOCATION": env.str("CACHE_URL", default="")
        or env.str("REDIS_URL", default="redis://localhost:6379/0"),
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="shop-cache"),
        "TIMEOUT": 300,
    }
}

# --- Rate limits -------------------------------------------------------------
# "COUNT/PERIOD", the period in s, m, h or d with an optional number: "10/15m".
# Counted in fixed windows in the cache; over the limit is 429 with Retry-After.
RATELIMIT_ENABLED = env.bool("RATELIMIT_ENABLED", default=True)
RATELIMITS = {
    # failed logins for one username, and login attempts from one client address
    "login_user": env.str("RATELIMIT_LOGIN_USER", default="10/15m"),
    "login_address": env.str("RATELIMIT_LOGIN_ADDRESS", default="30/m"),
    # sign-ups naming one email address, and sign-up attempts from one client address
    "signup_email": env.str("RATELIMIT_SIGNUP_EMAIL", default="3/h"),
    "signup_address": env.str("RATELIMIT_SIGNUP_ADDRESS", default="10/h"),
    # orders placed by one customer, and by anyone from one client address
    "order_user": env.str("RATELIMIT_ORDER_USER", default="20/m"),
    "order_address": env.str("RATELIMIT_ORDER_ADDRESS", default="60/m"),
}
for _scope, _rate in RATELIMITS.items():
    try:
        Rate.parse(_rate)
    except ValueError as exc:
        raise SystemExit(f"RATELIMIT_{_scope.upper()}: {exc}") from None
# The client address is REMOTE_ADDR. Behind reverse proxies, list their addresses
# (or networks): X-Forwarded-For is then read from the right, past the trusted
# hops, so a client cannot pick its own address by sending the header.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        raise SystemExit(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network") from None

# --- Redis, Celery and the outbox -------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://localhost:6379/0")

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Longer than any task: a late-acked message is only redelivered after this.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep a pool process's database connection across tasks (Celery closes it around
# every task otherwise); shop.celery drops it when it broke (CONN_HEALTH_CHECKS).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 330

# How many streams a new event log is split into (then kept in the database; change it
# with manage.py outbox_repartition). Each (group, partition) has one reader at a time.
OUTBOX_PARTITIONS = env.int("OUTBOX_PARTITIONS", default=8)
# Prefix of every Redis key the outbox uses (streams, markers) and of its NOTIFY channel.
OUTBOX_STREAM_PREFIX = env.str("OUTBOX_STREAM_PREFIX", default="shop")
OUTBOX_RELAY_BATCH_SIZE = env.int("OUTBOX_RELAY_BATCH_SIZE", default=500)
OUTBOX_CONSUMER_BATCH_SIZE = env.int("OUTBOX_CONSUMER_BATCH_SIZE", default=100)
# Attempts before an event becomes a dead letter, and the backoff between them.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=5)
OUTBOX_RETRY_BACKOFF_S = env.float("OUTBOX_RETRY_BACKOFF_S", default=1.0)
OUTBOX_RETRY_BACKOFF_MAX_S = env.float("OUTBOX_RETRY_BACKOFF_MAX_S", default=60.0)
# Beat's safety-net poll of whatever partition no reader holds.
OUTBOX_POLL_INTERVAL_S = env.float("OUTBOX_POLL_INTERVAL_S", default=2.0)
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=7)
# The relay and every consumer group run as readers inside each worker pool process.
OUTBOX_READERS = env.bool("OUTBOX_READERS", default=True)
# The event schema snapshot leaves out the test suite's and the benchmark's events.
OUTBOX_SCHEMA_SNAPSHOT_EXCLUDE = ("outbox.tests", "bench")
# /health/ready: at most this many entries a group has not read yet, and an unpublished
# event at most this old (seconds).
OUTBOX_READY_MAX_LAG = env.int("OUTBOX_READY_MAX_LAG", default=10_000)
OUTBOX_READY_MAX_UNPUBLISHED_AGE_S = env.float("OUTBOX_READY_MAX_UNPUBLISHED_AGE_S", default=60.0)
# Where the worker's processes leave the heartbeat that `manage.py outbox_worker_alive` reads.
OUTBOX_HEARTBEAT_DIR = env.str("OUTBOX_HEARTBEAT_DIR", default="") or None

# How long an order's Idempotency-Key is remembered; an older one places a new order.
IDEMPOTENCY_KEY_RETENTION_HOURS = env.int("IDEMPOTENCY_KEY_RETENTION_HOURS", default=24)
if IDEMPOTENCY_KEY_RETENTION_HOURS < 1:
    raise ImproperlyConfigured("IDEMPOTENCY_KEY_RETENTION_HOURS must be at least 1")
# How long a payment token is kept behind its reference (payments reads it once, to charge).
PAYMENT_TOKEN_RETENTION_DAYS = env.int("PAYMENT_TOKEN_RETENTION_DAYS", default=7)
if PAYMENT_TOKEN_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("PAYMENT_TOKEN_RETENTION_DAYS must be at least 1")

CELERY_BEAT_SCHEDULE = {
    **outbox_beat_schedule(poll_interval_s=OUTBOX_POLL_INTERVAL_S),
    "orders-prune-idempotency-keys": {
        "task": "orders.tasks.prune_idempotency_keys",
        "schedule": 3600.0,
    },
    "shop-prune-auth-tokens": {"task": "shop.tasks.auth_tokens_prune", "schedule": 3600.0},
    "shop-prune-payment-tokens": {"task": "shop.tasks.payment_tokens_prune", "schedule": 3600.0},
    "shop-prune-sessions": {"task": "shop.tasks.sessions_prune", "schedule": 3600.0},
}

# --- The saga: the payment provider, retries of its calls, deadlines ------------------
# The payment provider (a class taking no arguments); the simulated one keeps its own ledger.
PAYMENTS_PROVIDER = env.str("PAYMENTS_PROVIDER", default="payments.simulated.SimulatedProvider")
# Carry the provider call out right after the intent commits (else: beat's poll finds it),
# on a few threads of the recording process ("threads") or as Celery tasks ("celery").
PAYMENTS_DISPATCH_ON_COMMIT = env.bool("PAYMENTS_DISPATCH_ON_COMMIT", default=True)
PAYMENTS_DISPATCH = env.str("PAYMENTS_DISPATCH", default="threads")
if PAYMENTS_DISPATCH not in ("threads", "celery"):
    raise ImproperlyConfigured(
        f"PAYMENTS_DISPATCH must be threads or celery, not {PAYMENTS_DISPATCH!r}"
    )
PAYMENTS_DISPATCH_THREADS = env.int("PAYMENTS_DISPATCH_THREADS", default=4)
# An open charge or refund not answered after this long is sent again by beat.
PAYMENTS_RESEND_AFTER_S = env.float("PAYMENTS_RESEND_AFTER_S", default=30.0)
# After a provider call without an answer: first delay, doubling per try, capped.
PAYMENTS_RETRY_BACKOFF_S = env.float("PAYMENTS_RETRY_BACKOFF_S", default=1.0)
PAYMENTS_RETRY_BACKOFF_MAX_S = env.float("PAYMENTS_RETRY_BACKOFF_MAX_S", default=60.0)
# Tries of a charge that gets no answer before it is recorded as failed.
PAYMENTS_MAX_TRIES = env.int("PAYMENTS_MAX_TRIES", default=5)
PAYMENTS_POLL_INTERVAL_S = env.float("PAYMENTS_POLL_INTERVAL_S", default=5.0)
# How long a PENDING or CANCELLING order waits for the other apps before it is resolved.
ORDERS_DEADLINE_S = env.float("ORDERS_DEADLINE_S", default=120.0)
ORDERS_DEADLINE_POLL_INTERVAL_S = env.float("ORDERS_DEADLINE_POLL_INTERVAL_S", default=5.0)
# seed_demo keeps the demo users' generated passwords here (make run shows them; demo uses them).
DEMO_CREDENTIALS_FILE = env.path("DEMO_CREDENTIALS_FILE", default=BASE_DIR / ".demo-users.json")
# Named hold points (shop.failpoints) for tests that force an ordering; off in production.
FAILPOINTS_ENABLED = env.bool("FAILPOINTS_ENABLED", default=False)
# Callables whose dicts are merged into outbox_status and /api/outbox/status/.
OUTBOX_STATUS_HOOKS = ["orders.selectors.deadline_report"]
CELERY_BEAT_SCHEDULE |= {
    "payments-resend-due": {
        "task": "payments.tasks.resend_due",
        "schedule": PAYMENTS_POLL_INTERVAL_S,
    },
    "orders-expire-overdue": {
        "task": "orders.tasks.expire_overdue",
        "schedule": ORDERS_DEADLINE_POLL_INTERVAL_S,
    },
}

# Beat's routine tasks log their "received", "succeeded" and "Sending due task" lines at
# DEBUG: at INFO a shop at rest says next to nothing.
try:
    LOGGING = logging_config(
        fmt=LOG_FORMAT,
        level=LOG_LEVEL,
        levels=LOG_LEVELS,
        routine_tasks={entry["task"] for entry in CELERY_BEAT_SCHEDULE.values()},
    )
except ValueError as exc:  # LOG_FORMAT is neither plain nor json
    raise SystemExit(str(exc)) from None
