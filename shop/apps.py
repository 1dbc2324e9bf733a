from django.apps import AppConfig
from django.db.backends.signals import connection_created


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        from shop.db import watch_for_stale_plans

        connection_created.connect(watch_for_stale_plans, dispatch_uid="shop.db.stale_plans")
