"""Hold points: a test holds one, a thread reaching it waits there until it lets go."""

import threading

import pytest
from django.db import connection, transaction

from conftest import wait_for
from shop import failpoints

pytestmark = pytest.mark.django_db(transaction=True)


def _reach_in_a_thread(name: str, key: int, reached: list) -> threading.Thread:
    def run() -> None:
        try:
            failpoints.reach(name, key=key)
            reached.append(key)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_held_point_keeps_whoever_reaches_it_until_released(settings):
    settings.FAILPOINTS_ENABLED = True
    reached: list[int] = []

    with failpoints.hold("test.point", 7, 9) as grip:
        # when
        waiter = _reach_in_a_thread("test.point", 7, reached)
        other_key = _reach_in_a_thread("test.point", 8, reached)

        # then only the held key waits, and the test sees it waiting
        wait_for(lambda: grip.waiting() == {7}, timeout=10)
        other_key.join(timeout=10)
        assert reached == [8]

        grip.release(7)
        waiter.join(timeout=10)
        assert grip.waiting() == set()
    assert reached == [8, 7]


def test_a_process_waiting_at_a_point_can_be_seen_blocking_another(settings):
    # given: a thread that took a row lock, then waits at a point
    settings.FAILPOINTS_ENABLED = True
    from orders.models import CatalogueItem

    item = CatalogueItem.objects.create(sku="FP-1", name="x", price="1.00")

    def lock_then_reach() -> None:
        try:
            with transaction.atomic():
                CatalogueItem.objects.select_for_update().get(pk=item.pk)
                failpoints.reach("test.locked")
        finally:
            connection.close()

    def update() -> None:
        try:
            CatalogueItem.objects.filter(pk=item.pk).update(name="y")
        finally:
            connection.close()

    with failpoints.hold("test.locked") as grip:
        holder = threading.Thread(target=lock_then_reach)
        holder.start()
        wait_for(lambda: grip.waiting() == {0}, timeout=10)
        assert grip.blocking() == set()
        blocked = threading.Thread(target=update)
        blocked.start()

        # then
        wait_for(lambda: grip.blocking() == {0}, timeout=10)
        grip.release()
        holder.join(timeout=10)
        blocked.join(timeout=10)
    item.refresh_from_db()
    assert item.name == "y"


def test_points_cost_nothing_when_disabled(settings, django_assert_num_queries):
    settings.FAILPOINTS_ENABLED = False

    with failpoints.hold("test.point"), django_assert_num_queries(0):
        failpoints.reach("test.point")  # returns at once although held
