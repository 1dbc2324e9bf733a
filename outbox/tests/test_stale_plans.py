"""A prepared statement that a migration outdated is the session's fault, not the event's."""

import dataclasses

import psycopg
import pytest
from django.db import NotSupportedError, connection

from outbox import layout as layouts
from outbox.consumer import consume
from outbox.failures import STALE_PLAN, stale_plan
from outbox.models import DeadLetter, DeliveryFailure
from outbox.registry import registry
from outbox.relay import relay_partition
from outbox.runtime import _session_lost
from outbox.tests.probe.models import Thing
from outbox.tests.support import applied_steps, thing_event

pytestmark = pytest.mark.django_db(transaction=True)


def _stale() -> NotSupportedError:
    # What Django raises for PostgreSQL's refusal: its NotSupportedError from psycopg's error.
    error = NotSupportedError(STALE_PLAN)
    error.__cause__ = psycopg.errors.FeatureNotSupported(STALE_PLAN)
    return error


def test_only_the_outdated_plan_error_counts_as_a_lost_session():
    assert stale_plan(_stale()) and _session_lost(_stale())
    other = NotSupportedError("FOR UPDATE is not allowed with aggregate functions")
    other.__cause__ = psycopg.errors.FeatureNotSupported(str(other))
    assert not stale_plan(other)
    assert not stale_plan(ValueError(STALE_PLAN))


def test_a_handler_meeting_an_outdated_plan_is_not_counted_and_applies_on_the_next_session(
    monkeypatch,
):
    # given an event for probe-alpha, relayed
    thing = Thing.objects.create(name="thing")
    thing_event(thing.pk)
    partition = layouts.current().partition_for("thing", str(thing.pk))
    assert relay_partition(partition).published == 1
    group = registry.groups["probe-alpha"]
    handler = group.handlers["probe.ThingHappened"]

    def outdated(message):
        raise _stale()

    # when its handler meets a prepared statement a migration outdated
    monkeypatch.setitem(
        group.handlers, handler.event_type, dataclasses.replace(handler, func=outdated)
    )
    with pytest.raises(NotSupportedError):
        consume("probe-alpha", partition)

    # then no failure is counted against the event and nothing is dead-lettered
    assert not DeliveryFailure.objects.exists() and not DeadLetter.objects.exists()
    assert applied_steps("probe-alpha", thing.pk) == []

    # and once the session is new (the handler works again) the event applies, once
    monkeypatch.setitem(group.handlers, handler.event_type, handler)
    assert consume("probe-alpha", partition).handled == 1
    assert applied_steps("probe-alpha", thing.pk) == [1]


def _prepared(prefix: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall() if row[0].startswith(prefix)]


def test_the_relay_marks_its_rows_with_a_plan_made_for_the_table_as_it_is_now():
    # given a session that relayed batch after batch while the outbox table was small
    thing = Thing.objects.create(name="thing")
    for _ in range(12):
        thing_event(thing.pk)
        assert relay_partition(0).published == 1
    # then the statement that marks rows published was never prepared: a generic plan
    # made for a small table scans the whole table for each batch's ids once it grows,
    # while the batch's SELECT is (its partial index keeps that plan cheap)
    assert _prepared("SELECT id, event_id") != []
    assert _prepared("UPDATE outbox_outboxevent SET published_at") == []
