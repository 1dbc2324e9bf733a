"""A fault becomes a dead letter after the allowed attempts; retrying it keeps each aggregate's order."""

import pytest

from outbox import deadletters
from outbox.consumer import consume
from outbox.models import DeadLetter, DeliveryFailure, OutboxEvent
from outbox.relay import relay_partition
from outbox.testing import drain
from outbox.tests.probe.models import Effect, Switch, Thing
from outbox.tests.support import GROUPS, applied_steps, thing_event


@pytest.mark.django_db(transaction=True)
def test_a_failing_event_is_dead_lettered_parks_its_aggregate_and_is_retried_in_order(settings):
    assert settings.OUTBOX_MAX_ATTEMPTS == 3
    broken, healthy = Thing.objects.create(name="broken"), Thing.objects.create(name="healthy")
    fault = Switch.objects.create(kind="fail", on=True)

    # given an event whose handlers fail
    thing_event(broken.pk, kind="fail")
    drain()
    # then after the allowed attempts each group has it as a dead letter, with why
    failed = OutboxEvent.objects.get(aggregate_id=str(broken.pk), aggregate_version=1)
    letters = {d.group: d for d in DeadLetter.objects.filter(event_id=failed.event_id)}
    assert sorted(letters) == list(GROUPS)
    for letter in letters.values():
        error = f"ProbeFault: probe fault for thing {broken.pk}"
        assert letter.status == DeadLetter.Status.DEAD
        assert letter.reason == f"handler failed after 3 attempt(s): {error}"
        assert letter.error == error
        assert "Traceback (most recent call last)" in letter.traceback
        assert "raise ProbeFault" in letter.traceback
        assert letter.attempts == 3
        assert (letter.event_type, letter.aggregate_type) == ("probe.ThingHappened", "thing")
        assert (letter.aggregate_id, letter.sequence) == (str(broken.pk), failed.pk)
        assert letter.fields["data"]["id"] == str(failed.event_id)
    assert not DeliveryFailure.objects.exists()
    assert not Effect.objects.exists()

    # when other aggregates' events and a later event of the same aggregate follow
    thing_event(healthy.pk)
    thing_event(broken.pk)
    thing_event(healthy.pk)
    drain()
    # then the others flow, and the later one is parked behind the dead letter
    later = OutboxEvent.objects.get(aggregate_id=str(broken.pk), aggregate_version=2)
    for group in GROUPS:
        assert applied_steps(group, healthy.pk) == [1, 2]
        assert applied_steps(group, broken.pk) == []
        parked = DeadLetter.objects.get(group=group, event_id=later.event_id)
        assert parked.reason == f"parked behind dead letter #{letters[group].pk}"
        assert (parked.status, parked.sequence) == (DeadLetter.Status.DEAD, later.pk)

    # when the fault is fixed and one group's first dead letter is retried
    fault.on = False
    fault.save()
    outcome = deadletters.retry([letters["probe-alpha"].pk])
    # then that group applies both, in the aggregate's order; the other group waits
    alpha_parked = DeadLetter.objects.get(group="probe-alpha", event_id=later.event_id)
    assert outcome.resolved == [letters["probe-alpha"].pk, alpha_parked.pk]
    assert outcome.failed == {}
    assert applied_steps("probe-alpha", broken.pk) == [1, 2]
    assert applied_steps("probe-beta", broken.pk) == []
    assert set(DeadLetter.objects.filter(group="probe-alpha").values_list("status", flat=True)) == {
        DeadLetter.Status.RESOLVED
    }

    # when the other group's parked letter is retried (the chain starts at its earliest)
    beta_parked = DeadLetter.objects.get(group="probe-beta", event_id=later.event_id)
    outcome = deadletters.retry([beta_parked.pk])
    assert outcome.resolved == [letters["probe-beta"].pk, beta_parked.pk]
    assert applied_steps("probe-beta", broken.pk) == [1, 2]

    # when everything is retried again
    again = deadletters.retry(list(DeadLetter.objects.values_list("pk", flat=True)))
    # then nothing changes
    assert (again.resolved, again.failed) == ([], {})
    assert Effect.objects.count() == 8
    assert drain() == 0

    # and the aggregate flows again
    thing_event(broken.pk)
    drain()
    for group in GROUPS:
        assert applied_steps(group, broken.pk) == [1, 2, 3]
    assert not DeadLetter.objects.filter(status=DeadLetter.Status.DEAD).exists()


