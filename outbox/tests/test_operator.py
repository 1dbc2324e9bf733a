"""The operator's page, an event's lifecycle page and discarding dead letters, in the admin."""

import re

import pytest
from django.db import transaction
from django.urls import reverse

from outbox import deadletters, publish, replay
from outbox.models import DeadLetter, InboxEntry, OutboxEvent
from outbox.testing import drain
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect, Switch

pytestmark = pytest.mark.django_db


def _publish(thing_id: int, step: int = 1, kind: str = "ok") -> OutboxEvent:
    with transaction.atomic():
        sequence = publish(ThingHappened(thing_id=thing_id, step=step, kind=kind))
    return OutboxEvent.objects.get(pk=sequence)


def _poisoned(thing_id: int) -> DeadLetter:
    """A dead letter of probe-alpha for a thing (its handler failed every attempt)."""
    Switch.objects.get_or_create(kind="fail", defaults={"on": True})
    Switch.objects.update(on=True)
    event = _publish(thing_id, step=1, kind="fail")
    drain()
    Switch.objects.update(on=False)
    return DeadLetter.objects.get(group="probe-alpha", event_id=event.event_id)


def test_the_dead_letter_page_has_no_save_button_and_a_monospaced_traceback(admin_client):
    letter = _poisoned(31)

    page = admin_client.get(reverse("admin:outbox_deadletter_change", args=[letter.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert re.search(r'<pre class="traceback" style="font-family: monospace[^"]*">Traceback', html)
    assert reverse("admin:outbox_deadletter_discard", args=[letter.pk]) in html
    assert reverse("admin:outbox_event_lifecycle", args=[letter.event_id]) in html


def test_discarding_from_the_list_asks_why_then_records_who_when_and_why(admin_client, admin_user):
    # given a dead letter, which parks its aggregate
    letter = _poisoned(32)
    url = reverse("admin:outbox_deadletter_changelist")
    chosen = {"action": "discard_selected", "_selected_action": [letter.pk]}

    # when staff choose the action, they are asked why first
    asked = admin_client.post(url, chosen)
    assert asked.status_code == 200
    assert b"Why are they discarded?" in asked.content
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.DEAD

    # when they confirm without a reason, nothing is discarded
    admin_client.post(url, {**chosen, "confirmed": "yes", "discard_reason": "  "})
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.DEAD

    # when they confirm with one
    done = admin_client.post(
        url, {**chosen, "confirmed": "yes", "discard_reason": "a test order"}, follow=True
    )

    # then it is recorded
    assert done.status_code == 200
    assert f"1 dead letter(s) discarded: #{letter.pk}" in done.content.decode()
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.DISCARDED
    assert (letter.discarded_by, letter.discard_reason) == (admin_user.username, "a test order")
    assert letter.discarded_at is not None
    # and the group's next event of that thing is no longer parked behind it
    fresh = _publish(32, step=3)
    drain()
    assert InboxEntry.objects.filter(group="probe-alpha", event_id=fresh.event_id).exists()
    assert Effect.objects.filter(group="probe-alpha", aggregate_id="32", step=3).exists()


def test_discarding_from_the_dead_letter_page(admin_client, admin_user):
    letter = _poisoned(33)
    url = reverse("admin:outbox_deadletter_discard", args=[letter.pk])

    form = admin_client.get(url)
    done = admin_client.post(url, {"confirmed": "yes", "discard_reason": "poison"})

    assert form.status_code == 200 and b'name="discard_reason"' in form.content
    assert done.status_code == 302
    letter.refresh_from_db()
    assert (letter.status, letter.discard_reason) == (DeadLetter.Status.DISCARDED, "poison")


def test_a_discarded_event_is_not_republished_when_redis_lost_the_streams():
    # given
    letter = _poisoned(34)
    deadletters.discard([letter.pk], by="ops", reason="never apply it")

    # then recovery leaves the event out of what the group has not applied
    assert not replay.unapplied("probe-alpha").filter(event_id=letter.event_id).exists()


def test_discard_needs_who_and_why_and_skips_a_closed_letter():
    letter = _poisoned(35)
    with pytest.raises(ValueError, match="who does it and why"):
        deadletters.discard([letter.pk], by="ops", reason="")
    deadletters.discard([letter.pk], by="ops", reason="once")

    again = deadletters.discard([letter.pk], by="ops", reason="twice")

    assert again.skipped == {letter.pk: "already discarded"}
    letter.refresh_from_db()
    assert letter.discard_reason == "once"


def test_the_lifecycle_page_shows_the_row_the_stream_entry_and_each_group(admin_client):
    # given an event one group applied and the other dead-lettered
    Switch.objects.create(kind="fail", on=True)
    event = _publish(36, kind="fail")
    drain()
    letter = DeadLetter.objects.get(group="probe-alpha", event_id=event.event_id)
    deadletters.discard([letter.pk], by="ops", reason="not needed")
    Switch.objects.update(on=False)
    deadletters.retry(
        list(DeadLetter.objects.filter(group="probe-beta").values_list("pk", flat=True))
    )

    # when
    page = admin_client.get(reverse("admin:outbox_event_lifecycle", args=[event.event_id]))

    # then
    html = page.content.decode()
    assert page.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart lifecycle"' in html
    assert f"probe.ThingHappened #{event.pk}: from commit to every group" in html
    rows = dict(
        re.findall(r'<tr class="group-row">\s*<td>([^<]+)</td>\s*<td class="state-(\w+)"', html)
    )
    assert rows == {"probe-alpha": "discarded", "probe-beta": "applied"}
    assert "by ops: not needed" in html
    assert "stream entry" in html.lower()
    assert re.search(r"<th>entry id</th><td>\d+-\d+</td>", html)
    assert str(event.event_id) in html


def test_the_lifecycle_is_linked_from_the_event_list_and_page(admin_client):
    event = _publish(37)
    drain()
    link = reverse("admin:outbox_event_lifecycle", args=[event.event_id])

    listing = admin_client.get(reverse("admin:outbox_outboxevent_changelist"))
    change = admin_client.get(reverse("admin:outbox_outboxevent_change", args=[event.pk]))

    assert link in listing.content.decode()
    assert link in change.content.decode()
    assert reverse("admin:outbox_operator") in listing.content.decode()


def test_an_unknown_event_has_no_lifecycle_page(admin_client):
    page = admin_client.get(
        reverse("admin:outbox_event_lifecycle", args=["00000000-0000-7000-8000-000000000000"])
    )
    assert page.status_code == 404


def test_the_operator_page_draws_events_lag_and_dead_letters(admin_client):
    # given events applied, and one dead letter
    for thing in range(3):
        _publish(40 + thing)
    Switch.objects.create(kind="fail", on=True)
    _publish(50, kind="fail")
    drain()

    # when
    page = admin_client.get(reverse("admin:outbox_operator"))

    # then
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart') == 3
    assert "Events committed per minute, by type (last hour)" in html
    assert '<text class="legend"' in html and ">probe.ThingHappened</text>" in html
    assert "Lag of each consumer group" in html and ">probe-alpha</text>" in html
    assert "Open dead letters by reason, per group" in html and ">handler</text>" in html
    assert re.search(r"<strong>4</strong>events in the last hour", html)


def test_the_operator_page_is_for_staff(client):
    page = client.get(reverse("admin:outbox_operator"))

    assert page.status_code == 302 and "/admin/login/" in page["Location"]


def test_the_command_discards_with_a_reason_and_refuses_without_one():
    from io import StringIO

    from django.core.management import CommandError, call_command

    letter = _poisoned(60)
    with pytest.raises(CommandError, match="--discard needs --reason"):
        call_command("outbox_deadletters", discard=[letter.pk])
    out = StringIO()

    call_command("outbox_deadletters", discard=[letter.pk], reason="bad data", by="ops", stdout=out)

    letter.refresh_from_db()
    assert (letter.status, letter.discarded_by, letter.discard_reason) == (
        "discarded",
        "ops",
        "bad data",
    )
    assert f"#{letter.pk} discarded" in out.getvalue()
