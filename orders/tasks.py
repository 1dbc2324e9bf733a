"""Orders' Celery tasks: the beat's look for orders that have waited past their deadline."""

from celery import shared_task

from orders import services


@shared_task(name="orders.tasks.expire_overdue")
def expire_overdue() -> int:
    """Resolve the orders past their deadline (see ``orders.services.order_expire``)."""
    return services.order_expire_overdue()
