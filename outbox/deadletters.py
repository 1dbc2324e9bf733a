"""Retrying dead letters, from the admin, the API or the command line."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.utils import timezone

from outbox import layout as layouts
from outbox import lease
from outbox.consumer import already_applied, apply, lease_name
from outbox.failures import Apply, Reject, triage
from outbox.models import DeadLetter
from outbox.registry import registry

logger = logging.getLogger(__name__)


class LeaseBusy(Exception):
    """The group's consumer kept the partition's lease for longer than we waited."""


@dataclass
class RetryOutcome:
    resolved: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def _retry_one(letter: DeadLetter) -> tuple[str, str] | None:
    """Apply a dead letter's event now; None on success, else (its kind, why not).

    The entry is triaged as the consumer triages it (``outbox.failures``); only a
    group that no longer exists, or no longer subscribes to the type, is decided here.
    """
    group = registry.groups.get(letter.group)
    if group is None:
        return DeadLetter.Kind.HANDLER, f"consumer group {letter.group!r} no longer exists"
    verdict = triage(group, letter.fields.get("data"), parked={})
    if isinstance(verdict, Reject):
        return verdict.kind, verdict.reason
    if not isinstance(verdict, Apply):
        return None  # the group no longer subscribes to the type: nothing to apply
    try:
        apply(letter.group, verdict.message, verdict.handler)
    except Exception as exc:  # noqa: BLE001 - the error is recorded on the dead letter
        letter.traceback = traceback.format_exc()
        return DeadLetter.Kind.HANDLER, f"{type(exc).__name__}: {exc}"
    return None


@contextmanager
def _partition_held(letter: DeadLetter, wait_s: float) -> Iterator[None]:
    """Hold the letter's group lease on its aggregate's partition (``LeaseBusy`` if not free).

    The partition is the aggregate's now: the layout may have changed since it failed.
    """
    partition = (
        layouts.current().partition_for(letter.aggregate_type, letter.aggregate_id)
        if letter.aggregate_id
        else letter.partition
    )
    with lease.held(lease_name(letter.group), partition, wait_s=wait_s) as got:
        if not got:
            raise LeaseBusy(f"group {letter.group} partition {partition} is busy")
        yield


def retry(letter_ids: list[int], *, wait_s: float = 30.0) -> RetryOutcome:
    """Apply dead letters again, each at most once, in each aggregate's order.

    Retrying one dead letter of an aggregate retries the aggregate's open dead
    letters from its earliest, in sequence, and stops at the first that fails
    again: later events never overtake an earlier one. Holds the group's lease
    on the partition meanwhile, so the live consumer does not interleave.
    Raises ``DeadLetter.DoesNotExist`` for an unknown id and ``LeaseBusy`` when
    the lease is not free within ``wait_s``.
    """
    outcome = RetryOutcome()
    stuck: set[tuple[str, str, str]] = set()  # aggregates whose earliest letter failed again
    for letter_id in letter_ids:
        if letter_id in outcome.resolved or letter_id in outcome.failed:
            continue
        letter = DeadLetter.objects.get(pk=letter_id)
        aggregate = (letter.group, letter.aggregate_type, letter.aggregate_id)
        if letter.status != DeadLetter.Status.DEAD or (letter.aggregate_id and aggregate in stuck):
            continue
        with _partition_held(letter, wait_s):
            if letter.aggregate_id:
                chain = list(
                    DeadLetter.objects.filter(
                        group=letter.group,
                        status=DeadLetter.Status.DEAD,
                        aggregate_type=letter.aggregate_type,
                        aggregate_id=letter.aggregate_id,
                    ).order_by("sequence", "id")
                )
            else:
                chain = [letter]
            for item in chain:
                if item.event_id and already_applied(item.group, item.event_id):
                    failed = None
                else:
                    failed = _retry_one(item)
                item.attempts += 1
                if failed is None:
                    item.status = DeadLetter.Status.RESOLVED
                    item.resolved_at = timezone.now()
                    item.save(update_fields=["status", "resolved_at", "attempts"])
                    outcome.resolved.append(item.pk)
                    continue
                item.kind, error = failed
                item.error = error
                item.reason = f"retry failed: {error}"[:500]
                item.save(update_fields=["attempts", "kind", "error", "traceback", "reason"])
                outcome.failed[item.pk] = error
                logger.warning("dead letter #%s retry failed: %s", item.pk, error)
                stuck.add(aggregate)
                break
    return outcome


def retry_all(*, group: str | None = None) -> RetryOutcome:
    qs = DeadLetter.objects.filter(status=DeadLetter.Status.DEAD)
    if group:
        qs = qs.filter(group=group)
    return retry(list(qs.order_by("sequence", "id").values_list("pk", flat=True)))


@dataclass
class DiscardOutcome:
    discarded: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # id -> why it was left as it is


def discard(letter_ids: list[int], *, by: str, reason: str, wait_s: float = 30.0) -> DiscardOutcome:
    """Give up on dead letters for good, recording who did it, when and why.

    A discarded event is never applied by its group (a replay after Redis lost its
    data leaves it out too), and it no longer holds back the later events of its
    aggregate. Holds the group's lease on the partition while it writes, so the
    live reader takes the partition up again with the aggregate free. Letters
    that are not open (resolved or discarded already) are skipped. Raises
    ``ValueError`` without ``by`` or ``reason``, ``DeadLetter.DoesNotExist`` for an
    unknown id and ``LeaseBusy`` when the lease is not free within ``wait_s``.
    """
    by, reason = by.strip(), reason.strip()
    if not by or not reason:
        raise ValueError("a discard needs who does it and why")
    outcome = DiscardOutcome()
    for letter_id in letter_ids:
        letter = DeadLetter.objects.get(pk=letter_id)
        if letter.status != DeadLetter.Status.DEAD:
            outcome.skipped[letter.pk] = f"already {letter.status}"
            continue
        with _partition_held(letter, wait_s):
            changed = DeadLetter.objects.filter(pk=letter.pk, status=DeadLetter.Status.DEAD).update(
                status=DeadLetter.Status.DISCARDED,
                discarded_at=timezone.now(),
                discarded_by=by[:150],
                discard_reason=reason,
            )
        if not changed:
            outcome.skipped[letter.pk] = "retried or discarded meanwhile"
            continue
        outcome.discarded.append(letter.pk)
        logger.warning(
            "dead letter #%s (%s, %s %s) discarded by %s: %s",
            letter.pk,
            letter.group,
            letter.event_type or "undecodable",
            letter.event_id or "",
            by,
            reason,
        )
    return outcome
