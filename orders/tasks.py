"""Orders' housekeeping in ``celery worker``, run by beat (see ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

import logging

from celery import shared_task

from orders import services

logger = logging.getLogger(__name__)


@shared_task(name="orders.tasks.prune_idempotency_keys")
def prune_idempotency_keys() -> int:
    """Delete idempotency keys older than ``IDEMPOTENCY_KEY_RETENTION_HOURS``."""
    deleted = services.idempotency_keys_prune()
    if deleted:
        logger.info("pruned %s expired idempotency key(s)", deleted)
    return deleted


@shared_task(name="orders.tasks.expire_overdue")
def expire_overdue() -> int:
    """Resolve the orders past their deadline (see ``orders.services.order_expire``)."""
    return services.order_expire_overdue()
