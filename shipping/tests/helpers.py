from datetime import timedelta

from django.utils import timezone

from outbox.models import OutboxEvent
from shipping import services
from shipping.models import Shipment

LINES = [{"sku": "KB-001", "quantity": 2}, {"sku": "MS-002", "quantity": 1}]


def shipment_events(shipment: Shipment) -> list[tuple[str, dict]]:
    """The events published for one shipment, oldest first."""
    rows = OutboxEvent.objects.filter(aggregate_type="shipment", aggregate_id=str(shipment.pk))
    return [(row.event_type, row.payload) for row in rows.order_by("id")]


def request_cancel(order_id: int, customer_id: int = 3, *, expired: bool = False) -> Shipment:
    """Answer an order's cancel request, as the handler of OrderCancellationRequested does."""
    deadline = timezone.now() + timedelta(minutes=-1 if expired else 2)
    return services.shipment_cancel_on_request(
        order_id=order_id, customer_id=customer_id, deadline_at=deadline.isoformat()
    )
