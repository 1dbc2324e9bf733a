"""Readers: the relay and every consumer group as long-lived loops inside the worker.

A process runs one reader thread per role: the relay, and each consumer group.
Each thread has its own database session, which holds the advisory-lock leases
of the partitions it works, and waits on its source instead of being woken by a
task: the relay on PostgreSQL LISTEN (a commit that published NOTIFYs, see
``publishing``), a group on XREADGROUP with BLOCK over all its partitions at once.

Leases spread over every process that runs readers, on every host: once a
second each thread counts the sessions of its role (``application_name``) and
holds at most its share, ``ceil(partitions / readers)``, taking free partitions
and giving back extra ones. A process that dies loses its sessions and their
leases at once; the others see it at their next look and take over. Someone
waiting for a lease (a dead-letter retry, ``outbox_repartition``) gets it
within a second: holders give up what others wait for.

Readers heal themselves: a lost database session (PostgreSQL restarted) or a
Redis error makes the thread back off (0.5 s doubling to 10 s, logged), then
connect again and take its leases again. Because a reader that lost its
session may still have one XREADGROUP in flight, a consumer that takes over a
partition its predecessor did not give back cleanly waits ``GRACE_S`` before
reading, then reads the pending entries first: nothing read by the old holder
is overtaken.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import socket
import sys
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone

from outbox import layout as layouts
from outbox import streams
from outbox.conf import conf
from outbox.consumer import BatchResult, PartitionConsumer, handle_read, lease_name, read
from outbox.failures import stale_plan
from outbox.layout import Layout
from outbox.lease import LeaseSet, supported
from outbox.registry import registry
from outbox.relay import RELAY_LEASE, relay_held

logger = logging.getLogger(__name__)

TICK_S = 1.0  # how often a reader looks at the layout and its leases
BLOCK_S = 1.0  # the longest XREADGROUP block (and LISTEN wait)
GRACE_S = 2 * BLOCK_S + 0.5  # after a handover that was not clean, see the module docstring
RELAY_POLL_S = 1.0  # the relay also looks at its partitions this often without a NOTIFY
SQLITE_POLL_S = 0.05  # no NOTIFY there: the relay polls
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 10.0
RELAY_ROLE = "relay"
SWITCH_INTERVAL_S = 0.0005
# How long a batch of a group that batches waits for a row lock before giving way
# (``lock_timeout`` of its session, in ms, drawn once per session from this range).
# Its handlers may lock rows that another partition's batch locks too (an order,
# reached through its payment's events in one partition and its reservation's in
# another): in the wrong order that is a deadlock, which PostgreSQL only breaks
# after its deadlock_timeout (1 s). Giving way sooner (a transient failure: the
# batch is redone at once, event by event) keeps such a collision to a blip; the
# sessions' different limits make one of the two give way first, not both at once.
BATCH_LOCK_TIMEOUT_MS = (50, 150)


def application_name(role: str) -> str:
    """How a reader's database session names itself: readers of a role count each other."""
    name = f"outbox:{conf.STREAM_PREFIX}:{role}"
    if len(name) > 63:  # PostgreSQL keeps 63 bytes
        name = "outbox:" + hashlib.sha1(name.encode()).hexdigest()  # noqa: S324 - a name, not a secret
    return name


def _session_lost(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError) or stale_plan(exc):
        return True
    if isinstance(exc, DatabaseError) and connection.connection is not None:
        return not connection.is_usable()
    return False


