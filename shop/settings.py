"""Settings for the shop.

Every value comes from the environment (django-environ), with defaults that run
on one machine: SQLite when DATABASE_URL is unset and Redis on localhost.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
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
    "django.middleware.security.SecurityMiddleware",
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
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes share the file. IMMEDIATE transactions take the write
    # lock up front, so a busy database makes them wait (up to the timeout) instead
    # of failing with "database is locked"; WAL lets readers go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="shop@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- REST API -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "shop.api.exception_handler",
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
# every task otherwise): a reconnect costs more than a relay or consume run.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 330

# How many streams the event log is split into; an aggregate always maps to one.
OUTBOX_PARTITIONS = env.int("OUTBOX_PARTITIONS", default=1)
# Prefix of every Redis key the outbox uses (streams, markers, doorbells).
OUTBOX_STREAM_PREFIX = env.str("OUTBOX_STREAM_PREFIX", default="shop")
OUTBOX_RELAY_BATCH_SIZE = env.int("OUTBOX_RELAY_BATCH_SIZE", default=500)
OUTBOX_CONSUMER_BATCH_SIZE = env.int("OUTBOX_CONSUMER_BATCH_SIZE", default=100)
# Attempts before an event becomes a dead letter, and the backoff between them.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=5)
OUTBOX_RETRY_BACKOFF_S = env.float("OUTBOX_RETRY_BACKOFF_S", default=1.0)
OUTBOX_RETRY_BACKOFF_MAX_S = env.float("OUTBOX_RETRY_BACKOFF_MAX_S", default=60.0)
# The beat schedule: how often the relay and the consumers are polled as a safety net.
OUTBOX_POLL_INTERVAL_S = env.float("OUTBOX_POLL_INTERVAL_S", default=2.0)
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=7)
# Wake the relay by a Celery task right after each commit that published events.
OUTBOX_WAKE_ON_COMMIT = env.bool("OUTBOX_WAKE_ON_COMMIT", default=True)

CELERY_BEAT_SCHEDULE = {
    "outbox-relay": {"task": "outbox.tasks.relay", "schedule": OUTBOX_POLL_INTERVAL_S},
    "outbox-consume": {"task": "outbox.tasks.consume_all", "schedule": OUTBOX_POLL_INTERVAL_S},
    "outbox-trim": {"task": "outbox.tasks.trim_streams", "schedule": 60.0},
    "outbox-prune": {"task": "outbox.tasks.prune", "schedule": 3600.0},
}

# --- The saga: the payment provider, retries of its calls, deadlines ------------------
# The payment provider (a class taking no arguments); the simulated one keeps its own ledger.
PAYMENTS_PROVIDER = env.str("PAYMENTS_PROVIDER", default="payments.simulated.SimulatedProvider")
# Send the provider call as a Celery task right after the intent commits (else: beat's poll).
PAYMENTS_DISPATCH_ON_COMMIT = env.bool("PAYMENTS_DISPATCH_ON_COMMIT", default=True)
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
