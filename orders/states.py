"""The order state machine: which action may happen in which state, and where it leads.

Every service asks this table before it changes an order; nothing else decides
whether a transition is allowed.

::

    PENDING --record_stock_result / record_payment_result--> PENDING
    PENDING --confirm--> CONFIRMED --ship--> SHIPPED
    PENDING | CONFIRMED --cancel--> CANCELLED

SHIPPED and CANCELLED are final.
"""

from __future__ import annotations

from enum import StrEnum

from orders.models import Order
from shop.errors import Conflict

Status = Order.Status


class Action(StrEnum):
    RECORD_STOCK_RESULT = "record_stock_result"
    RECORD_PAYMENT_RESULT = "record_payment_result"
    CONFIRM = "confirm"
    CANCEL = "cancel"
    SHIP = "ship"


TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.PENDING, Action.RECORD_STOCK_RESULT): Status.PENDING,
    (Status.PENDING, Action.RECORD_PAYMENT_RESULT): Status.PENDING,
    (Status.PENDING, Action.CONFIRM): Status.CONFIRMED,
    (Status.PENDING, Action.CANCEL): Status.CANCELLED,
    (Status.CONFIRMED, Action.CANCEL): Status.CANCELLED,
    (Status.CONFIRMED, Action.SHIP): Status.SHIPPED,
}

FINAL_STATES = frozenset(
    status for status in Status if not any(src == status for src, _ in TRANSITIONS)
)


def can(status: str, action: Action) -> bool:
    """Whether ``action`` fits an order in ``status``."""
    return (Status(status), action) in TRANSITIONS


def next_status(status: str, action: Action) -> Status:
    """The state ``action`` leads to from ``status``.

    Raises ``shop.errors.Conflict`` when the action does not fit the state.
    """
    try:
        return TRANSITIONS[(Status(status), action)]
    except KeyError:
        raise Conflict(
            f"cannot {action.value.replace('_', ' ')}: the order is {Status(status).value}"
        ) from None