class Reader(threading.Thread):
    """One role's loop in one process. Subclasses define ``step`` and the lease hooks."""

    role: str
    lease_name: str

    def __init__(self, *, member: str, stopping: threading.Event) -> None:
        super().__init__(name=f"outbox-{self.role}", daemon=True)
        self.member = member
        self.stopping = stopping
        self.leases = LeaseSet(self.lease_name)
        self.layout: Layout | None = None
        self.app_name = application_name(self.role)
        self.client = streams.get_redis()
        self.session: object | None = None  # the database connection the leases live on
        self.next_tick = 0.0
        self.db_ok_at = 0.0
        self.failures = 0
        self.shown: tuple[int, ...] = ()
        self.offset = zlib.crc32(f"{member}:{self.role}".encode())
        self.looped_at = time.monotonic()  # the loop's last turn (outbox.heartbeat reads it)

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.looped_at = time.monotonic()
                try:
                    self._ensure_session()
                    if time.monotonic() >= self.next_tick:
                        self.tick()
                    self.step()
                    if self.failures:
                        logger.info("outbox %s reader: working again", self.role)
                    self.failures = 0
                except Exception as exc:  # noqa: BLE001 - a reader backs off and goes on
                    self._failed(exc)
        finally:
            self._shutdown()

    def _ensure_session(self) -> None:
        connection.ensure_connection()
        if connection.connection is not self.session:
            # A new session: the old one's leases went with it.
            for partition in sorted(self.leases.held):
                self.released(partition, clean=False)
            self.leases.forget()
            if supported():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT set_config('application_name', %s, false)", [self.app_name]
                    )
            self.session = connection.connection
            self.new_session()
            self.next_tick = 0.0

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        delay = min(BACKOFF_MIN_S * 2 ** (self.failures - 1), BACKOFF_MAX_S)
        if _session_lost(exc):
            what = (
                "its prepared statements are out of date (a migration changed a table)"
                if stale_plan(exc)
                else "the database is unreachable"
            )
            try:
                connection.close()
            except DatabaseError:
                pass
            for partition in sorted(self.leases.held):
                self.released(partition, clean=False)
            self.leases.forget()
            self.session = None
        elif isinstance(exc, redis.RedisError):
            what = "Redis is unreachable"
            self.redis_failed()
        else:
            what = "it failed"
            logger.error("outbox %s reader failed", self.role, exc_info=exc)
        logger.warning(
            "outbox %s reader: %s (%s: %s); retrying in %.1f s",
            self.role,
            what,
            type(exc).__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            delay,
        )
        self.stopping.wait(delay)

    def _shutdown(self) -> None:
        try:
            for partition in sorted(self.leases.held):
                self.leases.release(partition)
                self.released(partition, clean=True)
        except Exception:
            logger.debug("outbox %s reader: releasing leases failed", self.role, exc_info=True)
        finally:
            self.leases.forget()
            connection.close()

    # --- leases -------------------------------------------------------------------------

    def tick(self) -> None:
        """Look at the layout and the role's leases; keep this process's share."""
        self.next_tick = time.monotonic() + TICK_S
        current = layouts.current()
        if self.layout is None or current.generation != self.layout.generation:
            if self.layout is not None:
                logger.info(
                    "outbox %s reader: the event log now has %s partition(s)",
                    self.role,
                    current.partitions,
                )
            self._release(self.leases.held)
            self.layout = current
        self.layout = current
        survey = self.leases.survey(self.app_name)
        self.db_ok_at = time.monotonic()
        if self.paused(current):
            self._release(self.leases.held)
            return
        share = math.ceil(current.partitions / max(survey.members, 1))
        held = self.leases.held
        self._release(held & survey.wanted)  # someone waits for these: let them have them
        self._release(sorted(held, reverse=True)[: max(len(held) - share, 0)])
        for partition in self._order(current.partitions):
            if len(held) >= share:
                break
            if partition in held or partition in survey.taken:
                continue
            if self.leases.try_acquire(partition):
                self.acquired(partition)
        shown = tuple(sorted(held))
        if shown != self.shown:
            self.shown = shown
            logger.info(
                "outbox %s reader: holding partition(s) %s of %s",
                self.role,
                ", ".join(map(str, shown)) or "none",
                current.partitions,
            )

    def _order(self, partitions: int) -> list[int]:
        # Each process starts looking at its own place, so they rarely reach for the same one.
        start = self.offset % partitions
        return [(start + n) % partitions for n in range(partitions)]

    def _release(self, partitions: Iterable[int]) -> None:
        for partition in sorted(partitions):
            self.leases.release(partition)
            self.released(partition, clean=True)

    # --- hooks ----------------------------------------------------------------------------

    def step(self) -> None:
        raise NotImplementedError

    def paused(self, layout: Layout) -> bool:
        return False

    def acquired(self, partition: int) -> None:
        """The lease on ``partition`` was just taken."""

    def released(self, partition: int, *, clean: bool) -> None:
        """The lease on ``partition`` was given back (clean) or lost with the session."""

    def new_session(self) -> None:
        """A new database session was opened."""

    def redis_failed(self) -> None:
        """A Redis command failed: what was in flight is unknown."""

    def _wait(self, seconds: float) -> None:
        self.stopping.wait(max(seconds, 0.0))

    def _until_tick(self, cap: float) -> float:
        return max(min(self.next_tick - time.monotonic(), cap), 0.0)


