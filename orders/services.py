"""Every change to orders' tables, one function per use case.

Each service runs in one ``outbox.atomic()`` block (not durable: handlers call
services inside their own transaction, where the block makes no savepoint;
see ``outbox.transactions``) and publishes its events there.
Services that change an order lock its row first, so two writers (say the
stock and the payment reply arriving together) take turns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from django.conf import settings
from django.utils import timezone

import outbox
from orders import metrics
from orders.events import (
    CancelReasonCode,
    OrderCancellationRefused,
    OrderCancellationRequested,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderLinePayload,
)
from orders.models import CatalogueItem, IdempotencyKey, Order, OrderLine, TimelineEntry
from orders.states import Action, next_status
from shop import failpoints, vault
from shop.db import Lookup, insert, insert_new, insert_unless_exists, save_fields
from shop.errors import Conflict, DomainError, NotFound
from shop.money import money_parse, money_text, to_cents

CURRENCY = "EUR"
DEFAULT_PAYMENT_TOKEN = "tok_visa"  # noqa: S105 - a test token name of the provider, not a secret
MAX_LINES = 50
MAX_QUANTITY = 100
MAX_SKU_LENGTH = 64
MAX_PAYMENT_TOKEN_LENGTH = 100
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# The largest amount a DecimalField(max_digits=12, decimal_places=2) holds.
MAX_TOTAL = Decimal("9999999999.99")

CUSTOMER_CANCEL_REASON = "Cancelled at the customer's request."
STAFF_CANCEL_REASON = "Cancelled by staff."
LATE_SHIPMENT_CANCEL_REASON = "Cancelled on request: shipping cancelled the shipment."
ALREADY_SHIPPED_REASON = "The order had been dispatched already."
CANCEL_TIMEOUT_REASON = "Shipping did not answer the cancel in time; the order stands."


@dataclass(frozen=True)
class LineIn:
    """One requested line: which product and how many."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class PlacedOrder:
    """The result of ``order_place``: the order, and False when an idempotent replay found it."""

    order: Order
    created: bool


class _IdempotencyKeyTaken(Exception):
    """A concurrent request committed the same Idempotency-Key first."""


# --- placing an order ---------------------------------------------------------------


def order_place(
    *,
    customer_id: int,
    lines: Sequence[LineIn],
    payment_token: str = DEFAULT_PAYMENT_TOKEN,
    idempotency_key: str | None = None,
) -> PlacedOrder:
    """Place an order (PENDING), priced from the catalogue replica, and publish OrderCreated.

    Lines must be 1..50, each with a distinct sku and a quantity of 1..100; a sku
    appearing twice is rejected rather than merged, so the caller states exactly
    what it wants. With an ``idempotency_key``, the first request for that
    customer and key places the order and any later one with the same lines and
    token returns that same order (``created=False``) without placing another,
    also when both requests race. A key is kept for
    ``IDEMPOTENCY_KEY_RETENTION_HOURS``: once older, it is as if it had never
    been used, and the same request places a new order.

    Raises ``DomainError`` (field "lines", "payment_token" or "idempotency_key")
    for invalid input or a sku unknown to the catalogue, and ``Conflict`` when
    the key was used before with a different request. Nothing is written then.
    """
    wanted = _validated_lines(lines)
    _validate_payment_token(payment_token)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise DomainError(
            f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters", field="idempotency_key"
        )
    fingerprint = request_fingerprint(lines=wanted, payment_token=payment_token)
    try:
        with outbox.atomic():
            if idempotency_key is not None:
                earlier = _order_for_key(
                    customer_id, idempotency_key, fingerprint, forget_expired=True
                )
                if earlier is not None:
                    return PlacedOrder(order=earlier, created=False)
            order = _order_create(
                customer_id=customer_id, lines=wanted, payment_token=payment_token
            )
            if idempotency_key is not None:
                claim = IdempotencyKey(
                    customer_id=customer_id,
                    key=idempotency_key,
                    request_fingerprint=fingerprint,
                    order=order,
                )
                if not insert_unless_exists(claim):
                    # The unique index made us wait for a concurrent request with
                    # the same key, which committed: undo ours and answer with its order.
                    raise _IdempotencyKeyTaken
            return PlacedOrder(order=order, created=True)
    except _IdempotencyKeyTaken:
        earlier = _order_for_key(customer_id, str(idempotency_key), fingerprint)
        if earlier is None:  # pragma: no cover - the winner committed, so its row is visible
            raise Conflict("a concurrent request with this Idempotency-Key failed") from None
        return PlacedOrder(order=earlier, created=False)


