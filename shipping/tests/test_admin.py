import pytest

from shipping import services
from shipping.models import Shipment
from shipping.tests.helpers import LINES, request_cancel

pytestmark = pytest.mark.django_db


def test_the_admin_action_dispatches_and_reports_per_shipment(admin_client):
    # given
    pending = services.shipment_create_for_order(order_id=1, customer_id=3, lines=LINES)
    cancelled = services.shipment_create_for_order(order_id=2, customer_id=3, lines=LINES)
    request_cancel(2)

    # when
    response = admin_client.post(
        "/admin/shipping/shipment/",
        {"action": "dispatch_selected", "_selected_action": [pending.pk, cancelled.pk]},
        follow=True,
    )

    # then
    assert response.status_code == 200
    pending.refresh_from_db()
    cancelled.refresh_from_db()
    assert pending.status == Shipment.Status.DISPATCHED
    assert cancelled.status == Shipment.Status.CANCELLED
    texts = [str(message) for message in response.context["messages"]]
    assert texts == [
        f"Shipment {pending.pk} (order 1) dispatched with tracking number "
        f"{pending.tracking_number}.",
        f"Shipment {cancelled.pk} is cancelled and cannot be dispatched: its order was cancelled.",
    ]


def test_the_admin_pages_render(admin_client):
    shipment = services.shipment_create_for_order(order_id=1, customer_id=3, lines=LINES)

    assert admin_client.get("/admin/shipping/shipment/").status_code == 200
    assert admin_client.get("/admin/shipping/shipment/?q=abc").status_code == 200
    assert admin_client.get(f"/admin/shipping/shipment/{shipment.pk}/change/").status_code == 200
