from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Outbox and event log"

    def ready(self) -> None:
        # Every app's event types, then every app's handlers: the registries are
        # complete before anything is published or consumed.
        autodiscover_modules("events")
        autodiscover_modules("handlers")
