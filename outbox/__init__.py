"""The event plumbing: publish events in a transaction, relay them, consume them once.

Public API::

    from outbox import Event, publish, ConsumerGroup, Message, upcaster, atomic

The names are imported on first use, so that a settings module may import
``outbox.conf`` before Django's apps are ready.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "atomic": "outbox.transactions",
    "ConfigurationError": "outbox.errors",
    "InvalidEvent": "outbox.errors",
    "NotInTransaction": "outbox.errors",
    "OutboxError": "outbox.errors",
    "Message": "outbox.message",
    "publish": "outbox.publishing",
    "ConsumerGroup": "outbox.registry",
    "Event": "outbox.registry",
    "upcaster": "outbox.registry",
}

__all__ = [
    "ConfigurationError",
    "ConsumerGroup",
    "Event",
    "InvalidEvent",
    "Message",
    "NotInTransaction",
    "OutboxError",
    "atomic",
    "publish",
    "upcaster",
]

if TYPE_CHECKING:
    from outbox.errors import ConfigurationError, InvalidEvent, NotInTransaction, OutboxError
    from outbox.message import Message
    from outbox.publishing import publish
    from outbox.registry import ConsumerGroup, Event, upcaster
    from outbox.transactions import atomic


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'outbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
