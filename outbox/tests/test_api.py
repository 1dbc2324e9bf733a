import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.test import APIClient

from outbox import publish
from outbox.models import DeadLetter, OutboxEvent
from outbox.testing import drain
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect, Switch


@pytest.fixture
def staff():
    user = get_user_model().objects.create_user("ops", password="pw-ops-123", is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def customer():
    user = get_user_model().objects.create_user("cust", password="pw-cust-123")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _publish(thing_id: int, step: int, kind: str = "ok") -> int:
    with transaction.atomic():
        return publish(ThingHappened(thing_id=thing_id, step=step, kind=kind))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method,url",
    [
        ("get", "/api/outbox/status/"),
        ("get", "/api/outbox/events/"),
        ("get", "/api/outbox/dead-letters/"),
        ("post", "/api/outbox/dead-letters/1/retry/"),
        ("post", "/api/outbox/replay/"),
    ],
)
def test_outbox_endpoints_are_staff_only(customer, method, url):
    assert getattr(APIClient(), method)(url).status_code == 401
    assert getattr(customer, method)(url).status_code == 403


@pytest.mark.django_db
def test_status_has_the_command_json_shape(staff):
    _publish(1, 1)
    body = staff.get("/api/outbox/status/").json()
    assert body["unpublished"] == 1
    assert set(body["groups"]) >= {"probe-alpha", "probe-beta"}
    assert set(body["groups"]["probe-alpha"]) == {"pending", "lag", "dead_letters"}


@pytest.mark.django_db
def test_events_are_filterable(staff):
    first = _publish(1, 1)
    _publish(2, 1)
    body = staff.get("/api/outbox/events/", {"aggregate": "thing:1"}).json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == first
    assert body["results"][0]["payload"] == {"thing_id": 1, "step": 1, "kind": "ok"}
    assert staff.get("/api/outbox/events/", {"published": "maybe"}).json() == {
        "published": ["Must be a valid boolean."],
        "detail": "published: Must be a valid boolean.",
        "code": "invalid",
    }
    assert staff.get("/api/outbox/events/", {"since": "soon"}).status_code == 400


@pytest.mark.django_db
def test_dead_letter_list_and_retry(staff):
    Switch.objects.create(kind="fail", on=True)
    _publish(3, 1, kind="fail")
    drain()
    body = staff.get("/api/outbox/dead-letters/", {"group": "probe-alpha"}).json()
    assert body["count"] == 1
    letter = body["results"][0]
    assert letter["status"] == "dead" and "ProbeFault" in letter["traceback"]
    Switch.objects.update(on=False)
    response = staff.post(f"/api/outbox/dead-letters/{letter['id']}/retry/")
    assert response.status_code == 200
    assert response.json() == {"resolved": [letter["id"]], "failed": {}}
    assert Effect.objects.filter(group="probe-alpha", aggregate_id="3").count() == 1
    # a second retry is a conflict, and an unknown one is 404
    assert staff.post(f"/api/outbox/dead-letters/{letter['id']}/retry/").status_code == 409
    assert staff.post("/api/outbox/dead-letters/999999/retry/").status_code == 404
    assert DeadLetter.objects.filter(status="resolved", group="probe-alpha").count() == 1


@pytest.mark.django_db
def test_replay_endpoint_validates_and_republishes(staff):
    _publish(4, 1)
    drain()
    assert (
        staff.post("/api/outbox/replay/", {"group": "nope"}, format="json")
        .json()["group"][0]
        .startswith("unknown consumer group 'nope'")
    )
    assert "since" in staff.post("/api/outbox/replay/", {"since": "x"}, format="json").json()
    dry = staff.post(
        "/api/outbox/replay/", {"aggregate": "thing:4", "dry_run": True}, format="json"
    ).json()
    assert dry == {"matched": 1, "republished": 0, "dry_run": True}
    assert OutboxEvent.objects.filter(aggregate_id="4", published_at__isnull=True).count() == 0
    done = staff.post("/api/outbox/replay/", {"aggregate": "thing:4"}, format="json").json()
    assert done == {"matched": 1, "republished": 1, "dry_run": False}
    assert OutboxEvent.objects.filter(aggregate_id="4", published_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_event_filters_by_time_and_publication_and_ignore_empty_values(staff):
    # given
    first = _publish(7, 1)
    OutboxEvent.objects.filter(pk=first).update(occurred_at="2026-01-01T00:00:00Z")
    second = _publish(7, 2)

    # when
    def ids(**params) -> list[int]:
        return [row["id"] for row in staff.get("/api/outbox/events/", params).json()["results"]]

    # then
    assert ids(since="2026-06-01T00:00:00Z") == [second]
    assert ids(until="2026-06-01T00:00:00Z") == [first]
    assert ids(published="false", type="") == [second, first]
    assert ids(published="true") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-13-45T00:00:00Z"}, "since"),
        ({"until": "2026-02-30T00:00:00Z"}, "until"),
        ({"aggregate": "x" * 101}, "aggregate"),
        ({"type": "t" * 201}, "type"),
    ],
)
def test_bad_event_filters_are_400_naming_the_filter(staff, params, field):
    response = staff.get("/api/outbox/events/", params)

    assert response.status_code == 400
    assert response.json()[field]
    assert response.json()["code"] == "invalid"


@pytest.mark.django_db
def test_bad_dead_letter_filters_are_400_naming_the_filter(staff):
    response = staff.get("/api/outbox/dead-letters/", {"status": "nope", "group": "g" * 101})

    assert response.status_code == 400
    assert response.json()["status"] and response.json()["group"]
