"""Payment tokens by reference: what keeps them out of event payloads.

``payment_token_store`` runs in the caller's transaction (orders' placement),
so a reference exists exactly when the order that names it does.
``payment_token_resolve`` is what payments asks when it charges.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from shop.models import PaymentTokenReference


def payment_token_store(*, token: str) -> str:
    """Keep ``token``; returns the reference an event may carry instead of it."""
    with transaction.atomic():
        return str(PaymentTokenReference.objects.create(token=token).reference)


def payment_token_resolve(*, reference: str) -> str | None:
    """The token behind ``reference``, or None when there is none (unknown or malformed)."""
    try:
        key = uuid.UUID(str(reference))
    except ValueError:
        return None
    return (
        PaymentTokenReference.objects.filter(reference=key).values_list("token", flat=True).first()
    )