def request_fingerprint(*, lines: Sequence[LineIn], payment_token: str) -> str:
    """A hash of the canonical request: lines sorted by sku (their order does not matter)."""
    canonical = {
        "lines": sorted([line.sku, line.quantity] for line in lines),
        "payment_token": payment_token,
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def _validated_lines(lines: Sequence[LineIn]) -> list[LineIn]:
    if not lines:
        raise DomainError("an order needs at least one line", field="lines")
    if len(lines) > MAX_LINES:
        raise DomainError(f"an order has at most {MAX_LINES} lines", field="lines")
    seen: set[str] = set()
    for line in lines:
        if not isinstance(line.sku, str) or not 1 <= len(line.sku) <= MAX_SKU_LENGTH:
            raise DomainError(f"sku must be 1 to {MAX_SKU_LENGTH} characters", field="lines")
        if (
            isinstance(line.quantity, bool)
            or not isinstance(line.quantity, int)
            or not 1 <= line.quantity <= MAX_QUANTITY
        ):
            raise DomainError(
                f"quantity of {line.sku} must be an integer from 1 to {MAX_QUANTITY}",
                field="lines",
            )
        if line.sku in seen:
            raise DomainError(f"sku {line.sku} appears more than once", field="lines")
        seen.add(line.sku)
    return list(lines)


def _validate_payment_token(payment_token: str) -> None:
    if (
        not isinstance(payment_token, str)
        or not 1 <= len(payment_token) <= MAX_PAYMENT_TOKEN_LENGTH
    ):
        raise DomainError(
            f"must be 1 to {MAX_PAYMENT_TOKEN_LENGTH} characters", field="payment_token"
        )


def _order_for_key(
    customer_id: int, key: str, fingerprint: str, *, forget_expired: bool = False
) -> Order | None:
    row = (
        IdempotencyKey.objects.filter(customer_id=customer_id, key=key)
        .select_related("order")
        .first()
    )
    if row is None:
        return None
    if forget_expired and row.created_at < idempotency_key_cutoff():
        # Expired: as if absent. Its row goes in the caller's transaction, so that the
        # new order's key can take its place under the unique (customer_id, key).
        IdempotencyKey.objects.filter(pk=row.pk).delete()
        return None
    if row.request_fingerprint != fingerprint:
        raise Conflict("this Idempotency-Key was already used with a different request")
    return row.order


_CATALOGUE = Lookup(CatalogueItem, "sku")
_LINES = Lookup(OrderLine, "order_id", order_by=["id"])


def _order_create(*, customer_id: int, lines: list[LineIn], payment_token: str) -> Order:
    catalogue = {item.sku: item for item in _CATALOGUE.any_of(line.sku for line in lines)}
    unknown = [line.sku for line in lines if line.sku not in catalogue]
    if unknown:
        raise DomainError(f"unknown sku: {', '.join(unknown)}", field="lines")
    total = to_cents(sum((catalogue[line.sku].price * line.quantity for line in lines), Decimal(0)))
    if total > MAX_TOTAL:
        raise DomainError("the order total is too large", field="lines")

    order = Order(
        customer_id=customer_id,
        status=Order.Status.PENDING,
        total=total,
        currency=CURRENCY,
        # Events carry the reference; payments resolves it when it charges.
        payment_reference=vault.payment_token_store(token=payment_token),
        deadline_at=_deadline(),
    )
    insert(order)
    created = [
        OrderLine(
            order=order,
            sku=line.sku,
            name=catalogue[line.sku].name,
            unit_price=catalogue[line.sku].price,
            quantity=line.quantity,
        )
        for line in lines
    ]
    insert(*created)
    _known_lines(order, created)
    outbox.publish(
        OrderCreated(
            order_id=order.pk,
            customer_id=order.customer_id,
            lines=_line_payloads(created),  # as inserted, in id order: no read back
            total=money_text(order.total),
            currency=order.currency,
            payment_reference=order.payment_reference,
        )
    )
    return order


def _known_lines(order: Order, lines: list[OrderLine]) -> None:
    """Let ``order.lines.all()`` answer with the lines just inserted, as a prefetch would.

    The API's response lists them: without this it reads back what it wrote.
    """
    known = order.lines.all()
    known._result_cache = lines
    known._prefetch_done = True  # type: ignore[attr-defined]
    order._prefetched_objects_cache = {"lines": known}  # type: ignore[attr-defined]


# --- idempotency keys ----------------------------------------------------------------


def idempotency_key_cutoff() -> datetime:
    """Keys created before this have expired (``IDEMPOTENCY_KEY_RETENTION_HOURS`` ago)."""
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_RETENTION_HOURS)


