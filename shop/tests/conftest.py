"""Fixtures of the shop's own tests."""

import uuid

import pytest
from django.core.cache import cache


@pytest.fixture
def rate_limits(settings):
    """Rate limits on, counted under a cache key prefix of this test's own (removed after)."""
    settings.RATELIMIT_ENABLED = True
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    yield settings.RATELIMITS
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
