"""Fixtures shared by every app's tests. They use the real PostgreSQL and Redis."""

import uuid

import pytest

from outbox import streams


@pytest.fixture(autouse=True)
def _isolated_streams(settings):
    """Each test gets its own Redis key prefix, removed afterwards."""
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    settings.OUTBOX_STREAM_PREFIX = prefix
    yield prefix
    client = streams.get_redis()
    keys = list(client.scan_iter(f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_client():
    return streams.get_redis()
