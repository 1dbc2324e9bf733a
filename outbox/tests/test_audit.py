"""The auditor on a clean log, after a crash, and on a log with each kind of fault."""

import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from outbox.audit import audit
from outbox.models import InboxEntry, OutboxEvent
from outbox.testing import drain
from outbox.tests.probe.models import Thing
from outbox.tests.support import GROUPS, thing_event

pytestmark = pytest.mark.django_db


def _log(events_per_thing: int = 3) -> list[Thing]:
    things = [Thing.objects.create(name=f"t{n}") for n in range(2)]
    for thing in things:
        for _ in range(events_per_thing):
            thing_event(thing.pk)
    drain()
    return things


def test_a_drained_log_audits_clean_and_the_command_says_so():
    _log()
    results = audit()
    assert {name: r.faults for name, r in results.items() if name in GROUPS} == {
        "probe-alpha": 0,
        "probe-beta": 0,
    }
    out = StringIO()
    call_command("outbox_audit", "--settle", "0", stdout=out)
    assert "probe-alpha" in out.getvalue()


def test_unpublished_events_are_in_flight_not_lost():
    thing = Thing.objects.create(name="t")
    thing_event(thing.pk)
    result = audit()["probe-alpha"]
    assert (result.lost, result.in_flight) == (0, 1)


def test_a_deleted_inbox_row_a_duplicated_effect_and_a_reordered_pair_are_each_reported():
    # given a drained log
    things = _log()
    alpha = InboxEntry.objects.filter(group="probe-alpha")
    beta = InboxEntry.objects.filter(group="probe-beta").order_by("id")
    # when an inbox row is deleted (an effect lost) ...
    alpha.filter(event_id=OutboxEvent.objects.order_by("id").first().event_id).delete()
    # ... an event is applied twice (only possible past the unique constraint) ...
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE outbox_inboxentry DROP CONSTRAINT outbox_inbox_group_event_unique"
        )
    twice = InboxEntry.objects.filter(group="probe-alpha").last()
    InboxEntry.objects.create(
        group="probe-alpha", event_id=twice.event_id, event_type=twice.event_type
    )
    # ... two of an aggregate's events are applied the wrong way round ...
    first, second = [
        row
        for row in beta
        if OutboxEvent.objects.get(event_id=row.event_id).aggregate_id == str(things[1].pk)
    ][:2]
    first.event_id, second.event_id = second.event_id, first.event_id
    InboxEntry.objects.bulk_update([first, second], ["event_id"])
    # ... and an inbox row names an event the log never had
    InboxEntry.objects.create(
        group="probe-beta", event_id=uuid.uuid4(), event_type="probe.ThingHappened"
    )
    # then the audit reports each, and the command exits non-zero in one line
    results = audit()
    assert (results["probe-alpha"].lost, results["probe-alpha"].duplicated) == (1, 1)
    assert (results["probe-beta"].out_of_order, results["probe-beta"].unexpected) == (1, 1)
    with pytest.raises(
        CommandError, match=r"^the audit found faults in: probe-alpha \(2\), probe-beta \(2\)$"
    ):
        call_command("outbox_audit", "--settle", "0", stdout=StringIO())
