import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from orders import services
from orders.models import CatalogueItem, IdempotencyKey, Order, OrderLine, TimelineEntry
from orders.tests.factories import order_events, place, seed_product
from outbox.testing import deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def order():
    seed_product("SKU-1", name="Widget", price="10.00")
    order = place(7, [("SKU-1", 2)], idempotency_key="k-1")
    deliver(
        "orders-timeline",
        "orders.OrderCreated",
        {"order_id": order.pk, "customer_id": 7},
        aggregate_type="order",
        aggregate_id=order.pk,
    )
    return order


@pytest.mark.parametrize("model", [Order, OrderLine, CatalogueItem, TimelineEntry, IdempotencyKey])
def test_every_model_has_a_read_only_changelist(admin_client, order, model):
    url = f"/admin/orders/{model._meta.model_name}/"

    response = admin_client.get(url)
    searched = admin_client.get(url, {"q": "7"})

    assert response.status_code == 200
    assert searched.status_code == 200
    assert admin_client.get(f"{url}add/").status_code == 403


def test_order_search_by_id_and_customer(admin_client, order):
    other = place(8, [("SKU-1", 1)])

    by_customer = admin_client.get("/admin/orders/order/", {"q": "8"})
    by_text = admin_client.get("/admin/orders/order/", {"q": "widget"})

    assert list(by_customer.context["cl"].queryset) == [other]
    assert list(by_text.context["cl"].queryset) == []


def test_the_order_page_shows_lines_and_the_timeline_read_only(admin_client, order):
    response = admin_client.get(f"/admin/orders/order/{order.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "orders.OrderCreated" in content
    assert "SKU-1" in content
    assert 'name="_save"' not in content


def confirmed(customer_id: int = 7) -> Order:
    order = place(customer_id, [("SKU-1", 1)])
    services.order_record_stock_result(order_id=order.pk, reserved=True)
    services.order_record_payment_result(order_id=order.pk, captured=True)
    return order


def test_cancel_action_goes_through_the_service(admin_client, order):
    paid = confirmed()
    shipped = confirmed()
    services.order_mark_shipped(order_id=shipped.pk)

    response = admin_client.post(
        "/admin/orders/order/",
        {"action": "cancel_selected_orders", "_selected_action": [order.pk, paid.pk, shipped.pk]},
        follow=True,
    )

    assert response.status_code == 200
    order.refresh_from_db()
    paid.refresh_from_db()
    shipped.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("CANCELLED", services.STAFF_CANCEL_REASON)
    assert order_events(order.pk)[-1][0] == "orders.OrderCancelled"
    assert paid.status == Order.Status.CANCELLING
    assert order_events(paid.pk)[-1][0] == "orders.OrderCancellationRequested"
    assert shipped.status == Order.Status.SHIPPED
    messages = [str(message) for message in response.context["messages"]]
    assert messages == [
        "Cancelled 1 order(s).",
        "Asked shipping to cancel the shipment of 1 confirmed order(s): they are CANCELLING "
        "until it answers.",
        f"Not cancelled: #{shipped.pk}: cannot request cancel: the order is SHIPPED",
    ]


def test_the_order_page_draws_the_saga(admin_client, order):
    response = admin_client.get(f"/admin/orders/order/{order.pk}/change/")

    content = response.content.decode()
    assert response.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in content
    assert "reserve stock" in content and "charge payment" in content


def test_each_timeline_entry_links_to_its_events_lifecycle(admin_client, order):
    # given the order's timeline entry for its own OrderCreated
    entry = TimelineEntry.objects.get(order_id=order.pk, event_type="orders.OrderCreated")

    # when
    content = admin_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    # then the entry links to the event's lifecycle page, and its data is shown as fields
    link = (
        f'<a href="/admin/outbox/outboxevent/lifecycle/{entry.event_id}/">orders.OrderCreated</a>'
    )
    assert link in content
    assert f"order_id: {order.pk}, customer_id: 7" in content
    assert "payment_reference" in content and "tok_visa" not in content
