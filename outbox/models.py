import uuid

from django.db import models
from django.db.models import Q


class OutboxEvent(models.Model):
    """One domain event, written in the transaction of the change it describes.

    The table is the event log: rows are never updated but for delivery
    bookkeeping (``published_at``, ``attempts``, ``last_error``) and are pruned
    after the retention period.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=200, db_index=True)
    version = models.PositiveSmallIntegerField()
    aggregate_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=100)
    aggregate_version = models.PositiveIntegerField()
    # A fixed hash of the aggregate (0..4095); partitions are ranges of slots (outbox.layout).
    slot = models.PositiveSmallIntegerField()
    payload = models.JSONField()
    headers = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "aggregate_version"],
                name="outbox_event_aggregate_version_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["id"],
                condition=Q(published_at__isnull=True),
                name="outbox_event_unpublished",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event_type} v{self.version} {self.aggregate_type}:{self.aggregate_id}"


class InboxEntry(models.Model):
    """That a consumer group applied an event; written in the handler's transaction."""

    id = models.BigAutoField(primary_key=True)
    group = models.CharField(max_length=100)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=200)
    processed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "inbox entries"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "event_id"], name="outbox_inbox_group_event_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} applied {self.event_type} {self.event_id}"


class DeliveryFailure(models.Model):
    """The attempts so far of a message that is being retried with backoff."""

    group = models.CharField(max_length=100)
    stream = models.CharField(max_length=200)
    entry_id = models.CharField(max_length=50)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "stream", "entry_id"], name="outbox_failure_entry_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} {self.stream} {self.entry_id}: {self.attempts} attempts"


class DeadLetter(models.Model):
    """An event a consumer group could not apply, kept with why, until it is retried or discarded.

    Discarding is a decision staff record (who, when, why): the event is never applied
    by the group, and no longer holds back the later events of its aggregate.
    """

    class Status(models.TextChoices):
        DEAD = "dead", "Dead"
        RESOLVED = "resolved", "Resolved"
        DISCARDED = "discarded", "Discarded"

    class Kind(models.TextChoices):
        """Why the event is a dead letter (the metrics' ``reason`` label too)."""

        MALFORMED = "malformed", "malformed"
        UNKNOWN_TYPE = "unknown_type", "unknown type"
        TOO_NEW = "too_new", "too new"
        SCHEMA = "schema", "schema"
        PARKED = "parked", "parked"
        HANDLER = "handler", "handler"

    id = models.BigAutoField(primary_key=True)
    group = models.CharField(max_length=100)
    partition = models.PositiveSmallIntegerField(default=0)
    # Null when the stream entry could not even be decoded.
    event_id = models.UUIDField(null=True, blank=True)
    event_type = models.CharField(max_length=200, blank=True, default="")
    aggregate_type = models.CharField(max_length=100, blank=True, default="")
    aggregate_id = models.CharField(max_length=100, blank=True, default="")
    sequence = models.BigIntegerField(null=True, blank=True)
    fields = models.JSONField(default=dict, help_text="The stream entry as received.")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.HANDLER)
    reason = models.CharField(max_length=500)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DEAD)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    discarded_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.CharField(max_length=150, blank=True, default="")
    discard_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "event_id"],
                condition=Q(status="dead"),
                name="outbox_deadletter_open_unique",
            ),
            # A discard always says who, when and why.
            models.CheckConstraint(
                condition=~Q(status="discarded")
                | (Q(discarded_at__isnull=False) & ~Q(discarded_by="") & ~Q(discard_reason="")),
                name="outbox_deadletter_discard_recorded",
            ),
        ]
        indexes = [models.Index(fields=["group", "status", "aggregate_type", "aggregate_id"])]

    def __str__(self) -> str:
        return f"dead letter #{self.pk} {self.group} {self.event_type or '(undecodable)'}"


class StreamLayout(models.Model):
    """How many partitions (streams) the event log under one key prefix has.

    The database holds it so that every relay and consumer agrees, and so that
    ``outbox_repartition`` can change it on a live system: relays pause while
    it changes (``paused``), and ``generation`` tells everyone who read an older
    layout to read it again.
    """

    prefix = models.CharField(max_length=100, primary_key=True)
    partitions = models.PositiveSmallIntegerField()
    generation = models.PositiveIntegerField(default=1)
    paused = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(partitions__gte=1) & Q(partitions__lte=4096),
                name="outbox_layout_partitions_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}: {self.partitions} partition(s), generation {self.generation}"
