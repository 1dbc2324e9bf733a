"""The saga end to end: through the REST API, with real Celery workers relaying, consuming and
calling the payment provider."""

import threading
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from conftest import wait_for
from outbox.models import InboxEntry, OutboxEvent
from outbox.replay import ReplayFilter, replay, select
from outbox.testing import drain
from shop.services import auth_token_issue
from shop.tests.sagas import settle, start_worker

pytestmark = pytest.mark.django_db(transaction=True)

BUSINESS_APPS = ["orders", "inventory", "payments", "shipping", "notifications"]


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {auth_token_issue(user=user).token}")
    return client


@pytest.fixture
def staff():
    user = get_user_model().objects.create_user("staff", password="staff-pass-123", is_staff=True)
    return _client(user)


def _sign_up(name: str) -> APIClient:
    response = APIClient().post(
        "/api/customers/",
        {"username": name, "email": f"{name}@example.com", "password": "a-long-pass-phrase-42"},
        format="json",
    )
    assert response.status_code == 201, response.content
    token = APIClient().post(
        "/api/auth/token/", {"username": name, "password": "a-long-pass-phrase-42"}, format="json"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    return client


def _product(staff: APIClient, sku: str, price: str, stock: int) -> None:
    response = staff.post(
        "/api/products/",
        {"sku": sku, "name": f"Product {sku}", "price": price, "stock": stock},
        format="json",
    )
    assert response.status_code == 201, response.content
    # orders prices new orders from its own replica of the catalogue, fed by events
    changed = OutboxEvent.objects.get(event_type="inventory.ProductChanged", aggregate_id=sku)
    wait_for(
        lambda: InboxEntry.objects.filter(group="orders", event_id=changed.event_id).exists(),
        message=f"orders to learn of {sku}",
    )


def _order(client: APIClient, lines, token: str | None = None) -> dict:
    body = {"lines": lines}
    if token:
        body["payment_token"] = token
    response = client.post("/api/orders/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _settled(client: APIClient, order_id: int, status: str) -> dict:
    def check():
        order = client.get(f"/api/orders/{order_id}/").json()
        return order if order["status"] == status else None

    return wait_for(check, timeout=60, message=f"order {order_id} to be {status}")


def _available(sku: str) -> int:
    return APIClient().get(f"/api/products/{sku}/").json()["available"]


def test_happy_path_confirms_ships_and_records_everything(celery_worker, staff, settings):
    start_worker(celery_worker, settings)
    _product(staff, "KB-1", "89.00", 5)
    alice = _sign_up("alice")

    # when
    order = _order(alice, [{"sku": "KB-1", "quantity": 2}])
    assert order["status"] == "PENDING"
    assert order["total"] == "178.00"
    confirmed = _settled(alice, order["id"], "CONFIRMED")

    # then stock is held, the payment captured, a shipment waits
    assert _available("KB-1") == 3
    payments = alice.get("/api/payments/", {"order": order["id"]}).json()["results"]
    assert [(p["status"], p["amount"]) for p in payments] == [("CAPTURED", "178.00")]
    shipment = wait_for(
        lambda: alice.get("/api/shipments/", {"order": order["id"]}).json()["results"]
    )[0]
    assert shipment["status"] == "PENDING"

    # when staff dispatch it
    dispatched = staff.post(f"/api/shipments/{shipment['id']}/dispatch/")
    assert dispatched.status_code == 200, dispatched.content
    _settled(alice, order["id"], "SHIPPED")
    # the timeline is its own consumer group: it may trail the order's status, and its
    # partitions one another (the order's events and the shipment's travel apart)
    shipped = wait_for(
        lambda: (
            (o := alice.get(f"/api/orders/{order['id']}/").json())
            and [e["type"] for e in o["timeline"]].count("notifications.CustomerNotified") == 3
            and len(o["timeline"]) == 9
            and o
        ),
        message="the timeline to record the order's six steps and the three notifications",
    )

    # then stock left the warehouse, and the customer was told at each step
    product = wait_for(
        lambda: (p := staff.get("/api/products/KB-1/").json())["on_hand"] == 3 and p,
        message="stock to be fulfilled",
    )
    assert (product["on_hand"], product["reserved"], product["available"]) == (3, 0, 3)
    kinds = wait_for(
        lambda: (
            (k := sorted(n["kind"] for n in alice.get("/api/notifications/").json()["results"]))
            and len(k) == 4
            and k
        )
    )
    assert kinds == ["order_confirmed", "order_created", "order_shipped", "welcome"]
    timeline = shipped["timeline"]
    types = [e["type"] for e in timeline if e["type"] != "notifications.CustomerNotified"]
    assert types[0] == "orders.OrderCreated"
    assert set(types[1:3]) == {"inventory.StockReserved", "payments.PaymentProcessed"}
    assert types[3:] == [
        "orders.OrderConfirmed",
        "shipping.ShipmentCreated",
        "shipping.OrderShipped",
    ]
    told = [e["data"]["kind"] for e in timeline if e["type"] == "notifications.CustomerNotified"]
    # told in the order's own order; the shipment is another aggregate, in another
    # partition, which nothing orders against the order's events (it may be told first)
    assert sorted(told) == ["order_confirmed", "order_created", "order_shipped"]
    assert told.index("order_created") < told.index("order_confirmed")
    assert confirmed["cancel_reason"] in ("", None)
    # the saga drawn for staff: every forward step done, no compensation needed
    saga = staff.get(f"/api/orders/{order['id']}/saga/").json()
    assert {step["name"]: step["state"] for step in saga["steps"]} == {
        "reserve stock": "done",
        "charge payment": "done",
        "confirm": "done",
        "ship": "done",
        "notify customer": "done",
        "release stock": "not needed",
        "refund payment": "not needed",
    }


def test_out_of_stock_and_declined_payment_cancel_and_compensate(celery_worker, staff, settings):
    start_worker(celery_worker, settings)
    _product(staff, "MN-1", "249.00", 1)
    bob = _sign_up("bob")

    # out of stock: nothing reserved, the parallel capture refunded
    too_many = _order(bob, [{"sku": "MN-1", "quantity": 2}])
    cancelled = _settled(bob, too_many["id"], "CANCELLED")
    assert cancelled["cancel_reason"]
    assert _available("MN-1") == 1
    wait_for(
        lambda: (
            [
                p["status"]
                for p in bob.get("/api/payments/", {"order": too_many["id"]}).json()["results"]
            ]
            == ["REFUNDED"]
        ),
        message="the capture to be refunded",
    )

    # declined: the reservation is released, stock back where it was
    declined = _order(bob, [{"sku": "MN-1", "quantity": 1}], token="tok_chargeDeclined")
    _settled(bob, declined["id"], "CANCELLED")
    wait_for(lambda: _available("MN-1") == 1, message="the reservation to be released")
    payments = bob.get("/api/payments/", {"order": declined["id"]}).json()["results"]
    assert [p["status"] for p in payments] == ["FAILED"]
    assert bob.get("/api/shipments/", {"order": declined["id"]}).json()["results"] == []


def test_cancel_of_paid_order_refunds_and_releases_but_shipped_is_409(
    celery_worker, staff, settings
):
    start_worker(celery_worker, settings)
    _product(staff, "MS-1", "29.50", 10)
    carol = _sign_up("carol")

    paid = _order(carol, [{"sku": "MS-1", "quantity": 3}])
    _settled(carol, paid["id"], "CONFIRMED")
    wait_for(
        lambda: carol.get("/api/shipments/", {"order": paid["id"]}).json()["results"],
        message="the shipment",
    )
    assert _available("MS-1") == 7
    response = carol.post(f"/api/orders/{paid['id']}/cancel/")
    # shipping is asked first: accepted, then cancelled once the shipment is
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "CANCELLING"
    _settled(carol, paid["id"], "CANCELLED")
    shipments = carol.get("/api/shipments/", {"order": paid["id"]}).json()["results"]
    assert [s["status"] for s in shipments] == ["CANCELLED"]
    wait_for(lambda: _available("MS-1") == 10, message="the reservation to be released")
    wait_for(
        lambda: (
            [
                p["status"]
                for p in carol.get("/api/payments/", {"order": paid["id"]}).json()["results"]
            ]
            == ["REFUNDED"]
        ),
        message="the refund",
    )

    shipped = _order(carol, [{"sku": "MS-1", "quantity": 1}])
    _settled(carol, shipped["id"], "CONFIRMED")
    shipment = wait_for(
        lambda: carol.get("/api/shipments/", {"order": shipped["id"]}).json()["results"]
    )[0]
    assert staff.post(f"/api/shipments/{shipment['id']}/dispatch/").status_code == 200
    _settled(carol, shipped["id"], "SHIPPED")
    events_before = OutboxEvent.objects.count()
    response = carol.post(f"/api/orders/{shipped['id']}/cancel/")
    assert response.status_code == 409
    assert carol.get(f"/api/orders/{shipped['id']}/").json()["status"] == "SHIPPED"
    assert OutboxEvent.objects.count() == events_before


def test_forty_concurrent_orders_for_ten_in_stock_confirm_exactly_ten(
    celery_worker, staff, settings
):
    start_worker(celery_worker, settings)
    _product(staff, "HOT-1", "10.00", 10)
    customers = [_sign_up(f"buyer{i}") for i in range(4)]
    ids: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def buy(client: APIClient) -> None:
        try:
            for _ in range(10):
                response = client.post(
                    "/api/orders/", {"lines": [{"sku": "HOT-1", "quantity": 1}]}, format="json"
                )
                with lock:
                    if response.status_code == 201:
                        ids.append(response.json()["id"])
                    else:
                        errors.append(f"{response.status_code} {response.content!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(ids) == 40

    order_model = apps.get_model("orders", "Order")
    wait_for(
        lambda: not order_model.objects.filter(pk__in=ids, status="PENDING").exists(),
        timeout=120,
        message="every order to settle",
    )
    statuses = list(order_model.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses.count("CONFIRMED") == 10
    assert statuses.count("CANCELLED") == 30
    product = staff.get("/api/products/HOT-1/").json()
    assert (product["on_hand"], product["reserved"], product["available"]) == (10, 10, 0)


def _business_state() -> dict[str, list[tuple]]:
    """Every row of every business table, without the columns that only record when."""
    state = {}
    for label in BUSINESS_APPS:
        for model in apps.get_app_config(label).get_models():
            names = [
                f.attname for f in model._meta.concrete_fields if f.name not in ("updated_at",)
            ]
            state[model._meta.label] = sorted(model.objects.values_list(*names), key=repr)
    return state


def test_delivering_every_event_of_a_saga_twice_changes_nothing(staff, settings):
    # given: full sagas (confirmed and shipped, out of stock, declined, customer-cancelled),
    # in-process: the relay, the consumers and the payment tasks run here (settle)
    settings.PAYMENTS_DISPATCH_ON_COMMIT = False
    response = staff.post(
        "/api/products/",
        {"sku": "DUP-1", "name": "Dup", "price": "5.00", "stock": 3},
        format="json",
    )
    assert response.status_code == 201
    drain()
    dave = _sign_up("dave")
    drain()
    good = _order(dave, [{"sku": "DUP-1", "quantity": 1}])
    _order(dave, [{"sku": "DUP-1", "quantity": 9}])
    _order(dave, [{"sku": "DUP-1", "quantity": 1}], token="tok_chargeDeclined")
    cancelled = _order(dave, [{"sku": "DUP-1", "quantity": 1}])
    settle()
    assert dave.post(f"/api/orders/{cancelled['id']}/cancel/").status_code == 202
    shipment = dave.get("/api/shipments/", {"order": good["id"]}).json()["results"][0]
    assert staff.post(f"/api/shipments/{shipment['id']}/dispatch/").status_code == 200
    settle()
    assert dave.get(f"/api/orders/{cancelled['id']}/").json()["status"] == "CANCELLED"
    before = _business_state()
    events_before = OutboxEvent.objects.count()
    assert dave.get(f"/api/orders/{good['id']}/").json()["status"] == "SHIPPED"

    # when every event is delivered again, with the inboxes forgotten so handlers really run
    InboxEntry.objects.all().delete()
    assert replay(select(ReplayFilter())) == events_before
    settle()

    # then nothing changed, and no handler published anything new
    assert _business_state() == before
    assert OutboxEvent.objects.count() == events_before
    assert Decimal(dave.get(f"/api/orders/{good['id']}/").json()["total"]) == Decimal("5.00")
