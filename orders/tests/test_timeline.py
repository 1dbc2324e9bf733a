import io
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone

from orders import services
from orders.handlers import TIMELINE_EVENT_TYPES, TIMELINE_EVENTS, timeline
from orders.models import Order, TimelineEntry
from orders.tests.factories import place, seed_product
from outbox.layout import slot_for
from outbox.message import Message
from outbox.models import OutboxEvent
from outbox.testing import deliver, drain

pytestmark = pytest.mark.django_db

GROUPS = ["orders", "orders-timeline"]


@pytest.fixture(autouse=True)
def catalogue():
    seed_product("SKU-1", name="Widget", price="10.00")


def foreign_payloads(order_id: int, customer_id: int = 7) -> dict[str, tuple[str, int, dict]]:
    """Another app's events about one order: (aggregate_type, aggregate_id, payload)."""
    shipment_id = 500 + order_id
    lines = [{"sku": "SKU-1", "quantity": 2}]
    return {
        "inventory.StockReserved": (
            "reservation",
            order_id,
            {"order_id": order_id, "lines": lines},
        ),
        "inventory.StockReservationFailed": (
            "reservation",
            order_id,
            {
                "order_id": order_id,
                "reason": "insufficient stock",
                "unavailable": [{"sku": "SKU-1", "requested": 2, "available": 0}],
            },
        ),
        "inventory.StockReleased": (
            "reservation",
            order_id,
            {"order_id": order_id, "lines": lines},
        ),
        "payments.PaymentProcessed": (
            "payment",
            order_id,
            {"order_id": order_id, "payment_id": 1, "amount": "20.00", "currency": "EUR"},
        ),
        "payments.PaymentFailed": (
            "payment",
            order_id,
            {"order_id": order_id, "amount": "20.00", "reason": "card declined"},
        ),
        "payments.PaymentRefunded": (
            "payment",
            order_id,
            {"order_id": order_id, "payment_id": 1, "amount": "20.00"},
        ),
        "shipping.ShipmentCreated": (
            "shipment",
            shipment_id,
            {"shipment_id": shipment_id, "order_id": order_id, "customer_id": customer_id},
        ),
        "shipping.OrderShipped": (
            "shipment",
            shipment_id,
            {
                "shipment_id": shipment_id,
                "order_id": order_id,
                "customer_id": customer_id,
                "tracking_number": "TRACK-1",
            },
        ),
        "shipping.ShipmentCancelled": (
            "shipment",
            shipment_id,
            {"shipment_id": shipment_id, "order_id": order_id},
        ),
        "shipping.ShipmentCancellationRefused": (
            "shipment",
            shipment_id,
            {
                "shipment_id": shipment_id,
                "order_id": order_id,
                "customer_id": customer_id,
                "reason": "dispatched",
                "tracking_number": "TRACK-1",
            },
        ),
        "notifications.CustomerNotified": (
            "notification",
            order_id,
            {
                "order_id": order_id,
                "notification_id": 3,
                "customer_id": customer_id,
                "kind": "order_created",
            },
        ),
    }


def log_foreign_event(event_type: str, order_id: int) -> OutboxEvent:
    """Append another app's event to the log, as its service would have (we may not import it)."""
    aggregate_type, aggregate_id, payload = foreign_payloads(order_id)[event_type]
    last = (
        OutboxEvent.objects.filter(aggregate_type=aggregate_type, aggregate_id=str(aggregate_id))
        .order_by("-aggregate_version")
        .values_list("aggregate_version", flat=True)
        .first()
    )
    return OutboxEvent.objects.create(
        event_type=event_type,
        version=1,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        aggregate_version=(last or 0) + 1,
        slot=slot_for(aggregate_type, str(aggregate_id)),
        payload=payload,
        occurred_at=timezone.now(),
    )


def timeline_rows(order_id: int | None = None) -> list[dict]:
    entries = TimelineEntry.objects.order_by("sequence", "id")
    if order_id is not None:
        entries = entries.filter(order_id=order_id)
    return list(
        entries.values("order_id", "event_id", "event_type", "occurred_at", "sequence", "data")
    )


def test_the_timeline_group_handles_every_event_that_concerns_an_order():
    assert (
        set(timeline.handlers)
        == set(TIMELINE_EVENT_TYPES)
        == {
            "orders.OrderCreated",
            "orders.OrderConfirmed",
            "orders.OrderCancelled",
            "orders.OrderCancellationRequested",
            "orders.OrderCancellationRefused",
            "inventory.StockReserved",
            "inventory.StockReservationFailed",
            "inventory.StockReleased",
            "payments.PaymentProcessed",
            "payments.PaymentFailed",
            "payments.PaymentRefunded",
            "shipping.ShipmentCreated",
            "shipping.OrderShipped",
            "shipping.ShipmentCancelled",
            "shipping.ShipmentCancellationRefused",
            "notifications.CustomerNotified",
        }
    )


def test_each_timeline_handler_projects_its_event_once():
    # given
    order_id = 4242
    own = {
        "orders.OrderCreated": {"order_id": order_id, "customer_id": 7},
        "orders.OrderConfirmed": {"order_id": order_id, "customer_id": 7},
        "orders.OrderCancelled": {"order_id": order_id, "customer_id": 7},
        "orders.OrderCancellationRequested": {"order_id": order_id, "customer_id": 7},
        "orders.OrderCancellationRefused": {"order_id": order_id, "customer_id": 7},
    }
    payloads = {
        **{event_type: ("order", order_id, payload) for event_type, payload in own.items()},
        **foreign_payloads(order_id),
    }
    assert set(payloads) == set(TIMELINE_EVENT_TYPES)
    event_ids = {event_type: uuid.uuid4() for event_type in payloads}

    # when
    for event_type, (aggregate_type, aggregate_id, payload) in payloads.items():
        for _ in range(2):  # a redelivery of the same event
            deliver(
                "orders-timeline",
                event_type,
                payload,
                aggregate_type=aggregate_type,
                aggregate_id=aggregate_id,
                event_id=event_ids[event_type],
                version=TIMELINE_EVENTS[event_type],
            )

    # then
    entries = TimelineEntry.objects.filter(order_id=order_id).order_by("id")
    assert [(e.event_type, e.event_id, e.data) for e in entries] == [
        (event_type, event_ids[event_type], payload)
        for event_type, (_, _, payload) in payloads.items()
    ]


