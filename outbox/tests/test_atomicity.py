"""An event is written with the change it describes, or not at all."""

import pytest
from django.db import transaction
from pydantic import ValidationError

from outbox import InvalidEvent, NotInTransaction, publish
from outbox.models import OutboxEvent
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Thing


class Refused(Exception):
    pass


def thing_rename(*, thing_id: int, name: str) -> None:
    """Service-like: change the row, publish, then fail (e.g. a later check refuses)."""
    with transaction.atomic():
        thing = Thing.objects.select_for_update().get(pk=thing_id)
        thing.name = name
        thing.step += 1
        thing.save(update_fields=["name", "step"])
        publish(ThingHappened(thing_id=thing.pk, step=thing.step))
        raise Refused("the rename is refused after publishing")


@pytest.mark.django_db(transaction=True)
def test_a_failing_service_leaves_neither_its_change_nor_its_event():
    # given
    thing = Thing.objects.create(name="before")
    # when
    with pytest.raises(Refused):
        thing_rename(thing_id=thing.pk, name="after")
    # then
    thing.refresh_from_db()
    assert (thing.name, thing.step) == ("before", 0)
    assert not OutboxEvent.objects.filter(
        aggregate_type="thing", aggregate_id=str(thing.pk)
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_a_committed_service_writes_change_and_event_together():
    thing = Thing.objects.create(name="before")
    with transaction.atomic():
        thing.step = 1
        thing.save(update_fields=["step"])
        publish(ThingHappened(thing_id=thing.pk, step=1))
    row = OutboxEvent.objects.get(aggregate_type="thing", aggregate_id=str(thing.pk))
    assert (row.event_type, row.version, row.aggregate_version) == ("probe.ThingHappened", 1, 1)
    assert row.payload == {"thing_id": thing.pk, "step": 1, "kind": "ok"}
    assert row.published_at is None


@pytest.mark.django_db(transaction=True)
def test_publish_outside_a_transaction_raises_and_writes_nothing():
    with pytest.raises(NotInTransaction, match=r"publish\(probe.ThingHappened\) must run inside"):
        publish(ThingHappened(thing_id=1, step=1))
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"thing_id": "x", "step": 1},  # not a number at all
        {"thing_id": "5", "step": 1},  # a number as a string: strict schemas refuse it
        {"thing_id": 5, "step": 1.5},
        {"thing_id": 5},  # a required field missing
        {"thing_id": 5, "step": 1, "colour": "red"},  # a field the schema forbids
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_payload_that_breaks_its_schema_raises_before_anything_is_written(fields):
    with pytest.raises(ValidationError):
        ThingHappened(**fields)
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"thing_id": "x", "step": 1},
        {"thing_id": "5", "step": 1},
        {"thing_id": 5, "step": 1.0},
        {"thing_id": 5, "step": None},
        {"step": 1},
    ],
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic warns when serializing them
@pytest.mark.django_db(transaction=True)
def test_an_event_built_without_validation_is_still_refused(fields):
    # given an event that skipped validation
    event = ThingHappened.model_construct(**fields)
    # when the caller catches the error and its transaction commits
    with transaction.atomic():
        Thing.objects.create(name="kept")
        with pytest.raises(InvalidEvent, match=r"^probe\.ThingHappened v1: "):
            publish(event)
    # then the rest of the transaction committed, and publish had written nothing
    assert Thing.objects.filter(name="kept").count() == 1
    assert not OutboxEvent.objects.exists()
