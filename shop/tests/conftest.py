"""Fixtures of the shop's own tests."""

import uuid

import pytest
from django.core.cache import cache

from shop import ratelimit
from shop.tests.faults import OwnRedis, create_database, drop_database

# 10 s into a minute, 130 s into a quarter hour, 2830 s into an hour: no window
# ends while a test runs, so no count starts again halfway through one.
FROZEN_TIME = 1_000_000_030.0


@pytest.fixture
def rate_limits(settings, monkeypatch):
    """Rate limits on, counted under a cache key prefix of this test's own (removed after),
    on a clock that stands still (a test that needs it moves it)."""
    monkeypatch.setattr(ratelimit, "_now", lambda: FROZEN_TIME)
    settings.RATELIMIT_ENABLED = True
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    yield settings.RATELIMITS
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture
def own_database(settings):
    """The URL of a database of the test's own on the test server (dropped after), for a
    shop running in processes of its own: they cannot see the test's transaction."""
    db = settings.DATABASES["default"]
    server = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
    )
    name = f"{db['NAME']}_own"
    create_database(f"{server}/postgres", name)
    yield f"{server}/{name}"
    drop_database(f"{server}/postgres", name)


@pytest.fixture
def own_redis(request, tmp_path):
    """A Redis server of the test's own, on the test module's ``REDIS_PORT`` (stopped after)."""
    server = OwnRedis(request.module.REDIS_PORT, tmp_path)
    yield server
    server.stop()