class RelayReader(Reader):
    """Relays the partitions it holds whenever a commit NOTIFYs, and polls them each second."""

    role = RELAY_ROLE
    lease_name = RELAY_LEASE

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dirty: set[int] = set()
        self.listening = False
        self.next_poll = 0.0

    def paused(self, layout: Layout) -> bool:
        return layout.paused  # outbox_repartition is changing the layout

    def acquired(self, partition: int) -> None:
        self.dirty.add(partition)

    def released(self, partition: int, *, clean: bool) -> None:
        self.dirty.discard(partition)

    def new_session(self) -> None:
        self.listening = False

    def step(self) -> None:
        if self.layout is None:
            return
        if supported() and not self.listening:
            with connection.cursor() as cursor:
                cursor.execute(f'LISTEN "{streams.notify_channel()}"')
            self.listening = True
        now = time.monotonic()
        if now >= self.next_poll:
            self.next_poll = now + RELAY_POLL_S
            self.dirty |= self.leases.held
        dirty = sorted(self.dirty & self.leases.held)
        # One batch for all (a statement each for the SELECT and the UPDATE, one round
        # trip to Redis); a backlog is then worked partition by partition, so that one
        # partition's does not hold the others back.
        if (
            dirty
            and not relay_held(
                dirty, layout=self.layout, client=self.client, max_seconds=0.5, max_batches=1
            ).more
        ):
            self.dirty.difference_update(dirty)
            dirty = []
        for partition in dirty:
            result = relay_held(partition, layout=self.layout, client=self.client, max_seconds=0.5)
            if not result.more:
                self.dirty.discard(partition)
        self.dirty &= self.leases.held
        self.db_ok_at = time.monotonic()
        if self.dirty:
            return  # more to send: go on at once
        timeout = min(self._until_tick(BLOCK_S), max(self.next_poll - time.monotonic(), 0.0))
        if not supported():
            self._wait(min(timeout, SQLITE_POLL_S))
            self.dirty |= self.leases.held
            return
        raw = connection.connection
        for notify in raw.notifies(timeout=timeout, stop_after=1):
            self._note(notify.payload)
        for notify in raw.notifies(timeout=0):  # whatever else already arrived
            self._note(notify.payload)

    def _note(self, payload: str) -> None:
        if self.layout is None or not payload.isdigit():
            self.dirty |= self.leases.held  # "*": everything (a replay, a recovery)
            return
        self.dirty.add(self.layout.partition_of(int(payload)))


@dataclass
class _Held:
    worker: PartitionConsumer
    pending: bool = True  # read the pending list before new entries
    grace_until: float = 0.0


