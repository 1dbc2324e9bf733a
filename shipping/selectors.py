"""Reads of shipments, scoped to what the asking user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from shipping.models import Shipment
from shop.errors import NotFound
from shop.viewers import Viewer


def shipment_list(*, viewer: Viewer, order_id: int | None = None) -> QuerySet[Shipment]:
    """A customer's own shipments, or every shipment for staff; optionally one order's."""
    qs = Shipment.objects.all()
    if viewer.customer_id is not None:
        qs = qs.filter(customer_id=viewer.customer_id)
    if order_id is not None:
        qs = qs.filter(order_id=order_id)
    return qs.order_by("-created_at", "-id")


def shipment_get(*, viewer: Viewer, shipment_id: int) -> Shipment:
    """One shipment the user may see; ``NotFound`` otherwise, so others' ids are not revealed."""
    shipment = shipment_list(viewer=viewer).filter(pk=shipment_id).first()
    if shipment is None:
        raise NotFound(f"Shipment {shipment_id} does not exist.")
    return shipment
