"""``manage.py bench_outbox`` end to end, with small figures: it keeps working as the outbox
changes, reports no lost or duplicated event, and leaves nothing behind."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

ROOT = Path(__file__).resolve().parents[3]


def _conninfo(db: dict, name: str) -> dict:
    info = {
        "dbname": name,
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        "host": db.get("HOST"),
        "port": db.get("PORT"),
    }
    return {key: value for key, value in info.items() if value not in (None, "")}


def _url(db: dict, name: str) -> str:
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{name}"


def _drop(db: dict, name: str) -> None:
    with psycopg.connect(**_conninfo(db, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def bench_database(settings):
    """A database of the benchmark's own beside the test database, dropped afterwards."""
    db = settings.DATABASES["default"]
    name = f"test_{db['NAME'].removeprefix('test_')}_bench"
    _drop(db, name)
    yield name
    _drop(db, name)


def _run(settings, database_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="shop.bench_settings",
        DATABASE_URL=database_url,
        REDIS_URL=settings.REDIS_URL,
        BENCH_STREAM_PREFIX=prefix,
        PYTHONUNBUFFERED="1",
    )
    return subprocess.run(
        [sys.executable, "manage.py", "bench_outbox", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )


def test_a_small_run_measures_every_path_and_cleans_up(settings, bench_database, tmp_path):
    # given
    db = settings.DATABASES["default"]
    prefix = f"t-{uuid.uuid4().hex[:10]}-bench"
    out = tmp_path / "outbox.json"

    # when
    done = _run(
        settings,
        _url(db, bench_database),
        prefix,
        "--phases=relay,consumers,worker,foreground",
        "--events=300",
        "--runs=1",
        "--consumer-events=150",
        "--rates=40",
        "--duration=1",
        f"--json={out}",
    )

    # then
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["relay"]["events"] == 300 and report["relay"]["median_ev_s"] > 0
    assert report["raw"]["median_ev_s"] > 0 and report["ratio"] > 0
    assert set(report["consumers"]["groups"]) == {"bench-a", "bench-b"}
    for path in ("worker", "foreground"):
        row = report["latency"]["paths"][path]["rates"]["40"]
        for group in ("bench-a", "bench-b"):
            figures = row["groups"][group]
            assert (figures["handled"], figures["lost"], figures["duplicates"]) == (40, 0, 0)
            assert 0 < figures["p50"] <= figures["p99"]
    assert "relay / raw (medians)" in done.stdout
    assert "worker / 40 / bench-a" in done.stdout
    # nothing left behind: rows, layout, Redis keys
    with psycopg.connect(**_conninfo(db, bench_database)) as conn:
        left = conn.execute(
            "SELECT (SELECT count(*) FROM outbox_outboxevent), "
            "(SELECT count(*) FROM outbox_inboxentry), (SELECT count(*) FROM outbox_bench_applied), "
            "(SELECT count(*) FROM outbox_streamlayout)"
        ).fetchone()
    assert left == (0, 0, 0, 0)
    assert list(redis.Redis.from_url(settings.REDIS_URL).scan_iter(f"{prefix}:*")) == []


def test_a_database_not_named_for_the_benchmark_is_refused_in_one_line(settings):
    # given
    db = settings.DATABASES["default"]
    database_url = _url(db, db["NAME"])  # the shop's own database

    # when
    done = _run(settings, database_url, "t-refused-bench", "--phases=relay")

    # then
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"CommandError: the benchmark needs a database of its own, named like shop_bench, "
        f"not {db['NAME']!r}: set DATABASE_URL (make bench-outbox uses BENCH_DATABASE_URL, "
        "default postgres://postgres@localhost:5432/shop_bench)"
    ]
