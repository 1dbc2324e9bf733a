"""Every change to shipments: one function per use case, each publishing its events."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

import outbox
from shipping.events import OrderShipped, ShipmentCancelled, ShipmentCreated
from shipping.models import Shipment
from shop.errors import Conflict, NotFound

logger = logging.getLogger(__name__)

TRACKING_PREFIX = "TRK"
TRACKING_ATTEMPTS = 5


def tracking_number_generate() -> str:
    """A fresh tracking number: "TRK" and ten upper-case hex digits."""
    return TRACKING_PREFIX + secrets.token_hex(5).upper()


def shipment_create_for_order(
    *, order_id: int, customer_id: int, lines: Iterable[Mapping[str, Any]]
) -> Shipment:
    """Open a PENDING shipment for a confirmed order and publish ShipmentCreated.

    Idempotent per order: when the order has a shipment already, that one is
    returned unchanged and nothing is published. Only ``sku`` and ``quantity``
    of each line are kept.
    """
    with transaction.atomic():
        shipment, created = Shipment.objects.get_or_create(
            order_id=order_id,
            defaults={
                "customer_id": customer_id,
                "lines": [
                    {"sku": str(line["sku"]), "quantity": int(line["quantity"])} for line in lines
                ],
            },
        )
        if not created:
            logger.info("order %s has shipment %s already: nothing to do", order_id, shipment.pk)
            return shipment
        outbox.publish(
            ShipmentCreated(shipment_id=shipment.pk, order_id=order_id, customer_id=customer_id)
        )
        return shipment


def shipment_cancel_for_order(*, order_id: int) -> Shipment | None:
    """Cancel the order's PENDING shipment and publish ShipmentCancelled.

    Does nothing (and logs why) when the order has no shipment, when it is
    cancelled already, or when it has been dispatched: goods on their way are
    not recalled here. Returns the shipment, if any.
    """
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().filter(order_id=order_id).first()
        if shipment is None:
            logger.info("order %s was cancelled before it had a shipment: nothing to do", order_id)
            return None
        if shipment.status == Shipment.Status.CANCELLED:
            logger.info("shipment %s is cancelled already", shipment.pk)
            return shipment
        if shipment.status == Shipment.Status.DISPATCHED:
            logger.warning(
                "order %s was cancelled but its shipment %s was dispatched already (%s): "
                "left as it is",
                order_id,
                shipment.pk,
                shipment.tracking_number,
            )
            return shipment
        shipment.status = Shipment.Status.CANCELLED
        shipment.save(update_fields=["status", "updated_at"])
        outbox.publish(ShipmentCancelled(shipment_id=shipment.pk, order_id=order_id))
        return shipment


def shipment_dispatch(*, shipment_id: int) -> Shipment:
    """Dispatch a PENDING shipment with a new tracking number; publish OrderShipped.

    Raises ``NotFound`` for an unknown shipment and ``Conflict`` for one that is
    cancelled or dispatched already (nothing changes then).
    """
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().filter(pk=shipment_id).first()
        if shipment is None:
            raise NotFound(f"Shipment {shipment_id} does not exist.")
        if shipment.status != Shipment.Status.PENDING:
            raise Conflict(
                f"Shipment {shipment_id} is {shipment.get_status_display().lower()} "
                "and cannot be dispatched."
            )
        # 16**10 numbers make a clash unlikely; the unique constraint makes it impossible.
        for _ in range(TRACKING_ATTEMPTS):
            tracking_number = tracking_number_generate()
            if not Shipment.objects.filter(tracking_number=tracking_number).exists():
                break
        else:
            raise RuntimeError(f"no free tracking number in {TRACKING_ATTEMPTS} attempts")
        shipment.status = Shipment.Status.DISPATCHED
        shipment.tracking_number = tracking_number
        shipment.dispatched_at = timezone.now()
        shipment.save(update_fields=["status", "tracking_number", "dispatched_at", "updated_at"])
        outbox.publish(
            OrderShipped(
                shipment_id=shipment.pk,
                order_id=shipment.order_id,
                customer_id=shipment.customer_id,
                tracking_number=tracking_number,
            )
        )
        return shipment
