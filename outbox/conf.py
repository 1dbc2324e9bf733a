"""The outbox's settings, each with a default: a project sets only what it wants to change.

Read them as ``conf.PARTITIONS`` (for the Django setting ``OUTBOX_PARTITIONS``);
values are read from ``django.conf.settings`` at each access, so tests may
override them with pytest-django's ``settings`` fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Redis for the streams; None means the project's REDIS_URL, then localhost.
    "REDIS_URL": None,
    # Prefix of every Redis key (streams, markers) and of the relay's NOTIFY channel.
    "STREAM_PREFIX": "outbox",
    # How many streams a new event log is split into. Afterwards the count lives in the
    # database (``outbox_repartition`` changes it); this only seeds it.
    "PARTITIONS": 8,
    "RELAY_BATCH_SIZE": 500,
    "CONSUMER_BATCH_SIZE": 100,
    # Attempts of a failing handler before its event becomes a dead letter, and the backoff.
    "MAX_ATTEMPTS": 5,
    "RETRY_BACKOFF_S": 1.0,
    "RETRY_BACKOFF_MAX_S": 60.0,
    # The beat's safety-net poll of every relay and consumer lease no reader holds.
    "POLL_INTERVAL_S": 2.0,
    # Published events, inbox rows and delivery failures older than this are pruned.
    "RETENTION_DAYS": 7,
    # Run the relay and every consumer group as readers inside each Celery pool process.
    "READERS": True,
    # The committed snapshot of every event schema (None: event_schemas.json in BASE_DIR,
    # else in the working directory), and the modules whose events it leaves out.
    "SCHEMA_SNAPSHOT": None,
    "SCHEMA_SNAPSHOT_EXCLUDE": (),
    # Callables (dotted paths) whose dicts are merged into outbox_status and the status API.
    "STATUS_HOOKS": (),
    # Payload fields copied onto the log lines of a handler (``outbox.logs``), e.g. order_id.
    "LOG_PAYLOAD_FIELDS": (),
    # Readiness (``outbox.health``): the most entries a group may have left to read, and the
    # oldest an unpublished event may be, in seconds.
    "READY_MAX_LAG": 10_000,
    "READY_MAX_UNPUBLISHED_AGE_S": 60.0,
    # Where each worker process's readers leave a heartbeat (``outbox.heartbeat``); None
    # means a folder named after the stream prefix in the system's temporary directory.
    "HEARTBEAT_DIR": None,
}


class _Conf:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"no outbox setting {name!r}")
        return getattr(settings, f"OUTBOX_{name}", DEFAULTS[name])

    def redis_url(self) -> str:
        return self.REDIS_URL or getattr(settings, "REDIS_URL", None) or "redis://localhost:6379/0"

    def schema_snapshot_path(self) -> Path:
        if self.SCHEMA_SNAPSHOT:
            return Path(self.SCHEMA_SNAPSHOT)
        return Path(getattr(settings, "BASE_DIR", ".")) / "event_schemas.json"


conf = _Conf()


def beat_schedule(
    *, poll_interval_s: float = DEFAULTS["POLL_INTERVAL_S"]
) -> dict[str, dict[str, Any]]:
    """The outbox's entries for ``CELERY_BEAT_SCHEDULE`` (usable from a settings module)."""
    return {
        "outbox-poll": {"task": "outbox.tasks.poll", "schedule": float(poll_interval_s)},
        "outbox-trim": {"task": "outbox.tasks.trim_streams", "schedule": 60.0},
        "outbox-prune": {"task": "outbox.tasks.prune", "schedule": 3600.0},
    }
