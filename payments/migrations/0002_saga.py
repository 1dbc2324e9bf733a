import uuid

from django.db import migrations, models


def payments_get_keys(apps, schema_editor):
    # Each payment needs keys of its own before the columns become unique.
    Payment = apps.get_model("payments", "Payment")
    for payment in Payment.objects.all().only("pk", "status"):
        payment.charge_key = uuid.uuid4()
        payment.refund_key = uuid.uuid4() if payment.status == "REFUNDED" else None
        payment.save(update_fields=["charge_key", "refund_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="payment", name="payments_payment_status_valid"),
        migrations.RemoveConstraint(
            model_name="payment", name="payments_payment_captured_has_reference"
        ),
        migrations.RenameField(
            model_name="payment", old_name="gateway_reference", new_name="charge_reference"
        ),
        migrations.AddField(
            model_name="payment",
            name="payment_token",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AddField(
            model_name="payment",
            name="charge_key",
            field=models.UUIDField(null=True),
        ),
        migrations.AddField(
            model_name="payment",
            name="refund_key",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.RunPython(payments_get_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="payment",
            name="charge_key",
            field=models.UUIDField(default=uuid.uuid4, unique=True),
        ),
        migrations.AlterField(
            model_name="payment",
            name="refund_key",
            field=models.UUIDField(blank=True, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="payment",
            name="refund_requested",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="payment",
            name="tries",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="payment",
            name="due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="payment",
            name="status",
            field=models.CharField(
                choices=[
                    ("PENDING", "Charge asked for"),
                    ("CAPTURED", "Captured"),
                    ("FAILED", "Failed"),
                    ("REFUNDING", "Refund asked for"),
                    ("REFUNDED", "Refunded"),
                    ("REFUND_FAILED", "Refund refused"),
                ],
                max_length=20,
            ),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("due_at__isnull", False)),
                fields=["due_at"],
                name="payments_payment_due_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "status__in",
                        ["PENDING", "CAPTURED", "FAILED", "REFUNDING", "REFUNDED", "REFUND_FAILED"],
                    )
                ),
                name="payments_payment_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("status__in", ["PENDING", "FAILED"]),
                    models.Q(("charge_reference", ""), _negated=True),
                    _connector="OR",
                ),
                name="payments_payment_captured_has_reference",
            ),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("refund_key__isnull", False),
                        ("status__in", ["REFUNDING", "REFUNDED", "REFUND_FAILED"]),
                    ),
                    models.Q(
                        models.Q(
                            ("status__in", ["REFUNDING", "REFUNDED", "REFUND_FAILED"]),
                            _negated=True,
                        ),
                        ("refund_key__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="payments_payment_refund_key_iff_refund",
            ),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("due_at__isnull", False), ("status__in", ["PENDING", "REFUNDING"])),
                    models.Q(
                        models.Q(("status__in", ["PENDING", "REFUNDING"]), _negated=True),
                        ("due_at__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="payments_payment_due_iff_open",
            ),
        ),
        migrations.CreateModel(
            name="SimulatedProviderOperation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("idempotency_key", models.CharField(max_length=100, unique=True)),
                (
                    "kind",
                    models.CharField(
                        choices=[("charge", "Charge"), ("refund", "Refund")], max_length=10
                    ),
                ),
                ("token", models.CharField(blank=True, default="", max_length=100)),
                ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
                ("currency", models.CharField(blank=True, default="", max_length=3)),
                (
                    "charge_reference",
                    models.CharField(blank=True, db_index=True, default="", max_length=100),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("not_done", "Not done"),
                            ("succeeded", "Succeeded"),
                            ("refused", "Refused"),
                        ],
                        default="not_done",
                        max_length=10,
                    ),
                ),
                (
                    "reference",
                    models.CharField(blank=True, db_index=True, default="", max_length=100),
                ),
                ("failure_reason", models.CharField(blank=True, default="", max_length=500)),
                ("calls", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "simulated provider operation",
                "ordering": ["-created_at", "-id"],
            },
        ),
    ]
