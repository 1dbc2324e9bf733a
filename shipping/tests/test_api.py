import pytest
from rest_framework.test import APIClient

from shipping import services
from shipping.models import Shipment
from shipping.tests.helpers import LINES, request_cancel, shipment_events
from shop.tests.clients import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipments(customer, other_customer):
    mine = services.shipment_create_for_order(order_id=1, customer_id=customer.pk, lines=LINES)
    mine_too = services.shipment_create_for_order(order_id=2, customer_id=customer.pk, lines=LINES)
    theirs = services.shipment_create_for_order(
        order_id=3, customer_id=other_customer.pk, lines=LINES
    )
    return mine, mine_too, theirs


def test_a_customer_lists_only_their_own_shipments(customer, shipments):
    mine, mine_too, _ = shipments

    response = client_for(customer).get("/api/shipments/")

    assert response.status_code == 200
    assert response.data["count"] == 2
    assert response.data["next"] is None
    assert [row["id"] for row in response.data["results"]] == [mine_too.pk, mine.pk]
    row = response.data["results"][1]
    assert set(row) == {"id", "order", "status", "tracking_number", "created_at", "dispatched_at"}
    assert row["order"] == 1
    assert row["status"] == "PENDING"
    assert row["tracking_number"] == ""
    assert row["dispatched_at"] is None


def test_the_list_filters_by_order(customer, shipments):
    response = client_for(customer).get("/api/shipments/?order=2")

    assert response.status_code == 200
    assert [row["order"] for row in response.data["results"]] == [2]


def test_filtering_by_another_customers_order_finds_nothing(customer, shipments):
    response = client_for(customer).get("/api/shipments/?order=3")

    assert response.status_code == 200
    assert response.data["count"] == 0


def test_a_non_integer_order_filter_is_a_400(customer, shipments):
    response = client_for(customer).get("/api/shipments/?order=abc")

    assert response.status_code == 400
    assert "order" in response.data


def test_staff_list_every_shipment(staff, shipments):
    response = client_for(staff).get("/api/shipments/")

    assert response.status_code == 200
    assert response.data["count"] == 3


def test_anonymous_cannot_list(shipments):
    assert APIClient().get("/api/shipments/").status_code == 401


def test_a_customer_sees_their_shipment(customer, shipments):
    mine, _, _ = shipments

    response = client_for(customer).get(f"/api/shipments/{mine.pk}/")

    assert response.status_code == 200
    assert response.data["id"] == mine.pk
    assert response.data["order"] == 1


def test_another_customers_shipment_is_a_404(customer, shipments):
    _, _, theirs = shipments

    response = client_for(customer).get(f"/api/shipments/{theirs.pk}/")

    assert response.status_code == 404


def test_staff_dispatch_a_shipment(staff, shipments):
    mine, _, _ = shipments

    response = client_for(staff).post(f"/api/shipments/{mine.pk}/dispatch/")

    assert response.status_code == 200
    mine.refresh_from_db()
    assert response.data["status"] == "DISPATCHED"
    assert response.data["tracking_number"] == mine.tracking_number
    assert mine.status == Shipment.Status.DISPATCHED
    assert shipment_events(mine)[-1][0] == "shipping.OrderShipped"


def test_a_customer_cannot_dispatch(customer, shipments):
    mine, _, _ = shipments

    response = client_for(customer).post(f"/api/shipments/{mine.pk}/dispatch/")

    assert response.status_code == 403
    mine.refresh_from_db()
    assert mine.status == Shipment.Status.PENDING
    assert [name for name, _ in shipment_events(mine)] == ["shipping.ShipmentCreated"]


def test_anonymous_cannot_dispatch(shipments):
    mine, _, _ = shipments

    response = APIClient().post(f"/api/shipments/{mine.pk}/dispatch/")

    assert response.status_code == 401
    mine.refresh_from_db()
    assert mine.status == Shipment.Status.PENDING


def test_dispatching_twice_is_a_409(staff, shipments):
    mine, _, _ = shipments
    client = client_for(staff)
    first = client.post(f"/api/shipments/{mine.pk}/dispatch/")

    second = client.post(f"/api/shipments/{mine.pk}/dispatch/")

    assert second.status_code == 409
    assert second.data["code"] == "conflict"
    mine.refresh_from_db()
    assert mine.tracking_number == first.data["tracking_number"]


def test_dispatching_a_cancelled_shipment_is_a_409(staff, shipments):
    mine, _, _ = shipments
    request_cancel(1)

    response = client_for(staff).post(f"/api/shipments/{mine.pk}/dispatch/")

    assert response.status_code == 409
    mine.refresh_from_db()
    assert mine.status == Shipment.Status.CANCELLED


def test_dispatching_an_unknown_shipment_is_a_404(staff):
    assert client_for(staff).post("/api/shipments/999999/dispatch/").status_code == 404
