from django.db import models


class Applied(models.Model):
    """One handled benchmark event: the small write a real handler would make."""

    group = models.CharField(max_length=100)
    event_id = models.UUIDField()
    run = models.CharField(max_length=40)
    n = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.group} applied {self.run}#{self.n}"