def idempotency_keys_prune() -> int:
    """Delete the idempotency keys older than the retention; returns how many went.

    Expired keys already count as absent when an order is placed; this reclaims
    their rows (beat runs it hourly). The orders they placed stay.
    """
    with outbox.atomic():
        deleted, _ = IdempotencyKey.objects.filter(created_at__lt=idempotency_key_cutoff()).delete()
    return deleted


# --- the saga's replies ----------------------------------------------------------------


def order_record_stock_result(*, order_id: int, reserved: bool, reason: str = "") -> Order:
    """Record inventory's answer for a PENDING order.

    Reserved: the order is confirmed (OrderConfirmed) if its payment is captured
    too, else it keeps waiting; a repeated success changes nothing. Not reserved:
    the order is cancelled with reason_code "out_of_stock" (OrderCancelled).

    Raises ``NotFound`` for an unknown order and ``Conflict`` when the order is
    no longer PENDING (nothing changes then).
    """
    with outbox.atomic():
        order = _order_lock(order_id)
        next_status(order.status, Action.RECORD_STOCK_RESULT)
        if not reserved:
            _order_cancel(
                order,
                reason=reason or "Out of stock.",
                reason_code=Order.CancelReasonCode.OUT_OF_STOCK,
            )
        elif not order.stock_reserved:
            order.stock_reserved = True
            _order_save_confirming_if_ready(order, ["stock_reserved"])
        return order


def order_record_payment_result(*, order_id: int, captured: bool, reason: str = "") -> Order:
    """Record payments' answer for a PENDING order.

    Captured: the order is confirmed (OrderConfirmed) if its stock is reserved
    too, else it keeps waiting; a repeated success changes nothing. Failed: the
    order is cancelled with reason_code "payment_failed" (OrderCancelled).

    Raises ``NotFound`` for an unknown order and ``Conflict`` when the order is
    no longer PENDING (nothing changes then).
    """
    with outbox.atomic():
        order = _order_lock(order_id)
        next_status(order.status, Action.RECORD_PAYMENT_RESULT)
        if not captured:
            _order_cancel(
                order,
                reason=reason or "Payment failed.",
                reason_code=Order.CancelReasonCode.PAYMENT_FAILED,
            )
        elif not order.payment_captured:
            order.payment_captured = True
            _order_save_confirming_if_ready(order, ["payment_captured"])
        return order


