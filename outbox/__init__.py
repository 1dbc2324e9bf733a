"""The event plumbing: publish events in a transaction, relay them, consume them once.

Public API::

    from outbox import Event, publish, ConsumerGroup, Message, upcaster
"""

from outbox.errors import ConfigurationError, InvalidEvent, NotInTransaction, OutboxError
from outbox.message import Message
from outbox.publishing import publish
from outbox.registry import ConsumerGroup, Event, upcaster

__all__ = [
    "ConfigurationError",
    "ConsumerGroup",
    "Event",
    "InvalidEvent",
    "Message",
    "NotInTransaction",
    "OutboxError",
    "publish",
    "upcaster",
]