def test_timeline_apply_ignores_an_event_it_already_has():
    message = Message(
        event_id=uuid.uuid4(),
        type="payments.PaymentFailed",
        version=1,
        aggregate_type="payment",
        aggregate_id="5",
        aggregate_version=1,
        sequence=77,
        occurred_at=timezone.now(),
        payload={"order_id": 5, "amount": "1.00", "reason": "card declined"},
    )

    assert services.timeline_apply(message=message) is True
    assert services.timeline_apply(message=message) is False

    entry = TimelineEntry.objects.get(event_id=message.event_id)
    assert (entry.order_id, entry.event_type, entry.sequence, entry.occurred_at, entry.data) == (
        5,
        "payments.PaymentFailed",
        77,
        message.occurred_at,
        message.payload,
    )


def test_order_created_reaches_the_timeline_through_the_outbox():
    # given
    order = place(7, [("SKU-1", 2)])
    row = OutboxEvent.objects.get(aggregate_type="order", aggregate_id=str(order.pk))

    # when
    drain(groups=["orders-timeline"])

    # then
    assert timeline_rows(order.pk) == [
        {
            "order_id": order.pk,
            "event_id": row.event_id,
            "event_type": "orders.OrderCreated",
            "occurred_at": row.occurred_at,
            "sequence": row.pk,
            "data": row.payload,
        }
    ]


def test_the_live_saga_builds_the_timeline_in_commit_order():
    # given
    order = place(7, [("SKU-1", 2)])
    drain(groups=GROUPS)

    # when: inventory and payments answer, orders confirms, shipping ships
    log_foreign_event("inventory.StockReserved", order.pk)
    log_foreign_event("payments.PaymentProcessed", order.pk)
    drain(groups=GROUPS)
    log_foreign_event("shipping.ShipmentCreated", order.pk)
    log_foreign_event("shipping.OrderShipped", order.pk)
    drain(groups=GROUPS)

    # then
    order.refresh_from_db()
    assert order.status == Order.Status.SHIPPED
    assert [row["event_type"] for row in timeline_rows(order.pk)] == [
        "orders.OrderCreated",
        "inventory.StockReserved",
        "payments.PaymentProcessed",
        "orders.OrderConfirmed",
        "shipping.ShipmentCreated",
        "shipping.OrderShipped",
    ]
    sequences = [row["sequence"] for row in timeline_rows(order.pk)]
    assert sequences == sorted(sequences)


def build_two_live_timelines() -> tuple[Order, Order]:
    shipped = place(7, [("SKU-1", 2)])
    failed = place(8, [("SKU-1", 1)], idempotency_key="k")
    drain(groups=GROUPS)
    log_foreign_event("inventory.StockReserved", shipped.pk)
    log_foreign_event("payments.PaymentProcessed", shipped.pk)
    log_foreign_event("inventory.StockReserved", failed.pk)
    log_foreign_event("payments.PaymentFailed", failed.pk)
    drain(groups=GROUPS)
    log_foreign_event("inventory.StockReleased", failed.pk)
    log_foreign_event("shipping.ShipmentCreated", shipped.pk)
    log_foreign_event("shipping.OrderShipped", shipped.pk)
    drain(groups=GROUPS)
    return shipped, failed


def test_timeline_rebuild_reproduces_the_live_timeline():
    # given
    shipped, failed = build_two_live_timelines()
    live = timeline_rows()
    assert len(timeline_rows(shipped.pk)) == 6
    assert [row["event_type"] for row in timeline_rows(failed.pk)] == [
        "orders.OrderCreated",
        "inventory.StockReserved",
        "payments.PaymentFailed",
        "orders.OrderCancelled",
        "inventory.StockReleased",
    ]
    TimelineEntry.objects.filter(order_id=shipped.pk).first().delete()  # damage it
    TimelineEntry.objects.filter(order_id=failed.pk).update(data={})

    # when
    out = io.StringIO()
    call_command("timeline_rebuild", stdout=out)

    # then
    assert timeline_rows() == live
    assert out.getvalue().strip() == f"Rebuilt the timeline: {len(live)} entries."


def test_timeline_rebuild_of_one_order_leaves_the_others_alone():
    # given
    shipped, failed = build_two_live_timelines()
    live_shipped, live_failed = timeline_rows(shipped.pk), timeline_rows(failed.pk)
    TimelineEntry.objects.filter(order_id=shipped.pk).delete()
    # An entry the log does not hold shows the other timeline is not rebuilt.
    TimelineEntry.objects.create(
        order_id=failed.pk,
        event_id=uuid.uuid4(),
        event_type="orders.OrderCreated",
        occurred_at=timezone.now(),
        sequence=10**9,
        data={},
    )

    # when
    out = io.StringIO()
    call_command("timeline_rebuild", "--order", str(shipped.pk), stdout=out)

    # then
    assert timeline_rows(shipped.pk) == live_shipped
    assert len(timeline_rows(failed.pk)) == len(live_failed) + 1
    assert out.getvalue().strip() == f"Rebuilt the timeline for order {shipped.pk}: 6 entries."
