"""Liveness, readiness and the worker's liveness check, against real readers and workers."""

import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client

from conftest import process_env, wait_for
from outbox import layout, publish, streams
from outbox.registry import registry
from outbox.relay import relay_partition
from outbox.tests.probe.events import ThingHappened


def ready() -> tuple[int, dict]:
    response = Client().get("/health/ready")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_liveness_answers_without_asking_anything():
    response = Client().get("/health/live")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.django_db
def test_readiness_fails_naming_every_role_when_no_reader_runs_and_beat_never_polled():
    # when
    status, body = ready()

    # then
    partitions = layout.current().partitions
    assert status == 503
    assert body["status"] == "failing"
    assert (body["checks"]["database"], body["checks"]["redis"]) == ("ok", "ok")
    reason = f"no reader holds partition(s) 0-{partitions - 1} of {partitions}, and beat last polled never"
    assert body["checks"]["relay"] == reason
    assert f"group:payments: {reason}" in body["failing"]
    assert {f"group:{name}" for name in registry.groups} <= set(body["checks"])


@pytest.mark.django_db
def test_a_recent_beat_poll_stands_in_for_missing_readers(redis_client):
    # given beat's poll just ran
    redis_client.set(streams.key("beat", "polled"), repr(time.time()))

    # when
    status, body = ready()

    # then
    assert status == 200, body["failing"]
    assert body["checks"]["group:payments"].startswith("ok (beat polled ")
    assert body["failing"] == []


@pytest.mark.django_db
def test_readiness_fails_when_a_group_is_further_behind_than_allowed(settings, redis_client):
    # given two events relayed that no group has read, and at most one allowed
    settings.OUTBOX_READY_MAX_LAG = 1
    streams.ensure_groups()
    for thing in (1, 2):
        with transaction.atomic():
            publish(ThingHappened(thing_id=thing, step=1))
    for partition in streams.partitions():
        relay_partition(partition)
    redis_client.set(streams.key("beat", "polled"), repr(time.time()))

    # when
    status, body = ready()

    # then
    assert status == 503
    assert body["checks"]["lag"].startswith("over 1 entries not yet read: ")
    assert "probe-alpha 2" in body["checks"]["lag"]
    assert body["checks"]["unpublished"] == "ok"


def _manage(settings, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=django_settings.BASE_DIR,
        env=process_env(settings, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _alive(settings) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "outbox_worker_alive"],
        cwd=django_settings.BASE_DIR,
        env=process_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_readiness_names_the_group_without_a_reader_until_a_worker_starts(settings, celery_worker):
    # given readers of the relay and of every group but payments, in foreground commands
    others = sorted(set(registry.groups) - {"payments"})
    procs = [
        _manage(settings, "outbox_relay"),
        _manage(settings, "outbox_consume", *(f"--group={group}" for group in others)),
    ]
    try:
        # when they hold their partitions
        def others_ready():
            status, body = ready()
            checks = body["checks"]
            served = checks.get("relay") == "ok" and all(
                checks.get(f"group:{group}") == "ok" for group in others
            )
            return (status, body) if served else None

        status, body = wait_for(others_ready, timeout=60, message="the other readers' leases")

        # then readiness fails, and says it is the payments group that has no reader
        partitions = layout.current().partitions
        assert status == 503
        assert body["failing"] == [
            f"group:payments: no reader holds partition(s) 0-{partitions - 1} of {partitions}, "
            "and beat last polled never"
        ]
        # and no worker is alive on this host
        assert _alive(settings).returncode == 1

        # when a real worker starts (without beat)
        worker = celery_worker("w1", beat=False)

        # then readiness comes back
        wait_for(lambda: ready()[0] == 200, timeout=60, message="readiness to come back")
        # and the worker's liveness check passes, until the worker dies
        alive = wait_for(
            lambda: (r := _alive(settings)).returncode == 0 and r, timeout=30, message="a heartbeat"
        )
        assert alive.stdout.startswith("worker alive on ")
        worker.kill()
        dead = wait_for(
            lambda: (r := _alive(settings)).returncode == 1 and r,
            timeout=45,  # at worst until the heartbeats are stale (30 s)
            message="the check to see the worker dead",
        )
        assert dead.stderr.strip().startswith("CommandError: worker not alive: no worker process")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
