"""What the saga's end-to-end tests share: a worker set up for them, data, and the invariants.

The invariants are the saga's promises, checked on the real tables: an order
ends shipped (charged, its stock gone from ``on_hand``, its shipment
dispatched) or cancelled (nothing charged or all refunded, its stock released,
its shipment cancelled), never a mix; the money the provider holds is the total
of the shipped and confirmed orders; stock on hand is what was seeded less
what was dispatched.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Sum

from conftest import wait_for
from inventory import handlers as inventory_handlers
from inventory import services as inventory
from inventory.models import Product, Reservation
from notifications import handlers as notifications_handlers
from orders import handlers as orders_handlers
from orders import services as orders
from orders.models import CatalogueItem, Order
from outbox.models import InboxEntry, OutboxEvent
from outbox.testing import drain
from payments import handlers as payments_handlers
from payments import services as payments
from payments.models import Payment
from payments.models import SimulatedProviderOperation as Operation
from shipping import handlers as shipping_handlers
from shipping.models import Shipment

# Worker settings for these tests: quick polls and retries, hold points on.
WORKER_ENV = {
    "OUTBOX_POLL_INTERVAL_S": "0.5",
    "PAYMENTS_POLL_INTERVAL_S": "0.5",
    "PAYMENTS_RESEND_AFTER_S": "2",
    "PAYMENTS_RETRY_BACKOFF_S": "0.2",
    "PAYMENTS_RETRY_BACKOFF_MAX_S": "1",
    "ORDERS_DEADLINE_POLL_INTERVAL_S": "0.5",
    "FAILPOINTS_ENABLED": "true",
}

FINAL = {Order.Status.SHIPPED, Order.Status.CANCELLED}
RESTING = FINAL | {Order.Status.CONFIRMED}


def start_worker(celery_worker, settings, name: str = "w1", **env: str):
    """A real Celery worker with beat, set up for the saga tests (and hold points here too)."""
    settings.FAILPOINTS_ENABLED = True
    return celery_worker(name, **(WORKER_ENV | env))


def user(name: str, *, staff: bool = False):
    return get_user_model().objects.create_user(
        name, f"{name}@example.com", f"{name}-pass-phrase-1", is_staff=staff
    )


def seed_product(sku: str, *, stock: int, price: str = "10.00", wait: bool = True) -> None:
    """A product in inventory; waits (with a worker) until orders' catalogue has it."""
    inventory.product_create(sku=sku, name=f"Product {sku}", price=Decimal(price), stock=stock)
    if wait:
        wait_for(
            lambda: CatalogueItem.objects.filter(sku=sku).exists(),
            message=f"orders to learn of {sku}",
        )


def place(customer_id: int, lines: Iterable[tuple[str, int]], token: str = "tok_visa") -> Order:
    return orders.order_place(
        customer_id=customer_id,
        lines=[orders.LineIn(sku=sku, quantity=quantity) for sku, quantity in lines],
        payment_token=token,
    ).order


def statuses(order_ids: Iterable[int]) -> Counter:
    return Counter(Order.objects.filter(pk__in=list(order_ids)).values_list("status", flat=True))


def wait_until_confirmed_with_shipments(order_ids: list[int], *, timeout: float = 120.0) -> None:
    wait_for(
        lambda: (
            statuses(order_ids)[Order.Status.CONFIRMED] == len(order_ids)
            and Shipment.objects.filter(order_id__in=order_ids).count() == len(order_ids)
        ),
        timeout=timeout,
        message=f"{len(order_ids)} orders to be confirmed with a shipment each",
    )


