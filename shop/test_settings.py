"""Settings for the test suite: the project's settings plus a probe app.

The probe app holds test-only event types, a consumer group and a table of the
effects its handlers applied, so the outbox can be exercised without the shop.
"""

from shop.settings import *  # noqa: F403
from shop.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "outbox.tests.probe"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
OUTBOX_RETRY_BACKOFF_S = 0.0
OUTBOX_MAX_ATTEMPTS = 3