def _order_save_confirming_if_ready(order: Order, changed: list[str]) -> None:
    """Save the reply just recorded, and confirm the order if it was the last one (one UPDATE)."""
    ready = order.stock_reserved and order.payment_captured
    if ready:
        order.status = next_status(order.status, Action.CONFIRM)
        order.deadline_at = None
        changed = [*changed, "status", "deadline_at"]
    save_fields(order, [*changed, "updated_at"])
    if not ready:
        return
    metrics.saga_reached_on_commit(order)
    outbox.publish(
        OrderConfirmed(
            order_id=order.pk,
            customer_id=order.customer_id,
            lines=_line_payloads(_LINES.all(order.pk)),
            total=money_text(order.total),
        )
    )


# --- cancelling and shipping ------------------------------------------------------------


def order_cancel(
    *, order_id: int, customer_id: int | None = None, reason: str = CUSTOMER_CANCEL_REASON
) -> Order:
    """Cancel an order on request (reason_code "customer_request").

    A PENDING order is cancelled at once (OrderCancelled): it has no shipment
    yet, and inventory and payments give back what they hold for it. A
    CONFIRMED order becomes CANCELLING and shipping is asked first
    (OrderCancellationRequested): the order is cancelled only once its shipment
    is, and ships if the shipment was dispatched already. Asking again while
    CANCELLING changes nothing. ``customer_id`` restricts the call to that
    customer's orders; staff pass None.

    Raises ``NotFound`` for an unknown order or another customer's, and
    ``Conflict`` when the order is SHIPPED or CANCELLED (nothing changes then).
    """
    reason = reason or CUSTOMER_CANCEL_REASON
    with outbox.atomic():
        order = _order_lock(order_id, customer_id=customer_id)
        if order.status == Order.Status.PENDING:
            _order_cancel(order, reason=reason, reason_code=Order.CancelReasonCode.CUSTOMER_REQUEST)
            return order
        status = next_status(order.status, Action.REQUEST_CANCEL)
        if order.status == Order.Status.CANCELLING:
            return order  # asked already; shipping's answer is on its way
        order.status = status
        order.cancel_reason = reason
        order.cancel_reason_code = Order.CancelReasonCode.CUSTOMER_REQUEST
        order.deadline_at = _deadline()
        order.save(
            update_fields=[
                "status",
                "cancel_reason",
                "cancel_reason_code",
                "deadline_at",
                "updated_at",
            ]
        )
        outbox.publish(
            OrderCancellationRequested(
                order_id=order.pk,
                customer_id=order.customer_id,
                reason=reason,
                deadline_at=order.deadline_at.isoformat(),
            )
        )
        return order


def order_record_shipment_cancelled(*, order_id: int) -> Order:
    """Shipping cancelled the order's shipment: cancel the order (OrderCancelled).

    From CANCELLING with the reason that was asked for; from CONFIRMED (the
    request was taken just before its deadline, which the order had already
    given up on) with "customer_request" all the same. Inventory releases the
    stock and payments refunds the capture on the event.

    Raises ``NotFound`` for an unknown order and ``Conflict`` in any other
    state (nothing changes then).
    """
    with outbox.atomic():
        order = _order_lock(order_id)
        _order_cancel(
            order,
            reason=order.cancel_reason or LATE_SHIPMENT_CANCEL_REASON,
            reason_code=Order.CancelReasonCode.CUSTOMER_REQUEST,
            action=Action.RECORD_SHIPMENT_CANCELLED,
        )
        return order