def run_together(*funcs: Callable[[], object]) -> list[object]:
    """Start every function at the same moment in its own thread; return results or errors."""
    barrier = threading.Barrier(len(funcs))
    results: list[object] = [None] * len(funcs)

    def run(index: int, func: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = func()
        except Exception as exc:  # reported to the test, which asserts on it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(funcs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# --- in-process: the outbox and the payment tasks run here ---------------------------------


def run_open_payments() -> int:
    """Run every open charge or refund once, as the Celery task would (outside transactions)."""
    ran = 0
    for pk, status, tries in Payment.objects.filter(status__in=payments.OPEN).values_list(
        "pk", "status", "tries"
    ):
        payments.payment_attempt_run(payment_id=pk, status=status, tries=tries)
        ran += 1
    return ran


def settle(max_rounds: int = 30) -> None:
    """Relay, consume and run the payment tasks in-process until nothing moves."""
    for _ in range(max_rounds):
        moved = drain()
        moved += run_open_payments()
        if not moved:
            return
    raise AssertionError("the saga did not settle")


# --- settling with a worker, and the invariants ----------------------------------------------


GROUPS = [
    orders_handlers.consumer,
    orders_handlers.timeline,
    inventory_handlers.consumer,
    payments_handlers.consumer,
    shipping_handlers.consumer,
    notifications_handlers.consumer,
]


def all_applied() -> bool:
    """Every event in the log has been applied by every group that handles its type."""
    if OutboxEvent.objects.filter(published_at__isnull=True).exists():
        return False
    for group in GROUPS:
        types = list(group.handlers)
        logged = OutboxEvent.objects.filter(event_type__in=types).count()
        applied = InboxEntry.objects.filter(group=group.name, event_type__in=types).count()
        if applied < logged:
            return False
    return True


def quiet(order_ids: list[int], *, allowed: set[str] = RESTING) -> bool:
    """Nothing is left to happen: no order waits, no payment call is open, no event unapplied."""
    found = dict(Order.objects.filter(pk__in=order_ids).values_list("pk", "status"))
    if len(found) != len(order_ids) or not set(found.values()) <= allowed:
        return False
    if Payment.objects.filter(status__in=payments.OPEN).exists():
        return False
    return all_applied()


def settle_with_worker(order_ids: list[int], *, timeout: float = 180.0, allowed=RESTING) -> None:
    wait_for(
        lambda: quiet(order_ids, allowed=allowed),
        timeout=timeout,
        interval=0.2,
        message=f"{len(order_ids)} orders to settle: {dict(statuses(order_ids))}",
    )


def outcome(order: Order) -> tuple[str, str | None, str | None, str | None]:
    """(order, shipment, payment, reservation) statuses of one order."""
    shipment = Shipment.objects.filter(order_id=order.pk).values_list("status", flat=True).first()
    payment = Payment.objects.filter(order_id=order.pk).values_list("status", flat=True).first()
    reservation = (
        Reservation.objects.filter(order_id=order.pk).values_list("status", flat=True).first()
    )
    return order.status, shipment, payment, reservation


# What each end state allows of the other apps' records of the order.
CONSISTENT = {
    Order.Status.SHIPPED: {("DISPATCHED", "CAPTURED", "FULFILLED")},
    Order.Status.CONFIRMED: {("PENDING", "CAPTURED", "HELD")},
    Order.Status.CANCELLED: {
        # cancelled after confirmation: the shipment cancelled first, then everything given back
        ("CANCELLED", "REFUNDED", "RELEASED"),
        # cancelled while PENDING: never a shipment; whatever was taken given back, or never taken
        (None, "REFUNDED", "RELEASED"),
        (None, "REFUNDED", "FAILED"),
        (None, "FAILED", "RELEASED"),
        (None, "FAILED", "FAILED"),
    },
}


def assert_consistent(order_ids: Iterable[int]) -> Counter:
    """Every order's records agree with its end state; returns how many ended in each."""
    mixed = {}
    ends: Counter = Counter()
    for order in Order.objects.filter(pk__in=list(order_ids)):
        status, *rest = outcome(order)
        ends[status] += 1
        if tuple(rest) not in CONSISTENT.get(status, set()):
            mixed[order.pk] = (status, *rest)
    assert mixed == {}, f"orders whose records disagree (order, shipment, payment, stock): {mixed}"
    return ends


def shipped_quantities() -> Counter:
    """Units of each sku in dispatched shipments."""
    sent: Counter = Counter()
    for lines in Shipment.objects.filter(status=Shipment.Status.DISPATCHED).values_list(
        "lines", flat=True
    ):
        for line in lines:
            sent[line["sku"]] += line["quantity"]
    return sent


def assert_money_and_stock(seeded: dict[str, int]) -> None:
    """The provider's ledger and the stock agree with how the orders ended."""
    charged = Operation.objects.filter(kind="charge", status="succeeded")
    assert charged.values("idempotency_key").distinct().count() == charged.count()
    captured = charged.aggregate(s=Sum("amount"))["s"] or Decimal("0")
    refunded = Operation.objects.filter(kind="refund", status="succeeded").aggregate(
        s=Sum("amount")
    )["s"] or Decimal("0")
    kept = Order.objects.filter(
        status__in=[Order.Status.SHIPPED, Order.Status.CONFIRMED]
    ).aggregate(s=Sum("total"))["s"] or Decimal("0")
    assert captured - refunded == kept, (captured, refunded, kept)
    # a charge is refunded at most once
    refunds = Counter(
        Operation.objects.filter(kind="refund", status="succeeded").values_list(
            "charge_reference", flat=True
        )
    )
    assert all(n == 1 for n in refunds.values()), refunds

    sent = shipped_quantities()
    held: Counter = Counter()
    for order in Order.objects.filter(status=Order.Status.CONFIRMED).prefetch_related("lines"):
        for line in order.lines.all():
            held[line.sku] += line.quantity
    stock = {
        sku: (on_hand, reserved)
        for sku, on_hand, reserved in Product.objects.values_list("sku", "on_hand", "reserved")
    }
    assert stock == {sku: (qty - sent[sku], held[sku]) for sku, qty in seeded.items()}
