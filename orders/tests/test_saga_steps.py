"""The saga's steps as the timeline tells them, and their picture."""

import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta

from django.utils import timezone

from orders.models import Order, TimelineEntry
from orders.saga import render_svg, saga_steps

T0 = timezone.now()


def entry(event_type: str, at: float, **data) -> TimelineEntry:
    return TimelineEntry(
        order_id=1,
        event_id=uuid.uuid4(),
        event_type=event_type,
        occurred_at=T0 + timedelta(seconds=at),
        sequence=0,
        data=data,
    )


def states(order: Order, entries) -> dict[str, tuple]:
    return {s.name: (s.state, s.duration_s) for s in saga_steps(order, entries)}


def test_a_pending_order_waits_for_what_has_not_answered():
    order = Order(pk=1, status=Order.Status.PENDING, total=10)

    got = states(order, [entry("orders.OrderCreated", 0), entry("inventory.StockReserved", 0.25)])

    assert got["reserve stock"] == ("done", 0.25)
    assert got["charge payment"] == ("waiting", None)
    assert got["confirm"] == ("skipped", None)
    assert got["release stock"] == ("not needed", None)


def test_a_timed_out_order_gives_back_what_it_got_and_waits_for_what_may_land_late():
    order = Order(pk=1, status=Order.Status.CANCELLED, total=10)
    entries = [
        entry("orders.OrderCreated", 0),
        entry("inventory.StockReserved", 0.1),
        entry("orders.OrderCancelled", 120, reason="No answer in time from payment."),
        entry("inventory.StockReleased", 120.5),
    ]

    steps = {s.name: s for s in saga_steps(order, entries)}

    assert (steps["release stock"].state, steps["release stock"].duration_s) == ("done", 0.5)
    assert steps["charge payment"].state == "skipped"
    assert steps["refund payment"].state == "not needed"


def test_a_cancel_that_shipping_refused_shows_as_a_failed_compensation():
    order = Order(pk=1, status=Order.Status.SHIPPED, total=10)
    entries = [
        entry("orders.OrderCreated", 0),
        entry("inventory.StockReserved", 0.1),
        entry("payments.PaymentProcessed", 0.2),
        entry("orders.OrderConfirmed", 0.3),
        entry("shipping.ShipmentCreated", 0.4),
        entry("orders.OrderCancellationRequested", 5),
        entry("shipping.OrderShipped", 5.1),
        entry("shipping.ShipmentCancellationRefused", 5.3, reason="dispatched"),
    ]

    got = states(order, entries)

    assert got["ship"] == ("done", 4.7)
    assert got["cancel shipment"] == ("failed", 0.3)
    assert got["refund payment"] == ("not needed", None)


def test_the_picture_is_well_formed_svg_with_its_text_escaped():
    order = Order(pk=1, status=Order.Status.CANCELLED, total=10)
    entries = [
        entry("orders.OrderCreated", 0),
        entry("inventory.StockReservationFailed", 0.1, reason="<script>alert(1)</script>"),
        entry("orders.OrderCancelled", 0.2),
    ]

    svg = render_svg(order, saga_steps(order, entries), now=T0 + timedelta(seconds=1))

    root = ET.fromstring(svg)  # raises if it is not well-formed
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "<script>" not in svg and "&lt;script&gt;" in svg