def order_mark_shipped(*, order_id: int) -> Order:
    """Mark the order SHIPPED: shipping dispatched it.

    From CONFIRMED nothing is published. From CANCELLING the dispatch came
    first: the order ships, and OrderCancellationRefused (reason_code
    "already_shipped") tells the customer their cancel came too late.

    Raises ``NotFound`` for an unknown order and ``Conflict`` when it is
    neither CONFIRMED nor CANCELLING (nothing changes then).
    """
    with outbox.atomic():
        failpoints.reach("orders.mark_shipped", key=order_id)
        order = _order_lock(order_id)
        previous = order.status
        order.status = next_status(order.status, Action.SHIP)
        order.cancel_reason, order.cancel_reason_code = "", ""
        order.deadline_at = None
        order.save(
            update_fields=[
                "status",
                "cancel_reason",
                "cancel_reason_code",
                "deadline_at",
                "updated_at",
            ]
        )
        metrics.saga_reached_on_commit(order)
        if previous == Order.Status.CANCELLING:
            outbox.publish(
                OrderCancellationRefused(
                    order_id=order.pk,
                    customer_id=order.customer_id,
                    reason=ALREADY_SHIPPED_REASON,
                    reason_code="already_shipped",
                    status=order.status,
                )
            )
        return order


def order_record_cancellation_refused(*, order_id: int, reason: str) -> Order:
    """Shipping refused a requested cancel: ``reason`` "dispatched" or "expired".

    "dispatched": a CANCELLING order ships (as ``order_mark_shipped``).
    "expired": shipping took the request after its deadline and left the
    shipment as it was; a CANCELLING order goes back to CONFIRMED as at its
    deadline (``order_expire``). Raises ``Conflict`` when the order is no longer
    CANCELLING (it has moved on already: nothing changes) and ``DomainError``
    for another reason.
    """
    if reason not in ("dispatched", "expired"):
        raise DomainError(f"unknown refusal reason {reason!r}", field="reason")
    with outbox.atomic():
        order = _order_lock(order_id)
        if order.status != Order.Status.CANCELLING:
            raise Conflict(f"the order is {order.status}, not CANCELLING")
        if reason == "dispatched":
            return order_mark_shipped(order_id=order_id)
        _order_withdraw_cancellation(order)
        return order


# --- deadlines ---------------------------------------------------------------------------


def order_expire(*, order_id: int, now: datetime | None = None) -> Order | None:
    """Resolve an order whose deadline has passed; returns it, or None if it had not.

    PENDING: cancelled with reason_code "timeout" (OrderCancelled), naming the
    reply that did not come; inventory and payments then give back whatever
    they hold or get later. CANCELLING: shipping has not answered, and only
    shipping can say whether the goods left, so the request is withdrawn: the
    order goes back to CONFIRMED and OrderCancellationRefused (reason_code
    "timeout") says so. Shipping refuses the request if it gets it after its
    deadline, so the shipment stays shippable; and if shipping cancelled the
    shipment just before, the order is cancelled when that answer arrives.
    Either way the order ends as its shipment does: never shipped and refunded.

    Raises ``NotFound`` for an unknown order.
    """
    now = now or timezone.now()
    with outbox.atomic():
        order = _order_lock(order_id)
        if order.deadline_at is None or order.deadline_at > now:
            return None
        if order.status == Order.Status.PENDING:
            _order_cancel(
                order,
                reason=_timeout_reason(order),
                reason_code=Order.CancelReasonCode.TIMEOUT,
                action=Action.EXPIRE,
            )
        else:
            _order_withdraw_cancellation(order)
        return order


