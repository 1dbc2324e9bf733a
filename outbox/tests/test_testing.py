"""The test support the library offers its users (outbox.testing), used as they would."""

import pytest

from outbox.models import InboxEntry
from outbox.registry import registry
from outbox.runtime import Runtime
from outbox.testing import drain, wait_for
from outbox.tests.probe.models import Effect, Thing
from outbox.tests.support import GROUPS, applied_steps, thing_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_readers_in_the_test_s_process_apply_what_is_committed(outbox_readers):
    thing = Thing.objects.create(name="thing")
    thing_event(thing.pk)
    wait_for(lambda: Effect.objects.count() == len(GROUPS), message="both groups to apply it")
    assert [applied_steps(group, thing.pk) for group in GROUPS] == [[1], [1]]


def test_entries_delivered_twice_are_applied_once(outbox_faults):
    thing = Thing.objects.create(name="thing")
    thing_event(thing.pk)
    thing_event(thing.pk)
    drain()
    assert outbox_faults.deliver_twice() == 2
    assert drain() == 0
    assert [applied_steps(group, thing.pk) for group in GROUPS] == [[1, 2], [1, 2]]


def test_a_group_held_back_catches_up_when_let_go(outbox_readers, outbox_faults):
    thing = Thing.objects.create(name="thing")
    with outbox_faults.group_held_back("probe-alpha"):
        thing_event(thing.pk)
        wait_for(lambda: applied_steps("probe-beta", thing.pk) == [1], message="beta to apply")
        # alpha's leases are held here: no reader can have applied it
        assert applied_steps("probe-alpha", thing.pk) == []
    wait_for(lambda: applied_steps("probe-alpha", thing.pk) == [1], message="alpha to catch up")


def test_a_lingering_group_applies_a_burst_in_one_batch_and_the_others_are_unchanged(
    monkeypatch,
):
    # given readers in this process, probe-alpha lingering a second between reads while busy
    monkeypatch.setattr(registry.groups["probe-alpha"], "linger_ms", 1000)
    runtime = Runtime()
    runtime.start()
    try:
        thing = Thing.objects.create(name="thing")
        thing_event(thing.pk)
        wait_for(lambda: Effect.objects.count() == len(GROUPS), message="the first event")
        # when a burst follows while it lingers
        for _ in range(5):
            thing_event(thing.pk)
        wait_for(lambda: Effect.objects.count() == 6 * len(GROUPS), message="the burst")
    finally:
        runtime.stop()
    # then probe-alpha applied the whole burst in one read and one transaction (its
    # inbox rows share their batch's time), each event once and in order
    burst = InboxEntry.objects.filter(group="probe-alpha").order_by("processed_at")[1:]
    assert len({entry.processed_at for entry in burst}) == 1
    assert [applied_steps(group, thing.pk) for group in GROUPS] == [[1, 2, 3, 4, 5, 6]] * 2
