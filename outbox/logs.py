"""Log records that say which event they are about.

``EventContextFilter`` (a ``logging.Filter`` for a handler) puts on each record
what the context knows (``outbox.context``): the correlation and causation ids
of the work in progress and, inside a consumer's handler, the event's id and
type, the group, and the payload fields named by ``OUTBOX_LOG_PAYLOAD_FIELDS``
(e.g. ``order_id``). Only what exists is set, and nothing a caller passed in
``extra=`` is overwritten. The cost is paid per record written, never per event
handled: the consumer only sets a context variable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from outbox import context
from outbox.conf import conf

if TYPE_CHECKING:
    from outbox.message import Message

logger = logging.getLogger("outbox.handled")


class EventContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        cause = context.current()
        if cause.correlation_id and "correlation_id" not in attrs:
            record.correlation_id = cause.correlation_id
        if cause.causation_id and "causation_id" not in attrs:
            record.causation_id = cause.causation_id
        handling = context.handled()
        if handling is not None:
            message = handling.message
            attrs.setdefault("event_id", str(message.event_id))
            attrs.setdefault("event_type", message.type)
            attrs.setdefault("group", handling.group)
            for name in conf.LOG_PAYLOAD_FIELDS:
                value = message.payload.get(name)
                if value is not None:
                    attrs.setdefault(name, value)
        return True


def log_applied(group: str, messages: Sequence[Message]) -> None:
    """One INFO line per event a group applied (after its commit), with the event's context."""
    if not messages or not logger.isEnabledFor(logging.INFO):
        return
    for message in messages:
        with context.handling(group, message):
            logger.info(
                "%s applied %s %s (aggregate %s:%s)",
                group,
                message.type,
                message.event_id,
                message.aggregate_type,
                message.aggregate_id,
            )
