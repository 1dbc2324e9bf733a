import pytest
from django.db import transaction
from django.urls import reverse

from outbox import publish
from outbox.models import DeadLetter, OutboxEvent
from outbox.testing import drain
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect, Switch


def _publish(thing_id: int, kind: str = "ok") -> int:
    with transaction.atomic():
        return publish(ThingHappened(thing_id=thing_id, step=1, kind=kind))


@pytest.mark.django_db
def test_dead_letter_page_shows_the_traceback_and_the_retry_action_applies_it(admin_client):
    Switch.objects.create(kind="fail", on=True)
    _publish(21, kind="fail")
    drain()
    letter = DeadLetter.objects.get(group="probe-alpha")
    page = admin_client.get(reverse("admin:outbox_deadletter_change", args=[letter.pk]))
    assert page.status_code == 200
    assert b"raise ProbeFault" in page.content
    # when the fault is fixed and staff retry it from the list
    Switch.objects.update(on=False)
    response = admin_client.post(
        reverse("admin:outbox_deadletter_changelist"),
        {"action": "retry_selected", "_selected_action": [letter.pk]},
        follow=True,
    )
    assert response.status_code == 200
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.RESOLVED
    assert Effect.objects.filter(group="probe-alpha", aggregate_id="21").count() == 1


@pytest.mark.django_db
def test_events_are_read_only_and_can_be_replayed_from_the_admin(admin_client):
    sequence = _publish(22)
    drain()
    change = admin_client.get(reverse("admin:outbox_outboxevent_change", args=[sequence]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content  # nothing to save: history
    filtered = admin_client.get(
        reverse("admin:outbox_outboxevent_changelist"), {"published": "yes"}
    )
    assert filtered.status_code == 200
    admin_client.post(
        reverse("admin:outbox_outboxevent_changelist"),
        {"action": "replay_selected", "_selected_action": [sequence]},
    )
    assert OutboxEvent.objects.get(pk=sequence).published_at is None
