import threading
from decimal import Decimal

import pytest
from django.db import connection

from inventory import services
from inventory.models import Product, Reservation
from inventory.services import LineRequest
from outbox.models import OutboxEvent

THREADS = 40
STOCK = 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_oversell():
    # given a product with 10 units and 40 orders of 1 unit each, racing
    services.product_create(sku="HOT", name="Hot item", price=Decimal("5.00"), stock=STOCK)
    order_ids = list(range(1000, 1000 + THREADS))
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def reserve(order_id: int) -> None:
        try:
            barrier.wait(timeout=30)
            services.stock_reserve_for_order(order_id=order_id, lines=[LineRequest("HOT", 1)])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    # when
    threads = [threading.Thread(target=reserve, args=(order_id,)) for order_id in order_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then exactly the stock is held, and every other order failed cleanly
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    reservations = Reservation.objects.filter(order_id__in=order_ids)
    assert reservations.filter(status=Reservation.Status.HELD).count() == STOCK
    assert reservations.filter(status=Reservation.Status.FAILED).count() == THREADS - STOCK
    product = Product.objects.get(sku="HOT")
    assert (product.on_hand, product.reserved, product.available) == (STOCK, STOCK, 0)

    # and the published stock levels went up one by one, never past the stock
    stock_levels = [
        payload
        for payload in OutboxEvent.objects.filter(
            aggregate_type="product", aggregate_id="HOT", event_type="inventory.StockUpdated"
        )
        .order_by("aggregate_version")
        .values_list("payload", flat=True)
    ]
    assert [level["reserved"] for level in stock_levels] == list(range(STOCK + 1))
    assert all(level["available"] >= 0 for level in stock_levels)
    failures = OutboxEvent.objects.filter(
        aggregate_type="reservation",
        aggregate_id__in=[str(order_id) for order_id in order_ids],
        event_type="inventory.StockReservationFailed",
    )
    assert failures.count() == THREADS - STOCK
    assert all(
        payload["unavailable"] == [{"sku": "HOT", "requested": 1, "available": 0}]
        for payload in failures.values_list("payload", flat=True)
    )
