"""``outbox.atomic``: no savepoints on the consumer's fast path, and nothing lost without them."""

import contextvars
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import outbox
from outbox.models import InboxEntry
from outbox.testing import drain
from outbox.tests.probe.models import Effect, Thing
from outbox.tests.support import GROUPS, applied_steps, thing_event
from outbox.transactions import joining

pytestmark = pytest.mark.django_db(transaction=True)


def _savepoints(queries: list[dict]) -> int:
    return sum(1 for query in queries if query["sql"].startswith("SAVEPOINT"))


def test_a_batch_s_service_blocks_make_no_savepoints():
    # given three events that one read hands to each group as one batch
    thing = Thing.objects.create(name="thing")
    for _ in range(3):
        thing_event(thing.pk)
    # when they are applied (each handler writes in an outbox.atomic() block)
    with CaptureQueriesContext(connection) as captured:
        assert drain() == 3 * len(GROUPS)
    # then no block made a savepoint, and every event was applied once, in order
    assert _savepoints(captured.captured_queries) == 0
    assert [applied_steps(group, thing.pk) for group in GROUPS] == [[1, 2, 3]] * 2


@pytest.mark.parametrize("caught_at", [1, 2])
def test_a_handler_that_catches_a_failed_block_keeps_its_own_work_and_the_batch(caught_at):
    # given a batch in which one handler catches what a block without a savepoint raised,
    # as the batch's last event and before another
    thing = Thing.objects.create(name="thing")
    for step in (1, 2):
        thing_event(thing.pk, kind="caught" if step == caught_at else "ok")
    # when the batch is applied
    assert drain() == 2 * len(GROUPS)
    # then only the failed block was undone: every event's effect and inbox row committed
    assert [applied_steps(group, thing.pk) for group in GROUPS] == [[1, 2]] * 2
    assert not Effect.objects.filter(step=-1).exists()
    assert InboxEntry.objects.filter(group__in=GROUPS).count() == 2 * len(GROUPS)


def test_a_block_outside_a_consumer_is_a_savepoint_as_transaction_atomic_is():
    with CaptureQueriesContext(connection) as captured:
        with outbox.atomic():
            with outbox.atomic():
                Thing.objects.create(name="inner")
    assert _savepoints(captured.captured_queries) == 1


def test_work_a_batch_hands_to_another_thread_makes_its_savepoints():
    # given a handler's context, inside a fast batch, copied to a thread (as payments'
    # provider calls are)
    seen = []

    def elsewhere() -> None:
        try:
            with CaptureQueriesContext(connection) as captured:
                with outbox.atomic():
                    with outbox.atomic():
                        Thing.objects.create(name="elsewhere")
            seen.append(_savepoints(captured.captured_queries))
        finally:
            connection.close()

    with joining():
        thread = threading.Thread(target=contextvars.copy_context().run, args=(elsewhere,))
        thread.start()
        thread.join(timeout=30)
    # then its nested block was a savepoint there
    assert seen == [1]
