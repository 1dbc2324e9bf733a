"""Whether the outbox is doing its work: what a readiness probe asks of it.

For the relay and each consumer group: every partition has a live lease holder
(a reader in some worker, on any host), or beat's safety-net poll ran recently
(it works whatever no reader holds). Then: no group has more than
``OUTBOX_READY_MAX_LAG`` entries left to read, and no committed event has
waited longer than ``OUTBOX_READY_MAX_UNPUBLISHED_AGE_S`` to be relayed.
"""

from __future__ import annotations

import time

import redis

from outbox import layout as layouts
from outbox import lease, streams
from outbox.conf import conf
from outbox.consumer import lease_name
from outbox.registry import registry
from outbox.relay import RELAY_LEASE
from outbox.status import group_positions, oldest_unpublished_age_s

OK = "ok"


def beat_polled_s_ago(client: redis.Redis | None = None) -> float | None:
    """Seconds since beat's poll last finished (``outbox.tasks.poll``); None if never seen."""
    raw = (client or streams.get_redis()).get(streams.key("beat", "polled"))
    try:
        return max(time.time() - float(raw), 0.0) if raw is not None else None
    except ValueError:
        return None


def beat_fresh_s() -> float:
    """How recent beat's poll must be to stand in for missing readers."""
    return max(3 * float(conf.POLL_INTERVAL_S), 10.0)


def _ranges(partitions: list[int]) -> str:
    spans: list[str] = []
    for p in sorted(partitions):
        if spans and spans[-1].split("-")[-1] == str(p - 1):
            spans[-1] = f"{spans[-1].split('-')[0]}-{p}"
        else:
            spans.append(str(p))
    return ", ".join(spans)


def reader_checks(client: redis.Redis | None = None) -> dict[str, str]:
    """``{"relay": ..., "group:<name>": ...}``, each "ok" or why not."""
    layout = layouts.current()
    roles = {RELAY_LEASE: "relay", **{lease_name(g): f"group:{g}" for g in sorted(registry.groups)}}
    if not lease.supported():
        return dict.fromkeys(roles.values(), "ok (SQLite keeps no leases: not checked)")
    held = lease.taken(roles)
    polled = beat_polled_s_ago(client)
    beat_ok = polled is not None and polled <= beat_fresh_s()
    checks: dict[str, str] = {}
    for name, role in roles.items():
        missing = [p for p in layout.range() if (name, p) not in held]
        if not missing:
            checks[role] = OK
        elif beat_ok:
            checks[role] = f"ok (beat polled {polled:.0f} s ago)"
        else:
            beat = "never" if polled is None else f"{polled:.0f} s ago"
            checks[role] = (
                f"no reader holds partition(s) {_ranges(missing)} of {layout.partitions}, "
                f"and beat last polled {beat}"
            )
    return checks


def lag_checks(client: redis.Redis | None = None) -> dict[str, str]:
    """``{"lag": ..., "unpublished": ...}``, each "ok" or why not."""
    limit = int(conf.READY_MAX_LAG)
    positions = group_positions(client or streams.get_redis())
    behind = {g: row["lag"] for g, row in positions.items() if row["lag"] > limit}
    checks = {
        "lag": OK
        if not behind
        else f"over {limit} entries not yet read: "
        + ", ".join(f"{g} {n}" for g, n in behind.items())
    }
    age = oldest_unpublished_age_s()
    max_age = float(conf.READY_MAX_UNPUBLISHED_AGE_S)
    checks["unpublished"] = (
        OK
        if age <= max_age
        else f"the oldest unpublished event waits {age:.0f} s (over {max_age:.0f} s)"
    )
    return checks
