"""Payment tokens by reference: what keeps them out of event payloads.

``payment_token_store`` runs in the caller's transaction (orders' placement),
so a reference exists exactly when the order that names it does.
``payment_token_resolve`` is what payments asks when it charges (once, when it
handles the order's ``OrderCreated``; the payment keeps the token from then on).
``payment_tokens_prune`` forgets references older than the retention, which
beat runs hourly.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from shop.db import Lookup, insert
from shop.models import PaymentTokenReference

_REFERENCE = Lookup(PaymentTokenReference, "pk", only=("token",))


def payment_token_store(*, token: str) -> str:
    """Keep ``token`` (in the caller's transaction); returns the reference an event may carry."""
    reference = PaymentTokenReference(token=token)
    insert(reference)  # one statement compiled once: it runs for every order placed
    return str(reference.reference)


def payment_token_resolve(*, reference: str) -> str | None:
    """The token behind ``reference``, or None when there is none (unknown or malformed)."""
    try:
        key = uuid.UUID(str(reference))
    except ValueError:
        return None
    found = _REFERENCE.get(key)
    return found.token if found is not None else None


def payment_tokens_prune(*, older_than: timedelta) -> int:
    """Delete references created more than ``older_than`` ago; returns how many.

    A reference serves the one charge of its order, minutes after it was made;
    an event replayed to payments after the retention finds none and its charge
    is refused (no token is no card), never made with another token.
    """
    deleted, _ = PaymentTokenReference.objects.filter(
        created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted
