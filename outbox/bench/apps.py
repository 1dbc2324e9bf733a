from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "outbox.bench"
    label = "outbox_bench"
    verbose_name = "Outbox benchmark"
