"""Every change to products, stock and reservations, each with the events it publishes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeGuard

from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

import outbox
from inventory.events import (
    ProductChanged,
    StockLine,
    StockReleased,
    StockReservationFailed,
    StockReserved,
    StockUpdated,
    UnavailableLine,
)
from inventory.models import Product, Reservation, ReservationLine
from shop import failpoints
from shop.db import Lookup, insert, insert_unless_exists, save_fields
from shop.errors import DomainError, NotFound
from shop.money import money_text

logger = logging.getLogger(__name__)

_RESERVATION = Lookup(Reservation, "order_id")
_RESERVATION_FOR_UPDATE = Lookup(Reservation, "order_id", lock="update")
_PRODUCTS_FOR_UPDATE = Lookup(Product, "sku", lock="update", order_by=["sku"])

# Far above any real stock level, far below the 32-bit column limit.
MAX_STOCK_CHANGE = 1_000_000


@dataclass(frozen=True)
class LineRequest:
    """A quantity of one SKU that an order asks for."""

    sku: str
    quantity: int


def _publish_product_changed(product: Product) -> None:
    outbox.publish(
        ProductChanged(sku=product.sku, product_name=product.name, price=money_text(product.price))
    )


def _publish_stock_updated(skus: Iterable[str]) -> None:
    # Read back what the database holds after the F() updates, in SKU order.
    for sku, on_hand, reserved in (
        Product.objects.filter(sku__in=list(skus))
        .order_by("sku")
        .values_list("sku", "on_hand", "reserved")
    ):
        outbox.publish(
            StockUpdated(sku=sku, on_hand=on_hand, reserved=reserved, available=on_hand - reserved)
        )


def _lock_products(skus: Iterable[str]) -> dict[str, Product]:
    """Lock the products' rows in SKU order, so that concurrent writers never deadlock."""
    return {product.sku: product for product in _PRODUCTS_FOR_UPDATE.any_of(skus)}


