"""Every change to shipments: one function per use case, each publishing its events."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from django.utils import timezone

import outbox
from shipping.events import (
    OrderShipped,
    ShipmentCancellationRefused,
    ShipmentCancelled,
    ShipmentCreated,
)
from shipping.models import Shipment
from shop import failpoints
from shop.db import Lookup, insert_unless_exists
from shop.errors import Conflict, NotFound

logger = logging.getLogger(__name__)

_SHIPMENT_OF_ORDER_FOR_UPDATE = Lookup(Shipment, "order_id", lock="update")
_SHIPMENT_FOR_UPDATE = Lookup(Shipment, "pk", lock="update")

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
    shipment = Shipment(
        order_id=order_id,
        customer_id=customer_id,
        lines=[{"sku": str(line["sku"]), "quantity": int(line["quantity"])} for line in lines],
    )
    with outbox.atomic():
        if not insert_unless_exists(shipment):  # one statement: the order has one already
            shipment = Shipment.objects.get(order_id=order_id)
            logger.info("order %s has shipment %s already: nothing to do", order_id, shipment.pk)
            return shipment
        outbox.publish(
            ShipmentCreated(shipment_id=shipment.pk, order_id=order_id, customer_id=customer_id)
        )
        return shipment


def shipment_cancel_on_request(
    *, order_id: int, customer_id: int, deadline_at: datetime | str
) -> Shipment:
    """Answer an order's cancel request under the shipment's row lock.

    This lock is where a cancel and a dispatch of one order meet: whichever
    takes it first decides. A PENDING shipment is cancelled (ShipmentCancelled)
    unless the request has passed ``deadline_at``; a dispatched one, or an
    expired request, gets ShipmentCancellationRefused ("dispatched", "expired")
    and nothing changes. A cancelled shipment is left alone (a repeated request).
    An order without a shipment (its OrderConfirmed has not been applied) gets a
    cancelled one, so a late OrderConfirmed cannot open it again.
    """
    deadline = datetime.fromisoformat(deadline_at) if isinstance(deadline_at, str) else deadline_at
    with outbox.atomic():
        failpoints.reach("shipping.cancel_request.before_lock", key=order_id)
        shipment = _SHIPMENT_OF_ORDER_FOR_UPDATE.get(order_id)
        failpoints.reach("shipping.cancel_request.locked", key=order_id)
        if shipment is None:
            shipment = Shipment.objects.create(
                order_id=order_id, customer_id=customer_id, status=Shipment.Status.CANCELLED
            )
            outbox.publish(ShipmentCancelled(shipment_id=shipment.pk, order_id=order_id))
            return shipment
        if shipment.status == Shipment.Status.CANCELLED:
            logger.info("shipment %s is cancelled already", shipment.pk)
            return shipment
        if shipment.status == Shipment.Status.DISPATCHED or timezone.now() > deadline:
            reason: Literal["dispatched", "expired"] = (
                "dispatched" if shipment.status == Shipment.Status.DISPATCHED else "expired"
            )
            logger.info("cancel of order %s refused: %s", order_id, reason)
            outbox.publish(
                ShipmentCancellationRefused(
                    shipment_id=shipment.pk,
                    order_id=order_id,
                    customer_id=shipment.customer_id,
                    reason=reason,
                    tracking_number=shipment.tracking_number,
                )
            )
            return shipment
        shipment.status = Shipment.Status.CANCELLED
        shipment.save(update_fields=["status", "updated_at"])
        outbox.publish(ShipmentCancelled(shipment_id=shipment.pk, order_id=order_id))
        return shipment


def shipment_dispatch(*, shipment_id: int) -> Shipment:
    """Dispatch a PENDING shipment with a new tracking number; publish OrderShipped.

    Takes the shipment's row lock, as answering a cancel request does: a
    shipment whose order's cancel was taken first is CANCELLED, and refused.
    Raises ``NotFound`` for an unknown shipment and ``Conflict`` for one that is
    cancelled or dispatched already (nothing changes then).
    """
    with outbox.atomic():
        shipment = _SHIPMENT_FOR_UPDATE.get(shipment_id)
        if shipment is None:
            raise NotFound(f"Shipment {shipment_id} does not exist.")
        failpoints.reach("shipping.dispatch.locked", key=shipment.order_id)
        if shipment.status != Shipment.Status.PENDING:
            raise Conflict(
                f"Shipment {shipment_id} is {shipment.get_status_display().lower()} "
                "and cannot be dispatched"
                + (": its order was cancelled." if shipment.status == "CANCELLED" else ".")
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
