from django.db import models


class Thing(models.Model):
    """A test aggregate whose changes publish probe events."""

    name = models.CharField(max_length=100)
    # Bumped under the row lock by each change, so steps follow the commit order.
    step = models.IntegerField(default=0)


class Effect(models.Model):
    """One applied effect: a handler ran for (group, event). Duplicates would show here."""

    group = models.CharField(max_length=100)
    event_id = models.UUIDField()
    aggregate_id = models.CharField(max_length=100)
    sequence = models.BigIntegerField()
    step = models.IntegerField(null=True)
    version_seen = models.IntegerField()
    payload = models.JSONField(default=dict)
    # The PROBE_WORKER environment variable of the process that applied it.
    worker = models.CharField(max_length=50, blank=True, default="")
    pid = models.IntegerField(default=0)  # the process that applied it
    applied_at = models.DateTimeField(auto_now_add=True)


class Switch(models.Model):
    """A fault the probe handlers obey: while ``on``, events of ``kind`` fail."""

    kind = models.CharField(max_length=50, unique=True)
    on = models.BooleanField(default=True)
