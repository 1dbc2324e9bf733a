from rest_framework.test import APIClient

from outbox.models import OutboxEvent
from shipping.models import Shipment

LINES = [{"sku": "KB-001", "quantity": 2}, {"sku": "MS-002", "quantity": 1}]


def shipment_events(shipment: Shipment) -> list[tuple[str, dict]]:
    """The events published for one shipment, oldest first."""
    rows = OutboxEvent.objects.filter(aggregate_type="shipment", aggregate_id=str(shipment.pk))
    return [(row.event_type, row.payload) for row in rows.order_by("id")]


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client
