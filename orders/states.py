"""The order state machine: which action may happen in which state, and where it leads.

Every service asks this table before it changes an order; nothing else decides
whether a transition is allowed.

::

    PENDING --record_stock_result / record_payment_result--> PENDING
    PENDING --confirm--> CONFIRMED --ship--> SHIPPED
    PENDING --cancel | expire--> CANCELLED
    CONFIRMED --request_cancel--> CANCELLING --request_cancel--> CANCELLING
    CANCELLING --record_shipment_cancelled--> CANCELLED
    CANCELLING --ship--> SHIPPED
    CANCELLING --expire--> CONFIRMED
    CONFIRMED --record_shipment_cancelled--> CANCELLED

CANCELLING is a semantic lock: a confirmed order is cancelled only once
shipping has cancelled its shipment, under the shipment's row lock, where a
dispatch cannot cross it. Shipping's answer decides: "shipment cancelled"
(CANCELLED, then refund and release) or "already dispatched" (SHIPPED). The
deadlines of PENDING and CANCELLING end in ``expire``: a PENDING order is
cancelled (reason "timeout"), a CANCELLING one goes back to CONFIRMED (its
shipment is still shippable; the request is withdrawn), so the outcome is never
decided without shipping. A shipment cancelled anyway (shipping had taken the
request just before the deadline) still cancels the order from CONFIRMED.

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
    REQUEST_CANCEL = "request_cancel"
    RECORD_SHIPMENT_CANCELLED = "record_shipment_cancelled"
    SHIP = "ship"
    EXPIRE = "expire"


TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.PENDING, Action.RECORD_STOCK_RESULT): Status.PENDING,
    (Status.PENDING, Action.RECORD_PAYMENT_RESULT): Status.PENDING,
    (Status.PENDING, Action.CONFIRM): Status.CONFIRMED,
    (Status.PENDING, Action.CANCEL): Status.CANCELLED,
    (Status.PENDING, Action.EXPIRE): Status.CANCELLED,
    (Status.CONFIRMED, Action.REQUEST_CANCEL): Status.CANCELLING,
    (Status.CONFIRMED, Action.RECORD_SHIPMENT_CANCELLED): Status.CANCELLED,
    (Status.CONFIRMED, Action.SHIP): Status.SHIPPED,
    (Status.CANCELLING, Action.REQUEST_CANCEL): Status.CANCELLING,
    (Status.CANCELLING, Action.RECORD_SHIPMENT_CANCELLED): Status.CANCELLED,
    (Status.CANCELLING, Action.SHIP): Status.SHIPPED,
    (Status.CANCELLING, Action.EXPIRE): Status.CONFIRMED,
}

FINAL_STATES = frozenset(
    status for status in Status if not any(src == status for src, _ in TRANSITIONS)
)

# The states in which the saga waits for another app, each with a deadline.
WAITING_STATES = frozenset({Status.PENDING, Status.CANCELLING})


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
