from django.db import migrations, models

# What the reasons of dead letters recorded before the kind was a field begin with.
# A letter whose retry failed ("retry failed: ...") no longer says; it stays "handler".
_KINDS_BY_REASON = (
    ("parked", {"reason__startswith": "parked behind dead letter"}),
    ("malformed", {"reason__startswith": "malformed stream entry"}),
    ("unknown_type", {"reason__startswith": "unknown event type"}),
    ("too_new", {"reason__contains": "is newer than this group handles"}),
    ("schema", {"reason__startswith": "payload breaks the schema"}),
)


def backfill(apps, schema_editor):
    DeadLetter = apps.get_model("outbox", "DeadLetter")
    for kind, lookup in _KINDS_BY_REASON:
        DeadLetter.objects.filter(kind="handler", **lookup).update(kind=kind)


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0003_dead_letter_discard"),
    ]

    operations = [
        migrations.AddField(
            model_name="deadletter",
            name="kind",
            field=models.CharField(
                choices=[
                    ("malformed", "malformed"),
                    ("unknown_type", "unknown type"),
                    ("too_new", "too new"),
                    ("schema", "schema"),
                    ("parked", "parked"),
                    ("handler", "handler"),
                ],
                default="handler",
                max_length=20,
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
