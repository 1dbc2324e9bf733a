import copy

from django.core.management import call_command

from outbox import schemas
from outbox.tests.probe.events import ThingHappened

BASE = ThingHappened.model_json_schema()


def test_the_code_matches_the_committed_snapshot():
    # Fails with the reason when an event schema changed without a version bump
    # (or the snapshot was not refreshed after a compatible change).
    call_command("outbox_schemas")


def test_an_identical_schema_is_compatible():
    assert schemas.breaking_changes(BASE, copy.deepcopy(BASE)) == []


def test_a_new_optional_field_is_compatible():
    new = copy.deepcopy(BASE)
    new["properties"]["note"] = {"type": "string", "default": ""}
    assert schemas.breaking_changes(BASE, new) == []


def test_a_removed_field_breaks():
    new = copy.deepcopy(BASE)
    del new["properties"]["step"]
    new["required"].remove("step")
    assert schemas.breaking_changes(BASE, new) == ["step: removed"]


def test_a_changed_type_breaks():
    new = copy.deepcopy(BASE)
    new["properties"]["step"] = {"type": "string"}
    assert schemas.breaking_changes(BASE, new) == [
        "step: type changed from {'type': 'integer'} to {'type': 'string'}"
    ]


def test_a_new_required_field_breaks():
    new = copy.deepcopy(BASE)
    new["properties"]["note"] = {"type": "string"}
    new["required"].append("note")
    assert schemas.breaking_changes(BASE, new) == ["note: became required"]


def test_a_snapshot_version_gone_without_upcaster_breaks():
    breaking, _ = schemas.compare({"probe.Gone@v1": BASE}, {})
    assert breaking == ["probe.Gone@v1: gone, and no upcaster takes it to the next version"]


def test_a_version_with_an_upcaster_may_leave_the_code():
    # probe.ThingRenamed v1 has an upcaster to v2.
    breaking, _ = schemas.compare({"probe.ThingRenamed@v1": BASE}, {})
    assert breaking == []
