class OutboxError(Exception):
    """Base class of the outbox's errors."""


class ConfigurationError(OutboxError):
    """An event type, upcaster or consumer group is declared wrongly."""


class NotInTransaction(OutboxError):
    """``publish`` was called outside ``transaction.atomic()``."""


class InvalidEvent(OutboxError):
    """An event or its payload does not match its registered schema."""


class NoUpcaster(OutboxError, LookupError):
    """An event's version is older than a handler needs and no upcaster bridges the gap."""
