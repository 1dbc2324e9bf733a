"""Old events reach a handler upcast to the version it asks for; newer ones are not guessed at."""

import pytest
from django.db import transaction

from outbox import publish
from outbox.models import DeadLetter, OutboxEvent
from outbox.testing import drain
from outbox.tests.probe.events import ThingRenamed, ThingRenamedV2, ThingRenamedV3
from outbox.tests.probe.models import Effect, Thing


@pytest.mark.django_db(transaction=True)
def test_a_v1_event_reaches_the_v2_handler_upcast():
    thing = Thing.objects.create(name="old")
    with transaction.atomic():
        publish(ThingRenamed(thing_id=thing.pk, name="Ada Lovelace"))
    drain()
    effect = Effect.objects.get(aggregate_id=str(thing.pk))
    assert effect.group == "probe-alpha"
    assert effect.version_seen == 2
    assert effect.payload == {"thing_id": thing.pk, "first": "Ada", "last": "Lovelace"}
    # the log keeps what was published
    row = OutboxEvent.objects.get(aggregate_id=str(thing.pk))
    assert (row.version, row.payload) == (1, {"thing_id": thing.pk, "name": "Ada Lovelace"})
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_v2_event_reaches_the_v2_handler_as_published():
    thing = Thing.objects.create(name="current")
    with transaction.atomic():
        publish(ThingRenamedV2(thing_id=thing.pk, first="Grace", last="Hopper"))
    drain()
    effect = Effect.objects.get(aggregate_id=str(thing.pk))
    assert (effect.group, effect.version_seen) == ("probe-alpha", 2)
    assert effect.payload == {"thing_id": thing.pk, "first": "Grace", "last": "Hopper"}


@pytest.mark.django_db(transaction=True)
def test_an_event_newer_than_the_handler_accepts_becomes_a_dead_letter():
    thing = Thing.objects.create(name="future")
    with transaction.atomic():
        publish(ThingRenamedV3(thing_id=thing.pk, first="Ada", last="Lovelace", title="Countess"))
    drain()
    assert not Effect.objects.exists()
    letter = DeadLetter.objects.get()
    assert letter.group == "probe-alpha"
    assert letter.reason == "probe.ThingRenamed v3 is newer than this group handles (v2..v2)"
    assert (letter.event_type, letter.aggregate_id) == ("probe.ThingRenamed", str(thing.pk))
    assert letter.status == DeadLetter.Status.DEAD


@pytest.mark.django_db
def test_a_missing_upcaster_is_a_dead_letter_at_the_first_attempt(monkeypatch):
    from outbox.registry import registry

    monkeypatch.delitem(registry.upcasters, ("probe.ThingRenamed", 1))
    with transaction.atomic():
        publish(ThingRenamed(thing_id=9, name="Ada Lovelace"))
    drain()
    letter = DeadLetter.objects.get(group="probe-alpha", aggregate_id="9")
    assert letter.attempts == 1
    assert letter.reason == (
        "handler failed after 1 attempt(s): NoUpcaster: no upcaster for probe.ThingRenamed from v1 to v2"
    )
