"""Event declarations that could not work are refused when the class is defined."""

import pytest
from pydantic import Field

from outbox import ConfigurationError, ConsumerGroup, Event
from outbox.registry import registry


@pytest.mark.parametrize("attr", ["name", "version", "aggregate_type"])
@pytest.mark.filterwarnings("ignore:Field name .* shadows an attribute:UserWarning")
def test_a_field_that_hides_a_class_attribute_is_refused(attr):
    # Such a field replaces the class attribute: the event would silently never be
    # registered, and publishing it would fail far from the cause.
    namespace = {
        "__annotations__": {"thing_id": int, attr: str},
        "name": "probe.Hidden",
        "aggregate_type": "thing",
        "aggregate_id_field": "thing_id",
    }
    with pytest.raises(ConfigurationError, match=rf"the field\(s\) {attr} hide the event's"):
        type("Hidden", (Event,), namespace)


def test_an_aliased_field_puts_the_key_in_the_payload():
    class Labelled(Event):
        name = "probe.Labelled"
        aggregate_type = "thing"
        aggregate_id_field = "thing_id"
        thing_id: int
        label_name: str = Field(alias="name")

    try:
        event = Labelled(thing_id=1, name="lamp")
        assert event.payload() == {"thing_id": 1, "name": "lamp"}
        assert Labelled.model_validate({"thing_id": 1, "name": "lamp"}).label_name == "lamp"
    finally:
        del registry.events[("probe.Labelled", 1)]


@pytest.mark.parametrize("bad", ["OrderCreated", "orders.orderCreated", "Orders.OrderCreated"])
def test_event_names_are_app_dot_pascal_case(bad):
    with pytest.raises(ConfigurationError, match=r"must look like 'app\.EventName'"):
        type(
            "Bad",
            (Event,),
            {
                "__annotations__": {"x": int},
                "name": bad,
                "aggregate_type": "x",
                "aggregate_id_field": "x",
            },
        )


def test_a_group_handles_an_event_type_once():
    group = ConsumerGroup("probe-once")
    try:
        group.handler("probe.ThingHappened")(lambda message: None)
        with pytest.raises(
            ConfigurationError, match=r"probe-once handles probe\.ThingHappened twice"
        ):
            group.handler("probe.ThingHappened")(lambda message: None)
        with pytest.raises(ConfigurationError, match="invalid version range"):
            group.handler("probe.ThingRenamed", versions=(2, 1))
    finally:
        del registry.groups["probe-once"]


@pytest.mark.parametrize("linger_ms", [-1, 10_001, 0.5, "50"])
def test_a_group_s_linger_is_a_whole_number_of_ms_up_to_ten_seconds(linger_ms):
    with pytest.raises(ConfigurationError, match="probe-linger: linger_ms must be a whole number"):
        ConsumerGroup("probe-linger", linger_ms=linger_ms)
    assert "probe-linger" not in registry.groups
