"""The wording of each kind of notification: subject and plain-text body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SIGNATURE = "\n\nThank you for shopping with us.\nThe Shop"


def _lines(lines: list[Mapping[str, Any]]) -> str:
    return "\n".join(
        f"  {line['quantity']} x {line.get('name') or line['sku']} ({line['sku']})"
        + (f" at {line['unit_price']}" if line.get("unit_price") else "")
        for line in lines
    )


def render(
    kind: str, *, order_id: int | None, context: Mapping[str, Any], name: str | None
) -> tuple[str, str]:
    """``(subject, body)`` of a notification; raises ``KeyError`` for an unknown kind."""
    greeting = f"Hello {name}," if name else "Hello,"
    if kind == "welcome":
        return (
            "Welcome to the shop",
            f"{greeting}\n\nyour account is ready. Browse the catalogue and place your "
            "first order whenever you like." + SIGNATURE,
        )
    if kind == "order_created":
        total = f"{context['total']} {context.get('currency', 'EUR')}"
        return (
            f"We received your order #{order_id}",
            f"{greeting}\n\nwe received your order #{order_id}:\n{_lines(context['lines'])}\n"
            f"Total: {total}\n\nWe are checking stock and payment and will write again "
            "shortly." + SIGNATURE,
        )
    if kind == "order_confirmed":
        return (
            f"Your order #{order_id} is confirmed",
            f"{greeting}\n\nyour order #{order_id} is confirmed: the goods are reserved and "
            f"your payment of {context['total']} was accepted.\n{_lines(context['lines'])}\n\n"
            "We will let you know when it ships." + SIGNATURE,
        )
    if kind == "order_cancelled":
        return (
            f"Your order #{order_id} was cancelled",
            f"{greeting}\n\nyour order #{order_id} was cancelled.\nReason: {context['reason']}\n\n"
            "Any payment taken for it is refunded and nothing will be shipped." + SIGNATURE,
        )
    if kind == "order_shipped":
        return (
            f"Your order #{order_id} is on its way",
            f"{greeting}\n\nyour order #{order_id} has been dispatched.\n"
            f"Tracking number: {context['tracking_number']}" + SIGNATURE,
        )
    if kind == "cancellation_refused":
        if context["reason_code"] == "already_shipped":
            outcome = (
                "it had been dispatched already, so it is on its way to you. If you do not "
                "want it, you can send it back when it arrives."
            )
        else:
            outcome = (
                "we could not confirm it in time, so your order stands and will be shipped. "
                "You can ask to cancel it again."
            )
        return (
            f"We could not cancel your order #{order_id}",
            f"{greeting}\n\nyou asked us to cancel your order #{order_id}, but {outcome}"
            + SIGNATURE,
        )
    raise KeyError(f"no message for notification kind {kind!r}")