class GroupReader(Reader):
    """Applies one consumer group's handlers to the partitions it holds."""

    def __init__(self, group: str, **kwargs) -> None:
        self.role = group
        self.lease_name = lease_name(group)
        super().__init__(**kwargs)
        self.group = group
        self.held: dict[int, _Held] = {}
        # Entries of committed batches, acknowledged with the next read (one round trip).
        self.unacked: dict[int, list[str]] = {}
        spec = registry.groups[group]
        self.batching = not spec.transaction_per_event
        self.linger_s = spec.linger_ms / 1000
        self.read_after = 0.0  # a lingering group's next read, while entries keep coming

    def new_session(self) -> None:
        if supported() and self.batching:
            with connection.cursor() as cursor:
                limit = random.randint(*BATCH_LOCK_TIMEOUT_MS)
                cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{limit}ms"])

    def _handover_key(self, partition: int) -> str:
        return streams.key("handover", self.group, partition)

    def acquired(self, partition: int) -> None:
        state = _Held(PartitionConsumer(self.group, partition))
        state.grace_until = time.monotonic() + GRACE_S
        self.held[partition] = state
        try:
            previous = self.client.set(self._handover_key(partition), self.member, get=True)
        except redis.RedisError:
            return  # unknown: keep the grace
        if previous == "free":
            state.grace_until = 0.0

    def released(self, partition: int, *, clean: bool) -> None:
        self.held.pop(partition, None)
        ids = self.unacked.pop(partition, None)
        if ids and clean:
            try:
                self.client.xack(streams.stream_name(partition), self.group, *ids)
            except redis.RedisError:
                pass  # the next holder reads them again, finds them applied, acknowledges
        if clean:
            try:
                self.client.set(self._handover_key(partition), "free")
            except redis.RedisError:
                pass  # the next holder then waits its grace: safe

    def redis_failed(self) -> None:
        self.unacked.clear()
        for state in self.held.values():
            state.pending = True  # a reply or an XACK may have been lost

    def step(self) -> None:
        now = time.monotonic()
        wall = timezone.now()
        for partition, state in list(self.held.items()):
            retry_at = state.worker.retry_at
            if (
                state.pending
                and state.grace_until <= now
                and (retry_at is None or retry_at <= wall)
            ):
                self._drain_pending(partition, state)
        live = {p: ">" for p, state in self.held.items() if not state.pending}
        timeout = self._until_tick(BLOCK_S)
        if not live:
            self._wait(min(timeout, 0.2) if self.held else timeout)
            return
        gather = self.read_after - time.monotonic()
        if gather > 0:
            self._wait(gather)
            timeout = self._until_tick(BLOCK_S)
        if time.monotonic() - self.db_ok_at > BLOCK_S:
            # Never read new entries on a session that may be gone (see GRACE_S).
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            self.db_ok_at = time.monotonic()
        acks, self.unacked = self.unacked, {}
        replies = read(
            self.client,
            self.group,
            live,
            count=conf.CONSUMER_BATCH_SIZE,
            block_ms=max(int(timeout * 1000), 1),
            acks={p: ids for p, ids in acks.items() if p in self.held},
        )
        if self.linger_s and any(entries for _, entries in replies):
            self.read_after = time.monotonic() + self.linger_s
        fresh = [
            (partition, held, entries)
            for partition, entries in replies
            if entries and (held := self.held.get(partition)) is not None
        ]
        batches = handle_read([(state.worker, entries) for _, state, entries in fresh])
        for (partition, state, _), batch in zip(fresh, batches, strict=True):
            self._handled(partition, state, batch, fresh=True)

    def _drain_pending(self, partition: int, state: _Held) -> None:
        ids = self.unacked.pop(partition, None)
        if ids:  # else the pending list would hand them back once more
            self.client.xack(streams.stream_name(partition), self.group, *ids)
        while not self.stopping.is_set():
            replies = read(
                self.client, self.group, {partition: "0"}, count=conf.CONSUMER_BATCH_SIZE
            )
            entries = replies[0][1] if replies else []
            if not entries:
                state.pending = False
                return
            batch = state.worker.handle(entries, fresh=False)
            if self._handled(partition, state, batch, fresh=False):
                return  # a failed entry waits for its retry

    def _handled(self, partition: int, state: _Held, batch: BatchResult, *, fresh: bool) -> bool:
        self.db_ok_at = time.monotonic()
        if batch.acks:
            if fresh:
                self.unacked.setdefault(partition, []).extend(batch.acks)
            else:
                self.client.xack(state.worker.place.stream, self.group, *batch.acks)
        if batch.stopped:
            state.pending = True
        return batch.stopped


class Runtime:
    """The readers of one process: start them, stop them."""

    def __init__(self, *, relay: bool = True, groups: Iterable[str] | None = None) -> None:
        self.stopping = threading.Event()
        member = f"{socket.gethostname()}:{os.getpid()}"
        names = sorted(registry.groups) if groups is None else list(groups)
        unknown = [name for name in names if name not in registry.groups]
        if unknown:
            raise LookupError(f"unknown consumer group {unknown[0]!r}")
        self.readers: list[Reader] = []
        if relay:
            self.readers.append(RelayReader(member=member, stopping=self.stopping))
        self.readers += [GroupReader(name, member=member, stopping=self.stopping) for name in names]

    def start(self) -> None:
        # The readers wait on sockets most of the time; a thread whose reply arrived
        # should not wait 5 ms (the default) for another to give up the interpreter.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        for reader in self.readers:
            reader.start()
        logger.info(
            "outbox readers started in process %s: %s",
            os.getpid(),
            ", ".join(reader.role for reader in self.readers),
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every reader to finish its batch, give its leases back and stop."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for reader in self.readers:
            reader.join(max(deadline - time.monotonic(), 0.1))

    def alive(self) -> bool:
        return any(reader.is_alive() for reader in self.readers)
