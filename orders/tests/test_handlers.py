import logging
import uuid
from decimal import Decimal

import pytest

from orders.handlers import consumer
from orders.models import CatalogueItem, Order
from orders.tests.factories import (
    order_events,
    order_shipped,
    payment_failed,
    payment_processed,
    place,
    seed_product,
    stock_failed,
    stock_reserved,
)
from outbox.testing import deliver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalogue():
    seed_product("SKU-1", name="Widget", price="10.00")


def snapshot(order: Order) -> tuple[dict, list]:
    return Order.objects.values().get(pk=order.pk), order_events(order.pk)


def test_the_orders_group_handles_the_saga_replies_and_the_catalogue():
    assert set(consumer.handlers) == {
        "inventory.StockReserved",
        "inventory.StockReservationFailed",
        "payments.PaymentProcessed",
        "payments.PaymentFailed",
        "shipping.OrderShipped",
        "shipping.ShipmentCancelled",
        "shipping.ShipmentCancellationRefused",
        "inventory.ProductChanged",
    }


def test_product_changed_feeds_the_catalogue_replica():
    # when
    seed_product("SKU-7", name="Seven", price="7.70")
    seed_product("SKU-7", name="Seven (renamed)", price="7.00")

    # then
    item = CatalogueItem.objects.get(sku="SKU-7")
    assert (item.name, item.price) == ("Seven (renamed)", Decimal("7.00"))


def test_the_happy_saga_confirms_then_ships():
    order = place()

    stock_reserved(order)
    payment_processed(order)
    order.refresh_from_db()
    assert order.status == Order.Status.CONFIRMED

    order_shipped(order)
    order.refresh_from_db()
    assert order.status == Order.Status.SHIPPED
    assert [event for event, _ in order_events(order.pk)] == [
        "orders.OrderCreated",
        "orders.OrderConfirmed",
    ]


def test_payment_first_then_stock_also_confirms():
    order = place()

    payment_processed(order)
    stock_reserved(order)

    order.refresh_from_db()
    assert order.status == Order.Status.CONFIRMED


def test_stock_reservation_failed_cancels_with_the_shortage_as_reason():
    order = place()

    stock_failed(order)

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert order.cancel_reason_code == "out_of_stock"
    assert order.cancel_reason == "Out of stock: SKU-1 (requested 2, available 1)."
    assert order_events(order.pk)[-1][1]["reason_code"] == "out_of_stock"


def test_payment_failed_cancels_with_the_providers_reason():
    order = place()

    payment_failed(order)

    order.refresh_from_db()
    assert (order.status, order.cancel_reason_code) == ("CANCELLED", "payment_failed")
    assert order.cancel_reason == "Payment failed: card declined."


def test_a_reply_after_cancellation_is_ignored_with_a_log_line(caplog):
    # given: stock failed first, then the payment is captured anyway
    order = place()
    stock_failed(order)
    before = snapshot(order)

    # when
    with caplog.at_level(logging.INFO, logger="orders.handlers"):
        applied = payment_processed(order)

    # then
    assert applied is True  # handled (and acknowledged), not retried
    assert snapshot(order) == before
    assert "ignored payments.PaymentProcessed" in caplog.text
    assert f"for order {order.pk}" in caplog.text


def test_order_shipped_for_a_pending_order_is_ignored():
    order = place()
    before = snapshot(order)

    order_shipped(order)

    assert snapshot(order) == before


def test_an_event_for_an_unknown_order_raises_so_it_becomes_a_dead_letter():
    from shop.errors import NotFound

    with pytest.raises(NotFound):
        deliver(
            "orders",
            "inventory.StockReserved",
            {"order_id": 999_999, "lines": []},
            aggregate_type="reservation",
            aggregate_id=999_999,
        )


def test_the_same_event_id_is_applied_once():
    order = place()
    event_id = uuid.uuid4()

    assert stock_failed(order, event_id=event_id) is True
    assert stock_failed(order, event_id=event_id) is False


@pytest.mark.parametrize(
    "setup, deliver_event",
    [
        ([], stock_reserved),
        ([], payment_processed),
        ([stock_reserved], payment_processed),
        ([payment_processed], stock_reserved),
        ([], stock_failed),
        ([], payment_failed),
        ([stock_reserved, payment_processed], order_shipped),
    ],
    ids=[
        "stock-reserved",
        "payment-processed",
        "payment-processed-confirms",
        "stock-reserved-confirms",
        "stock-failed",
        "payment-failed",
        "order-shipped",
    ],
)
def test_each_event_delivered_twice_with_different_ids_changes_nothing_the_second_time(
    setup, deliver_event
):
    # given
    order = place()
    for step in setup:
        step(order)

    # when
    deliver_event(order)
    after_first = snapshot(order)
    deliver_event(order)

    # then
    assert snapshot(order) == after_first


def test_product_changed_twice_with_different_ids_changes_nothing_the_second_time():
    seed_product("SKU-8", name="Eight", price="8.00")
    first = CatalogueItem.objects.values().get(sku="SKU-8")

    seed_product("SKU-8", name="Eight", price="8.00")

    assert CatalogueItem.objects.values().get(sku="SKU-8") == first
