"""Settings for ``manage.py bench_outbox``: the shop's settings plus the benchmark app.

The benchmark app holds bench-only event types, consumer groups and handlers.
Its Redis keys and Celery queue live under their own prefix, so a run can
remove everything it wrote.
"""

import os

# DEBUG is off here, so the settings need a key that is not the public default.
os.environ.setdefault("SECRET_KEY", "bench-settings-only-not-a-secret-" + "x" * 32)
# The outbox's own throughput, not that of a log line per event applied.
os.environ.setdefault("LOG_LEVELS", "outbox.handled=WARNING")

from shop.settings import *  # noqa: F403
from shop.settings import INSTALLED_APPS, REDIS_URL, env

INSTALLED_APPS = [*INSTALLED_APPS, "bench.outbox_app"]
DEBUG = False  # DEBUG keeps every query in memory
OUTBOX_STREAM_PREFIX = env.str("BENCH_STREAM_PREFIX", default="bench")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = f"{OUTBOX_STREAM_PREFIX}:celery"
