"""The library alone: a Django project made here, with only ``outbox`` and one app of its own.

No ``shop``, no business app, no OUTBOX_* setting: the defaults of outbox/conf.py.
It publishes an event, relays it and applies it through its handler.
"""

import subprocess
import sys
import textwrap
import uuid

import psycopg
import pytest

from outbox.conf import conf

SETTINGS = """
import environ
SECRET_KEY = "a-minimal-project-of-the-tests-{token}"
USE_TZ = True
INSTALLED_APPS = ["outbox", "minimal_app"]
DATABASES = {{"default": environ.Env.db_url_config("{database_url}")}}
REDIS_URL = "{redis_url}"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""

APP = {
    "__init__.py": "",
    "apps.py": """
        from django.apps import AppConfig

        class MinimalConfig(AppConfig):
            name = "minimal_app"
    """,
    "events.py": """
        from outbox import Event

        class ThingNamed(Event):
            name = "minimal.ThingNamed"
            version = 1
            aggregate_type = "thing"
            aggregate_id_field = "thing_id"

            thing_id: int
            title: str
    """,
    "handlers.py": """
        import os

        from outbox import ConsumerGroup, Message

        group = ConsumerGroup("minimal")

        @group.handler("minimal.ThingNamed")
        def on_thing_named(message: Message) -> None:
            with open(os.environ["MINIMAL_EFFECTS"], "a") as effects:
                effects.write(f"{message.payload['thing_id']} {message.payload['title']}\\n")
    """,
}

SCRIPT = """
from django.core.management import call_command
from django.db import transaction
from outbox import publish
from outbox.testing import drain
from minimal_app.events import ThingNamed

call_command("migrate", verbosity=0)
with transaction.atomic():
    publish(ThingNamed(thing_id=1, title="first"))
    publish(ThingNamed(thing_id=1, title="second"))
handled = drain()
import sys
shop = sorted({m.split(".")[0] for m in sys.modules} & {"shop", "orders", "inventory", "payments", "shipping", "notifications"})
print("loaded", shop)
print("handled", handled)
"""


def test_a_project_with_only_the_outbox_publishes_relays_and_consumes(settings, tmp_path):
    # given a project of its own, with a database of its own
    db = settings.DATABASES["default"]
    admin = f"host={db['HOST'] or 'localhost'} port={db['PORT'] or 5432} user={db['USER'] or 'postgres'} dbname=postgres"
    name = f"{db['NAME']}_minimal"
    database_url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{name}"
    (tmp_path / "minimal_settings.py").write_text(
        SETTINGS.format(
            token=uuid.uuid4().hex, database_url=database_url, redis_url=conf.redis_url()
        )
    )
    app = tmp_path / "minimal_app"
    app.mkdir()
    for filename, source in APP.items():
        (app / filename).write_text(textwrap.dedent(source))
    effects = tmp_path / "effects.txt"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        # when it publishes two events in a transaction and drains the outbox
        run = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()\n" + SCRIPT],
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "DJANGO_SETTINGS_MODULE": "minimal_settings",
                "PYTHONPATH": str(tmp_path),
                "MINIMAL_EFFECTS": str(effects),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        # then its handler applied both, in order, and nothing of the shop was loaded
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip().splitlines()[-2:] == ["loaded []", "handled 2"]
        assert effects.read_text().splitlines() == ["1 first", "1 second"]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis

        client = redis.Redis.from_url(conf.redis_url())
        keys = list(client.scan_iter("outbox:*"))
        if keys:
            client.delete(*keys)


pytestmark = pytest.mark.django_db
