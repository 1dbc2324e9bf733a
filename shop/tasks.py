"""The shop's own housekeeping on beat."""

from __future__ import annotations

import logging
from datetime import timedelta
from importlib import import_module

from celery import shared_task
from django.conf import settings
from django.utils import timezone
from knox.models import AuthToken

from shop import vault

logger = logging.getLogger(__name__)


@shared_task(name="shop.tasks.auth_tokens_prune")
def auth_tokens_prune() -> int:
    """Delete API tokens past their expiry; returns how many."""
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    if deleted:
        logger.info("pruned %s expired API token(s)", deleted)
    return deleted


@shared_task(name="shop.tasks.payment_tokens_prune")
def payment_tokens_prune() -> int:
    """Forget payment token references older than ``PAYMENT_TOKEN_RETENTION_DAYS``."""
    deleted = vault.payment_tokens_prune(
        older_than=timedelta(days=settings.PAYMENT_TOKEN_RETENTION_DAYS)
    )
    if deleted:
        logger.info("pruned %s payment token reference(s)", deleted)
    return deleted


@shared_task(name="shop.tasks.sessions_prune")
def sessions_prune() -> None:
    """Delete expired browser sessions (the admin's, the browsable API's), as ``clearsessions``."""
    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()
