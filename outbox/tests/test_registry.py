"""Event declarations that could not work are refused when the class is defined."""

import pytest

from outbox import ConfigurationError, Event


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
