"""The default database (SQLite, for a newcomer without a server) runs the whole path."""

import subprocess
import sys
from pathlib import Path

from conftest import process_env

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from django.db import transaction
from outbox import publish
from outbox.testing import drain
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect
with transaction.atomic():
    publish(ThingHappened(thing_id=1, step=1))
    publish(ThingHappened(thing_id=1, step=2))
drain()
print(sorted(Effect.objects.values_list("group", "step")))
"""


def test_publish_relay_consume_on_sqlite(settings, tmp_path):
    env = process_env(settings, DATABASE_URL=f"sqlite:///{tmp_path / 'smoke.sqlite3'}")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == (
        "[('probe-alpha', 1), ('probe-alpha', 2), ('probe-beta', 1), ('probe-beta', 2)]"
    )