@pytest.mark.django_db(transaction=True)
def test_a_retry_that_fails_again_keeps_the_chain_parked():
    thing = Thing.objects.create(name="stubborn")
    Switch.objects.create(kind="fail", on=True)
    thing_event(thing.pk, kind="fail")
    thing_event(thing.pk)
    drain(groups=["probe-alpha"])
    first, parked = DeadLetter.objects.filter(group="probe-alpha").order_by("sequence")

    outcome = deadletters.retry([parked.pk])

    # the earliest failed again: the later one is not applied ahead of it
    assert outcome.resolved == []
    assert list(outcome.failed) == [first.pk]
    first.refresh_from_db()
    parked.refresh_from_db()
    assert first.status == parked.status == DeadLetter.Status.DEAD
    assert first.reason == f"retry failed: ProbeFault: probe fault for thing {thing.pk}"
    assert first.attempts == 4
    assert not Effect.objects.exists()


@pytest.mark.django_db
def test_a_handler_s_lookup_error_is_retried_like_any_fault(settings):
    # given a handler raising KeyError
    thing = Thing.objects.create(name="keyed")
    Switch.objects.create(kind="lookup", on=True)
    thing_event(thing.pk, kind="lookup")
    settings.OUTBOX_RETRY_BACKOFF_S = 60.0  # keep it waiting after the first attempt
    relay_partition(0)
    consume("probe-alpha", 0)
    # then it waits for a retry instead of becoming a dead letter at once
    failure = DeliveryFailure.objects.get(group="probe-alpha")
    assert failure.attempts == 1
    assert failure.last_error == "KeyError: 'a key the handler expected'"
    assert not DeadLetter.objects.filter(group="probe-alpha").exists()


@pytest.mark.django_db
def test_a_failure_inside_a_batch_undoes_only_itself_and_counts_one_attempt(settings):
    # given one batch: a good event, a failing one, another good one (three aggregates)
    settings.OUTBOX_RETRY_BACKOFF_S = 60.0
    first, broken, last = (Thing.objects.create(name=n) for n in ("first", "broken", "last"))
    Switch.objects.create(kind="fail", on=True)
    thing_event(first.pk)
    thing_event(broken.pk, kind="fail")
    thing_event(last.pk)
    relay_partition(0)
    # when
    result = consume("probe-alpha", 0)
    # then the event before the failure is applied once, the failure waits with one
    # attempt counted, and nothing after it ran (the partition keeps its order)
    assert (result.handled, result.acked) == (1, 1)
    assert list(
        Effect.objects.filter(group="probe-alpha").values_list("aggregate_id", flat=True)
    ) == [str(first.pk)]
    assert DeliveryFailure.objects.get(group="probe-alpha").attempts == 1


@pytest.mark.django_db
def test_a_deadlock_is_tried_again_at_once_and_not_counted_as_an_attempt(settings):
    from outbox.tests.probe.handlers import DEADLOCKS

    # given retries that would wait a minute, and a handler that gives way to a deadlock twice
    settings.OUTBOX_RETRY_BACKOFF_S = 60.0
    thing = Thing.objects.create(name="thing")
    thing_event(thing.pk, kind="deadlock")
    relay_partition(0)
    DEADLOCKS["left"] = 2
    # when the group consumes
    result = consume("probe-alpha", 0)
    # then the event is applied in the same run, with no attempt recorded and no dead letter
    assert (result.handled, result.dead_lettered, result.retry_at) == (1, 0, None)
    assert DEADLOCKS["left"] == 0
    assert applied_steps("probe-alpha", thing.pk) == [1]
    assert not DeliveryFailure.objects.exists()
    assert not DeadLetter.objects.exists()
