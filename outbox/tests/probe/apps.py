from django.apps import AppConfig


class ProbeConfig(AppConfig):
    name = "outbox.tests.probe"
    label = "probe"
