import zlib

from django.db import migrations, models
from django.db.models import Q

SLOT_COUNT = 4096


def fill_slots(apps, schema_editor):
    # Rows written before slots existed held "partition = crc32 % partitions". With one
    # partition (the old default) nothing moves; with more, drain before migrating (no
    # unpublished rows, every group caught up), since aggregates map to other streams now.
    OutboxEvent = apps.get_model("outbox", "OutboxEvent")
    pairs = OutboxEvent.objects.values_list("aggregate_type", "aggregate_id").distinct()
    for aggregate_type, aggregate_id in pairs.iterator():
        slot = zlib.crc32(f"{aggregate_type}:{aggregate_id}".encode()) % SLOT_COUNT
        OutboxEvent.objects.filter(
            aggregate_type=aggregate_type, aggregate_id=aggregate_id
        ).update(slot=slot)


class Migration(migrations.Migration):
    dependencies = [("outbox", "0001_initial")]

    operations = [
        migrations.RemoveIndex(model_name="outboxevent", name="outbox_event_unpublished"),
        migrations.RenameField(model_name="outboxevent", old_name="partition", new_name="slot"),
        migrations.RunPython(fill_slots, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="outboxevent",
            index=models.Index(
                condition=Q(published_at__isnull=True),
                fields=["id"],
                name="outbox_event_unpublished",
            ),
        ),
        migrations.CreateModel(
            name="StreamLayout",
            fields=[
                ("prefix", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("partitions", models.PositiveSmallIntegerField()),
                ("generation", models.PositiveIntegerField(default=1)),
                ("paused", models.BooleanField(default=False)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=Q(partitions__gte=1) & Q(partitions__lte=4096),
                        name="outbox_layout_partitions_range",
                    )
                ],
            },
        ),
    ]
