"""The shop's own housekeeping on beat."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone
from knox.models import AuthToken

logger = logging.getLogger(__name__)


@shared_task(name="shop.tasks.auth_tokens_prune")
def auth_tokens_prune() -> int:
    """Delete API tokens past their expiry; returns how many."""
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    if deleted:
        logger.info("pruned %s expired API token(s)", deleted)
    return deleted
