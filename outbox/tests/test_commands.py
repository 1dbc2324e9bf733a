import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from conftest import process_env, wait_for
from outbox import publish
from outbox.models import DeadLetter, OutboxEvent
from outbox.testing import drain
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect, Switch

ROOT = Path(__file__).resolve().parents[2]


def _publish(thing_id: int, step: int, kind: str = "ok") -> int:
    with transaction.atomic():
        return publish(ThingHappened(thing_id=thing_id, step=step, kind=kind))


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_replay_rejects_an_unparseable_date():
    with pytest.raises(CommandError, match=r"--since: 'yesterday' is not an ISO date"):
        call_command("outbox_replay", "--since", "yesterday")


@pytest.mark.django_db
def test_replay_rejects_an_unknown_group():
    with pytest.raises(CommandError, match=r"unknown consumer group 'nope' \(known: "):
        call_command("outbox_replay", "--group", "nope")


@pytest.mark.django_db(transaction=True)
def test_replay_errors_exit_non_zero_with_one_line(settings):
    # given a real process, as an operator runs it
    result = subprocess.run(
        [sys.executable, "manage.py", "outbox_replay", "--until", "2026-13-45"],
        cwd=ROOT,
        env=process_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: --until: '2026-13-45' is not an ISO date or datetime (e.g. 2026-11-26T12:00:00Z)"
    ]


@pytest.mark.django_db
def test_replay_dry_run_lists_and_changes_nothing():
    first = _publish(1, 1)
    _publish(2, 1)
    drain()
    output = _run("outbox_replay", "--aggregate", "thing:1", "--dry-run")
    assert f"#{first} " in output
    assert output.strip().endswith("1 event(s) would be republished (dry run)")
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_replay_republishes_and_effects_stay_once():
    _publish(1, 1)
    _publish(1, 2)
    drain()
    output = _run("outbox_replay", "--type", "probe.ThingHappened")
    assert "2 event(s) marked for republishing" in output
    assert OutboxEvent.objects.filter(aggregate_id="1", published_at__isnull=True).count() == 2
    drain()
    assert Effect.objects.filter(group="probe-alpha", aggregate_id="1").count() == 2
    assert Effect.objects.filter(group="probe-beta", aggregate_id="1").count() == 2


@pytest.mark.django_db
def test_status_json_reports_backlog_lag_and_dead_letters():
    Switch.objects.create(kind="fail", on=True)
    _publish(5, 1, kind="fail")
    drain()
    _publish(6, 1)  # not relayed yet
    report = json.loads(_run("outbox_status", "--json"))
    assert report["unpublished"] == 1
    assert report["oldest_unpublished_age_s"] >= 0
    assert report["dead_letters"] == 2  # one per probe group
    assert report["groups"]["probe-alpha"] == {"pending": 0, "lag": 0, "dead_letters": 1}
    # the human table names every group
    table = _run("outbox_status")
    assert "probe-alpha" in table and "unpublished events        1" in table


@pytest.mark.django_db
def test_deadletters_list_show_and_retry():
    Switch.objects.create(kind="fail", on=True)
    _publish(7, 1, kind="fail")
    drain()
    letter = DeadLetter.objects.get(group="probe-alpha")
    assert "1 dead letter(s)" not in _run("outbox_deadletters")  # two: alpha and beta
    assert f"#{letter.pk}" in _run("outbox_deadletters", "--group", "probe-alpha")
    assert "ProbeFault" in _run("outbox_deadletters", "--show", str(letter.pk))
    # still failing: non-zero
    with pytest.raises(CommandError, match="1 dead letter"):
        call_command(
            "outbox_deadletters", "--retry", str(letter.pk), stdout=StringIO(), stderr=StringIO()
        )
    Switch.objects.update(on=False)
    output = _run("outbox_deadletters", "--retry-all")
    assert "2 resolved, 0 failed" in output
    assert Effect.objects.filter(aggregate_id="7").count() == 2


@pytest.mark.django_db
def test_deadletters_unknown_id_is_one_line():
    with pytest.raises(CommandError, match=r"^no dead letter #999999$"):
        call_command("outbox_deadletters", "--retry", "999999")


@pytest.mark.django_db
def test_prune_keeps_unpublished_and_recent_events():
    old_published = _publish(1, 1)
    old_unpublished = _publish(2, 1)
    recent = _publish(3, 1)
    OutboxEvent.objects.filter(pk__in=[old_published, recent]).update(
        published_at="2026-01-01T00:00:00Z"
    )
    OutboxEvent.objects.filter(pk__in=[old_published, old_unpublished]).update(
        occurred_at="2026-01-01T00:00:00Z"
    )
    output = _run("outbox_prune", "--days", "7")
    assert output.strip() == "pruned 1 published event(s) older than 7 day(s)"
    assert set(
        OutboxEvent.objects.filter(pk__in=[old_published, old_unpublished, recent]).values_list(
            "pk", flat=True
        )
    ) == {old_unpublished, recent}


@pytest.mark.django_db
def test_relay_once_publishes_everything():
    _publish(1, 1)
    _publish(2, 1)
    output = _run("outbox_relay", "--once")
    assert output.strip() == "relayed 2 event(s)"
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_consume_rejects_an_unknown_group():
    with pytest.raises(CommandError, match=r"^unknown consumer group 'nope' \(known: "):
        call_command("outbox_consume", "--group", "nope")


@pytest.mark.django_db(transaction=True)
def test_consume_in_the_foreground_applies_events_and_stops_on_sigterm(settings):
    import signal

    # given a foreground consumer for one group, in its own process
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "outbox_consume",
            "--group",
            "probe-alpha",
        ],
        cwd=ROOT,
        env=process_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # when an event is published and relayed
        _publish(11, 1)
        _run("outbox_relay", "--once")
        # then that group applies it, and no other group was run
        wait_for(lambda: Effect.objects.filter(aggregate_id="11").exists(), timeout=30)
        assert list(Effect.objects.filter(aggregate_id="11").values_list("group", flat=True)) == [
            "probe-alpha"
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
