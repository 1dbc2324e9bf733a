from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench.outbox_app"
    label = "outbox_bench"  # the label its migration and table were made under
    verbose_name = "Outbox benchmark"
