"""Settings for the test suite: the project's settings plus a probe app.

The probe app holds test-only event types, a consumer group and a table of the
effects its handlers applied, so the outbox can be exercised without the shop.
"""

import os
import tempfile

# DEBUG is off in tests, so the settings need a key that is not the public default.
os.environ.setdefault("SECRET_KEY", "test-settings-only-not-a-secret-" + "x" * 32)

from shop.settings import *  # noqa: F403
from shop.settings import INSTALLED_APPS, env

INSTALLED_APPS = [*INSTALLED_APPS, "outbox.tests.probe"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
OUTBOX_RETRY_BACKOFF_S = 0.0
OUTBOX_MAX_ATTEMPTS = 3
# Rate limits are off except in the tests of them (which turn them on with a cache
# key prefix of their own), so other tests need not mind how many logins they make.
RATELIMIT_ENABLED = env.bool("RATELIMIT_ENABLED", default=False)
# Demo passwords of seed_demo run by tests: never the checkout's own file.
DEMO_CREDENTIALS_FILE = os.path.join(
    tempfile.gettempdir(), f"shop-test-demo-users-{os.getpid()}.json"
)
