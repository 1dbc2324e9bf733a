"""Stream entries the outbox did not write become dead letters; the consumer moves on."""

import json
import uuid

import pytest
from django.db import transaction
from django.utils import timezone

from outbox import publish, streams
from outbox.consumer import consume
from outbox.models import DeadLetter
from outbox.relay import relay_partition
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect, Thing
from outbox.tests.support import GROUPS, applied_steps


def _entry(**changes: object) -> dict:
    """A well-formed entry, changed; a change to None leaves the field out."""
    fields = {
        "id": str(uuid.uuid4()),
        "type": "probe.ThingHappened",
        "v": 1,
        "agg": "thing",
        "agg_id": "0",
        "agg_v": 1,
        "seq": 1,
        "at": timezone.now().isoformat(),
        "payload": json.dumps({"thing_id": 0, "step": 1, "kind": "ok"}),
        "headers": "{}",
    }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


BAD = [
    (
        _entry(type="probe.NoSuchThing", agg_id="-1"),
        "unknown event type 'probe.NoSuchThing'",
    ),
    (
        {"id": str(uuid.uuid4()), "type": "probe.ThingHappened"},
        "malformed stream entry: the stream entry lacks the field(s) "
        "v, agg, agg_id, agg_v, seq, at, payload, headers",
    ),
    (
        _entry(payload="{not json"),
        "malformed stream entry: field 'payload' is not JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ),
    (
        _entry(payload="[1, 2]"),
        "malformed stream entry: field 'payload' is not a JSON object",
    ),
    (
        _entry(id="not-a-uuid"),
        "malformed stream entry: event id 'not-a-uuid' is not a UUID",
    ),
    (
        _entry(v="one"),
        "malformed stream entry: field 'v' is not an integer: 'one'",
    ),
    (
        _entry(at="yesterday"),
        "malformed stream entry: field 'at' is not an ISO datetime: 'yesterday'",
    ),
]


@pytest.mark.django_db(transaction=True)
def test_bad_entries_become_dead_letters_and_the_next_good_event_is_applied(redis_client):
    # given bad entries appended straight to the stream, then a good event
    streams.ensure_groups()
    stream = streams.stream_name(0)
    entry_ids = [redis_client.xadd(stream, fields) for fields, _ in BAD]
    thing = Thing.objects.create(name="good")
    with transaction.atomic():
        publish(ThingHappened(thing_id=thing.pk, step=1))
    assert relay_partition(0).published == 1

    for group in GROUPS:
        # when the group consumes them: the call returns normally
        result = consume(group, 0)
        # then every bad entry is a dead letter with a readable reason, and acknowledged
        assert (result.handled, result.dead_lettered, result.acked) == (1, len(BAD), len(BAD) + 1)
        assert result.retry_at is None
        letters = list(DeadLetter.objects.filter(group=group).order_by("id"))
        assert [letter.reason for letter in letters] == [reason for _, reason in BAD]
        for letter, entry_id, (fields, _) in zip(letters, entry_ids, BAD, strict=True):
            assert letter.fields == {
                "stream": stream,
                "entry_id": entry_id,
                "data": {name: str(value) for name, value in fields.items()},
            }
            assert letter.status == DeadLetter.Status.DEAD
        assert int(redis_client.xpending(stream, group)["pending"]) == 0
        # and the good event after them was applied
        assert applied_steps(group, thing.pk) == [1]
        # and nothing comes round again
        again = consume(group, 0)
        assert (again.handled, again.dead_lettered, again.acked) == (0, 0, 0)
    assert Effect.objects.count() == len(GROUPS)


@pytest.mark.django_db(transaction=True)
def test_an_unknown_event_type_keeps_its_aggregate_s_later_events_in_order(redis_client):
    # An aggregate whose event could not be applied does not skip ahead of it.
    streams.ensure_groups()
    thing = Thing.objects.create(name="held")
    redis_client.xadd(
        streams.stream_name(0),
        _entry(type="probe.NoSuchThing", agg_id=str(thing.pk)),
    )
    with transaction.atomic():
        publish(ThingHappened(thing_id=thing.pk, step=1))
    relay_partition(0)
    result = consume("probe-alpha", 0)
    assert (result.handled, result.dead_lettered) == (0, 2)
    unknown, parked = DeadLetter.objects.filter(group="probe-alpha").order_by("id")
    assert parked.reason == f"parked behind dead letter #{unknown.pk}"
    assert applied_steps("probe-alpha", thing.pk) == []
