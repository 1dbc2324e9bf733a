import pytest


@pytest.fixture(autouse=True)
def _one_partition(settings):
    """The outbox's own tests look at one stream; tests of several partitions set their own."""
    settings.OUTBOX_PARTITIONS = 1