def _check_quantity(quantity: int, *, field: str, minimum: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise DomainError("Must be an integer.", field=field)
    if quantity < minimum:
        raise DomainError(f"Must be at least {minimum}.", field=field)
    if quantity > MAX_STOCK_CHANGE:
        raise DomainError(f"Must be at most {MAX_STOCK_CHANGE}.", field=field)


def product_create(*, sku: str, name: str, price: Decimal, stock: int = 0) -> Product:
    """Create a product with ``stock`` units on hand.

    Publishes ``inventory.ProductChanged`` and ``inventory.StockUpdated``.
    Raises ``DomainError`` (field ``sku``) when the SKU exists already, and
    (fields ``price``/``stock``) for a negative price or stock; nothing is
    written then.
    """
    if Decimal(price) < 0:
        raise DomainError("Must not be negative.", field="price")
    _check_quantity(stock, field="stock", minimum=0)
    duplicate = DomainError("A product with this SKU exists already.", field="sku")
    with outbox.atomic():
        if Product.objects.filter(sku=sku).exists():
            raise duplicate
        product = Product(sku=sku, name=name, price=price, on_hand=stock, reserved=0)
        if not insert_unless_exists(product):  # a concurrent insert of the same SKU won
            raise duplicate
        product.refresh_from_db()
        _publish_product_changed(product)
        _publish_stock_updated([product.sku])
    return product


def product_update(*, sku: str, name: str | None = None, price: Decimal | None = None) -> Product:
    """Rename or reprice a product; publishes ``inventory.ProductChanged`` if anything changed.

    Raises ``NotFound`` for an unknown SKU and ``DomainError`` (field ``price``)
    for a negative price.
    """
    if price is not None and Decimal(price) < 0:
        raise DomainError("Must not be negative.", field="price")
    with outbox.atomic():
        product = _lock_products([sku]).get(sku)
        if product is None:
            raise NotFound(f"No product with SKU {sku!r}.")
        changed = []
        if name is not None and name != product.name:
            product.name = name
            changed.append("name")
        if price is not None and Decimal(price) != product.price:
            product.price = price
            changed.append("price")
        if changed:
            product.save(update_fields=[*changed, "updated_at"])
            product.refresh_from_db()
            _publish_product_changed(product)
    return product


def stock_restock(*, sku: str, quantity: int) -> Product:
    """Add ``quantity`` units on hand; publishes ``inventory.StockUpdated``.

    Raises ``NotFound`` for an unknown SKU and ``DomainError`` (field
    ``quantity``) unless the quantity is a positive integer.
    """
    _check_quantity(quantity, field="quantity", minimum=1)
    with outbox.atomic():
        if sku not in _lock_products([sku]):
            raise NotFound(f"No product with SKU {sku!r}.")
        Product.objects.filter(sku=sku).update(
            on_hand=F("on_hand") + quantity, updated_at=timezone.now()
        )
        _publish_stock_updated([sku])
        return Product.objects.get(sku=sku)


def _merge(lines: Sequence[LineRequest]) -> dict[str, int]:
    """Quantities per SKU, in the order the SKUs first appear."""
    if not lines:
        raise DomainError("An order needs at least one line.", field="lines")
    merged: dict[str, int] = {}
    for line in lines:
        _check_quantity(line.quantity, field="quantity", minimum=1)
        merged[line.sku] = merged.get(line.sku, 0) + line.quantity
    return merged


def _failure_reason(unavailable: list[UnavailableLine]) -> str:
    parts = [
        f"{line.sku} (requested {line.requested}, available {line.available})"
        for line in unavailable
    ]
    return "Not enough stock for " + ", ".join(parts)


def stock_reserve_for_order(*, order_id: int, lines: Sequence[LineRequest]) -> Reservation:
    """Hold every line of an order, all or nothing; idempotent per order.

    Locks the products' rows in SKU order and raises ``reserved`` while holding
    the locks; the table's constraints back the check, so stock is never
    oversold however many orders race. On success the reservation is HELD and
    ``inventory.StockReserved`` plus one ``inventory.StockUpdated`` per SKU are
    published. If any line cannot be held (an unknown SKU counts as available
    0), no stock changes, the reservation is recorded as FAILED and
    ``inventory.StockReservationFailed`` lists the unavailable lines. A second
    call for an order that has a reservation (of any status) returns it and
    does nothing. Raises ``DomainError`` for no lines or a non-positive quantity.
    """
    requested = _merge(lines)
    with outbox.atomic():
        failpoints.reach("inventory.reserve_for_order")
        products = _lock_products(requested)
        # Looked up under the locks: another delivery of the same order may have
        # committed while we waited for them.
        existing = _RESERVATION.get(order_id)
        if existing is not None:
            logger.info("order %s already has a %s reservation", order_id, existing.status)
            return existing

        unavailable = [
            UnavailableLine(
                sku=sku,
                requested=quantity,
                available=products[sku].available if sku in products else 0,
            )
            for sku, quantity in requested.items()
            if sku not in products or products[sku].available < quantity
        ]
        if unavailable:
            reason = _failure_reason(unavailable)
            reservation = _record_reservation(
                order_id, requested, Reservation.Status.FAILED, reason=reason
            )
            outbox.publish(
                StockReservationFailed(order_id=order_id, reason=reason, unavailable=unavailable)
            )
            logger.info("reservation for order %s failed: %s", order_id, reason)
            return reservation

        # The rows are locked until commit: what they hold is what was read, so the
        # new level is written as a value (the constraints still check it).
        for sku in sorted(requested):
            products[sku].reserved += requested[sku]
            save_fields(products[sku], ["reserved", "updated_at"])
        reservation = _record_reservation(order_id, requested, Reservation.Status.HELD)
        outbox.publish(
            StockReserved(
                order_id=order_id,
                lines=[StockLine(sku=sku, quantity=qty) for sku, qty in requested.items()],
            )
        )
        for sku in sorted(requested):
            product = products[sku]
            outbox.publish(
                StockUpdated(
                    sku=sku,
                    on_hand=product.on_hand,
                    reserved=product.reserved,
                    available=product.available,
                )
            )
    return reservation


def _record_reservation(
    order_id: int, requested: dict[str, int], status: str, *, reason: str = ""
) -> Reservation:
    reservation = Reservation(order_id=order_id, status=status, failure_reason=reason)
    if not insert_unless_exists(reservation):
        # A concurrent delivery of the same order won (only unknown SKUs: nothing
        # was locked). The handler is retried and then finds its reservation.
        raise IntegrityError(f"order {order_id} has a reservation already")
    insert(
        *(
            ReservationLine(reservation=reservation, sku=sku, quantity=quantity)
            for sku, quantity in requested.items()
        )
    )
    return reservation


def _is_held(reservation: Reservation | None, order_id: int, action: str) -> TypeGuard[Reservation]:
    """Whether ``action`` may change the order's reservation: it exists and is HELD (else logged)."""
    if reservation is None:
        logger.info("no reservation for order %s to %s: ignored", order_id, action)
        return False
    if reservation.status != Reservation.Status.HELD:
        logger.info(
            "reservation for order %s is %s, not HELD: %s ignored",
            order_id,
            reservation.status,
            action,
        )
        return False
    return True


def _lines_locked(reservation: Reservation) -> list[ReservationLine]:
    """The reservation's lines, their products locked (in sku order, as everywhere)."""
    lines = list(reservation.lines.order_by("sku"))
    _lock_products(line.sku for line in lines)
    return lines


def stock_release_for_order(*, order_id: int) -> Reservation | None:
    """Give back the stock held for an order (HELD → RELEASED).

    Publishes ``inventory.StockReleased`` and one ``inventory.StockUpdated`` per
    SKU. Does nothing (and returns what there is) when the order has no
    reservation or it is not HELD, so a repeated cancel is harmless.
    """
    with outbox.atomic():
        reservation = _RESERVATION_FOR_UPDATE.get(order_id)
        if not _is_held(reservation, order_id, "release"):
            return reservation
        lines = _lines_locked(reservation)
        now = timezone.now()
        for line in lines:
            Product.objects.filter(sku=line.sku).update(
                reserved=F("reserved") - line.quantity, updated_at=now
            )
        reservation.status = Reservation.Status.RELEASED
        reservation.save(update_fields=["status", "updated_at"])
        outbox.publish(
            StockReleased(
                order_id=order_id,
                lines=[StockLine(sku=line.sku, quantity=line.quantity) for line in lines],
            )
        )
        _publish_stock_updated(line.sku for line in lines)
    return reservation


def stock_fulfil_for_order(*, order_id: int) -> Reservation | None:
    """Take an order's held stock out of the warehouse (HELD → FULFILLED).

    Lowers both ``on_hand`` and ``reserved`` by each line's quantity and
    publishes one ``inventory.StockUpdated`` per SKU. Does nothing when the
    order has no reservation or it is not HELD.
    """
    with outbox.atomic():
        reservation = _RESERVATION_FOR_UPDATE.get(order_id)
        if not _is_held(reservation, order_id, "fulfil"):
            return reservation
        lines = _lines_locked(reservation)
        now = timezone.now()
        for line in lines:
            Product.objects.filter(sku=line.sku).update(
                on_hand=F("on_hand") - line.quantity,
                reserved=F("reserved") - line.quantity,
                updated_at=now,
            )
        reservation.status = Reservation.Status.FULFILLED
        reservation.save(update_fields=["status", "updated_at"])
        _publish_stock_updated(line.sku for line in lines)
    return reservation