def order_expire_overdue(*, limit: int = 500) -> int:
    """Resolve up to ``limit`` orders past their deadline, each in its own transaction.

    Returns how many were resolved. Safe to run concurrently: each order is
    locked and its deadline looked at again before anything changes.
    """
    now = timezone.now()
    overdue = list(
        Order.objects.filter(deadline_at__lt=now)
        .order_by("deadline_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(order_expire(order_id=order_id, now=now) is not None for order_id in overdue)


def _timeout_reason(order: Order) -> str:
    missing = [
        name
        for name, done in (("stock", order.stock_reserved), ("payment", order.payment_captured))
        if not done
    ]
    return f"No answer in time from {' and '.join(missing)}."


def _order_withdraw_cancellation(order: Order) -> None:
    order.status = next_status(order.status, Action.EXPIRE)
    order.cancel_reason, order.cancel_reason_code = "", ""
    order.deadline_at = None
    order.save(
        update_fields=["status", "cancel_reason", "cancel_reason_code", "deadline_at", "updated_at"]
    )
    outbox.publish(
        OrderCancellationRefused(
            order_id=order.pk,
            customer_id=order.customer_id,
            reason=CANCEL_TIMEOUT_REASON,
            reason_code="timeout",
            status=order.status,
        )
    )


def _deadline() -> datetime:
    return timezone.now() + timedelta(seconds=settings.ORDERS_DEADLINE_S)


def _order_cancel(
    order: Order, *, reason: str, reason_code: str, action: Action = Action.CANCEL
) -> None:
    previous = order.status
    order.status = next_status(order.status, action)
    order.cancel_reason = reason
    order.cancel_reason_code = reason_code
    order.deadline_at = None
    order.save(
        update_fields=["status", "cancel_reason", "cancel_reason_code", "deadline_at", "updated_at"]
    )
    metrics.saga_reached_on_commit(order)
    outbox.publish(
        OrderCancelled(
            order_id=order.pk,
            customer_id=order.customer_id,
            reason=reason,
            # One of Order.CancelReasonCode's values; the event validates it.
            reason_code=cast(CancelReasonCode, str(reason_code)),
            previous_status=previous,
        )
    )


# FOR NO KEY UPDATE: the timeline's inserts (their foreign key takes KEY SHARE on the
# order) go on meanwhile.
_ORDER_FOR_UPDATE = Lookup(Order, "pk", lock="no key")
_CUSTOMERS_ORDER_FOR_UPDATE = Lookup(Order, "pk", "customer_id", lock="no key")


def _order_lock(order_id: int, *, customer_id: int | None = None) -> Order:
    if customer_id is None:
        order = _ORDER_FOR_UPDATE.get(order_id)
    else:
        order = _CUSTOMERS_ORDER_FOR_UPDATE.get(order_id, customer_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def _line_payloads(lines: Iterable[OrderLine]) -> list[OrderLinePayload]:
    return [
        OrderLinePayload(
            sku=line.sku,
            name=line.name,
            unit_price=money_text(line.unit_price),
            quantity=line.quantity,
        )
        for line in lines
    ]


# --- the catalogue replica --------------------------------------------------------------


def catalogue_upsert(*, sku: str, name: str, price: Decimal | str) -> CatalogueItem:
    """Create or update the replica of a product (from inventory.ProductChanged).

    Idempotent: applying the same product state again writes nothing.
    Raises ``DomainError`` for a negative or malformed price.
    """
    amount = money_parse(price, field="price")
    with outbox.atomic():
        item = CatalogueItem.objects.select_for_update().filter(sku=sku).first()
        if item is not None and (item.name, item.price) == (name, amount):
            return item  # a repeated event: leave the row (and updated_at) alone
        item, _ = CatalogueItem.objects.update_or_create(
            sku=sku, defaults={"name": name, "price": amount}
        )
        return item


# --- the timeline read model -------------------------------------------------------------


def timeline_apply(*, message: outbox.Message) -> bool:
    """Project one event into the timeline of the order named by ``payload["order_id"]``.

    Idempotent: an event already in the timeline (same event id) is left as it
    is and False is returned. Used by ``timeline_rebuild``; the live consumer
    projects a batch's events at once (``timeline_apply_many``): both build the
    same rows.
    """
    return timeline_apply_many(messages=[message]) == 1


def timeline_apply_many(*, messages: Sequence[outbox.Message]) -> int:
    """``timeline_apply`` for several events in one statement; returns how many were new."""
    return insert_new(
        [
            TimelineEntry(
                order_id=int(message.payload["order_id"]),
                event_id=message.event_id,
                event_type=message.type,
                occurred_at=message.occurred_at,
                sequence=message.sequence,
                data=message.payload,
            )
            for message in messages
        ]
    )
