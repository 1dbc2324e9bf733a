"""Doorbells: wake a Celery task when there is news, without a task per piece of news.

A bell is two Redis keys. ``dirty`` says there is news the lease holder has not
looked at; ``queued`` says a task is queued or running for it. Ringing sets
``dirty`` and, only when it sets ``queued`` anew, sends a task. The lease
holder clears ``dirty`` before it looks (under the lease); when it is done it
clears ``queued`` and then looks at ``dirty`` once more, going on if it is set.
So news that arrives while a task works never waits for beat, and a burst of
commits sends one task, not one each. ``queued`` expires, so a task message
that was lost blocks new wake-ups for at most ``TTL_S``; beat polls anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from outbox import streams

TTL_S = 30


@dataclass(frozen=True)
class Doorbell:
    name: str

    @classmethod
    def relay(cls, partition: int) -> Doorbell:
        return cls(f"relay:{partition}")

    @classmethod
    def consumer(cls, group: str, partition: int) -> Doorbell:
        return cls(f"consume:{group}:{partition}")

    @property
    def dirty(self) -> str:
        return streams.key("bell", self.name, "dirty")

    @property
    def queued(self) -> str:
        return streams.key("bell", self.name, "queued")

    def clear(self, client: redis.Redis) -> None:
        """The lease holder is about to look: news from now on rings again."""
        client.delete(self.dirty)

    def done(self, client: redis.Redis) -> bool:
        """The holding task is finishing; True if news came meanwhile and it must go on."""
        client.delete(self.queued)
        return bool(client.exists(self.dirty))


def ring(client: redis.Redis, bells: Iterable[tuple[Doorbell, Callable[[], None]]]) -> None:
    """Ring bells in one round trip; ``send`` runs for each bell that had no task queued."""
    bells = list(bells)
    pipe = client.pipeline(transaction=False)
    for bell, _ in bells:
        pipe.set(bell.dirty, 1, ex=TTL_S)
        pipe.set(bell.queued, 1, nx=True, ex=TTL_S)
    replies = pipe.execute()
    for (_, send), queued_now in zip(bells, replies[1::2], strict=True):
        if queued_now:
            send()
