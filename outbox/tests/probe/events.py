from pydantic import Field

from outbox import Event, upcaster


class ThingHappened(Event):
    """A probe event: ``step`` numbers events of one thing; ``kind`` selects behaviour."""

    name = "probe.ThingHappened"
    version = 1
    aggregate_type = "thing"
    aggregate_id_field = "thing_id"

    thing_id: int
    step: int
    kind: str = "ok"


class ThingRenamed(Event):
    """v1: the new name as one string, under the payload key ``name``.

    On the class, ``name`` is the event type, so the field is ``full_name``
    with the alias ``name``.
    """

    name = "probe.ThingRenamed"
    version = 1
    aggregate_type = "thing"
    aggregate_id_field = "thing_id"

    thing_id: int
    full_name: str = Field(alias="name")


class ThingRenamedV2(Event):
    name = "probe.ThingRenamed"
    version = 2
    aggregate_type = "thing"
    aggregate_id_field = "thing_id"

    thing_id: int
    first: str
    last: str


class ThingRenamedV3(Event):
    """A version no probe handler accepts yet: the publisher moved on before the consumer."""

    name = "probe.ThingRenamed"
    version = 3
    aggregate_type = "thing"
    aggregate_id_field = "thing_id"

    thing_id: int
    first: str
    last: str
    title: str


@upcaster("probe.ThingRenamed", from_version=1)
def thing_renamed_v1_to_v2(payload: dict) -> dict:
    first, _, last = payload["name"].partition(" ")
    return {"thing_id": payload["thing_id"], "first": first, "last": last}
