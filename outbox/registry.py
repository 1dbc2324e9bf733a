"""Event types, upcasters and consumer handlers, declared in code and collected at start-up.

Each app declares the events it publishes in its ``events.py`` (subclasses of
:class:`Event`) and the events it reacts to in its ``handlers.py`` (functions
decorated with :meth:`ConsumerGroup.handler`). ``OutboxConfig.ready`` imports
both modules of every installed app, so the registries are complete before the
first event is published or consumed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from outbox.errors import ConfigurationError, NoUpcaster
from outbox.message import Message

EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[A-Z][A-Za-z0-9]*$")
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")

EVENT_CLASS_ATTRIBUTES = ("name", "version", "aggregate_type", "aggregate_id_field")

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]


class Event(BaseModel):
    """A domain event: a small, immutable, past-tense fact with a versioned schema.

    Subclasses set ``name`` (``app.EventName``), ``version``, ``aggregate_type``
    and ``aggregate_id_field`` (the field whose value identifies the aggregate,
    which orders its events and picks its stream partition). Fields are the
    payload; constructing an event with values that break its schema raises
    ``pydantic.ValidationError``. Decimals travel as strings and datetimes as
    ISO strings in UTC.
    """

    # Aliases let a payload key share a name with a class attribute below, e.g.
    # ``product_name: str = Field(alias="name")`` puts the key "name" in the payload.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        serialize_by_alias=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    name: ClassVar[str]
    version: ClassVar[int] = 1
    aggregate_type: ClassVar[str]
    aggregate_id_field: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        registry.register_event(cls)

    def aggregate_id(self) -> str:
        return str(getattr(self, self.aggregate_id_field))

    def payload(self) -> Payload:
        """The payload as JSON primitives."""
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Handler:
    group: str
    event_type: str
    min_version: int
    max_version: int
    func: Callable[[Any], None]
    many: bool = False  # ``func`` takes a list of messages (see ``ConsumerGroup.handler``)

    def upcast(self, message: Message) -> Message:
        """The message as this handler takes it: raised to its lowest accepted version.

        Raises ``NoUpcaster`` when no upcaster bridges the gap. (Newer versions than
        the handler accepts are the caller's to refuse.)
        """
        if message.version >= self.min_version:
            return message
        payload = registry.upcast(message.type, message.version, message.payload, self.min_version)
        return message.with_payload(payload, self.min_version)


@dataclass
class ConsumerGroup:
    """A consuming app's subscription: one Redis consumer group and its handlers.

    Declare it once in the app's ``handlers.py`` and decorate each handler::

        consumer = ConsumerGroup("inventory")

        @consumer.handler("orders.OrderCreated", versions=(1, 2))
        def on_order_created(message: Message) -> None: ...

    A handler receives the event upcast to at least ``versions[0]``; an event
    newer than ``versions[1]`` becomes a dead letter instead of being guessed at.

    The events of one read are applied in one transaction (a commit per batch,
    not per event). A group whose handlers lock rows that the events of other
    partitions lock too (a product's stock, say) sets ``transaction_per_event``:
    a batch would hold those locks across many events and deadlock with the
    other partitions' batches.

    A group whose results nobody waits for (a read model, say) sets
    ``linger_ms``: while entries keep coming, its readers read at most once per
    that many milliseconds, so a read brings several entries and one commit
    covers them, for a delay of at most that. An idle group's first entry is
    read at once.
    """

    name: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    transaction_per_event: bool = False
    linger_ms: int = 0

    def __post_init__(self) -> None:
        if not GROUP_NAME.match(self.name):
            raise ConfigurationError(f"invalid consumer group name {self.name!r}")
        if not isinstance(self.linger_ms, int) or not 0 <= self.linger_ms <= 10_000:
            raise ConfigurationError(
                f"{self.name}: linger_ms must be a whole number of ms from 0 to 10000"
            )
        registry.register_group(self)

    def handler(
        self, event_type: str, *, versions: int | tuple[int, int] = 1, many: bool = False
    ) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
        """Register the decorated function as the group's handler of ``event_type``.

        ``versions`` is the version (or the inclusive range) it takes; older events
        are upcast to the lowest. With ``many=True`` the function takes a list of
        messages: the events of a batch, in stream order, that follow one another
        and that it handles (under any of its types), so that a projection can
        write them in one statement. It must apply all of them or raise; its log
        lines and what it publishes are attributed to the last of them.
        """
        low, high = (versions, versions) if isinstance(versions, int) else versions
        if not EVENT_NAME.match(event_type):
            raise ConfigurationError(f"invalid event type {event_type!r}")
        if not 1 <= low <= high:
            raise ConfigurationError(f"invalid version range {versions!r} for {event_type}")

        def decorate(func: Callable[[Any], None]) -> Callable[[Any], None]:
            if event_type in self.handlers:
                raise ConfigurationError(f"{self.name} handles {event_type} twice")
            self.handlers[event_type] = Handler(self.name, event_type, low, high, func, many)
            return func

        return decorate


class Registry:
    def __init__(self) -> None:
        self.events: dict[tuple[str, int], type[Event]] = {}
        self.upcasters: dict[tuple[str, int], Upcaster] = {}
        self.groups: dict[str, ConsumerGroup] = {}
        self.types: set[str] = set()  # every event type with a schema or an upcaster

    def register_event(self, cls: type[Event]) -> None:
        # A field named like a class attribute replaces it: the class would look
        # abstract below and silently never be registered.
        hidden = [attr for attr in EVENT_CLASS_ATTRIBUTES if attr in cls.model_fields]
        if hidden:
            raise ConfigurationError(
                f"{cls.__qualname__}: the field(s) {', '.join(hidden)} hide the event's "
                "class attributes; name the field otherwise, with alias= for the payload key"
            )
        name = cls.__dict__.get("name")
        if name is None:  # an abstract intermediate class
            return
        if not EVENT_NAME.match(name):
            raise ConfigurationError(f"event name {name!r} must look like 'app.EventName'")
        for attr in ("aggregate_type", "aggregate_id_field"):
            if not isinstance(getattr(cls, attr, None), str):
                raise ConfigurationError(f"{name} must set {attr}")
        if cls.aggregate_id_field not in cls.model_fields:
            raise ConfigurationError(f"{name}.aggregate_id_field names no field")
        key = (name, cls.version)
        existing = self.events.get(key)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ConfigurationError(f"{name} v{cls.version} is declared twice")
        self.events[key] = cls
        self.types.add(name)

    def register_upcaster(self, event_type: str, from_version: int, func: Upcaster) -> None:
        key = (event_type, from_version)
        if key in self.upcasters:
            raise ConfigurationError(f"{event_type} v{from_version} has two upcasters")
        self.upcasters[key] = func
        self.types.add(event_type)

    def register_group(self, group: ConsumerGroup) -> None:
        existing = self.groups.get(group.name)
        if existing is not None and existing is not group:
            raise ConfigurationError(f"consumer group {group.name!r} is declared twice")
        self.groups[group.name] = group

    def known_type(self, event_type: str) -> bool:
        return event_type in self.types

    def upcast(self, event_type: str, version: int, payload: Payload, target: int) -> Payload:
        """Raise ``payload`` from ``version`` to ``target`` through the registered upcasters."""
        while version < target:
            step = self.upcasters.get((event_type, version))
            if step is None:
                raise NoUpcaster(f"no upcaster for {event_type} from v{version} to v{version + 1}")
            payload = step(payload)
            version += 1
        return payload


registry = Registry()


def upcaster(event_type: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Declare how a payload of ``from_version`` becomes one of ``from_version + 1``.

    Upcasters live beside the event types in the publishing app's ``events.py``:
    the publisher knows how its schema evolved, consumers only ask for a version.
    """

    def decorate(func: Upcaster) -> Upcaster:
        registry.register_upcaster(event_type, from_version, func)
        return func

    return decorate
