"""A cancel and a dispatch of one order, crossed on purpose, with a real worker.

However they interleave, an order ends shipped (charged, its stock out of the
warehouse, its shipment dispatched) or cancelled (refunded, its stock released,
its shipment cancelled), never both; the API's answers say which.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from conftest import wait_for
from notifications.models import Notification
from orders.models import Order
from shipping.models import Shipment
from shop import failpoints
from shop.tests import sagas
from shop.tests.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)

TRIALS = 50
STOCK = 1000


def _shop(celery_worker, settings, trials: int) -> dict:
    """A worker, a product, a customer, staff, and ``trials`` confirmed orders with shipments."""
    sagas.start_worker(celery_worker, settings)
    sagas.seed_product("RACE-1", stock=STOCK, price="12.50")
    customer, staff = sagas.user("rita"), sagas.user("sam", staff=True)
    orders = [sagas.place(customer.pk, [("RACE-1", 2)]) for _ in range(trials)]
    ids = [order.pk for order in orders]
    sagas.wait_until_confirmed_with_shipments(ids)
    shipments = dict(Shipment.objects.filter(order_id__in=ids).values_list("order_id", "pk"))
    return {
        "ids": ids,
        "shipments": shipments,
        "customer": client_for(customer),
        "staff": client_for(staff),
    }


ALREADY_CANCELLED = "409: already cancelled"


def _cancel(api, order_id: int) -> int | str:
    """The answer's status; a 409 because the other cancel had ended the order already says so."""
    response = api.post(f"/api/orders/{order_id}/cancel/")
    if response.status_code == 409 and response.json()["detail"].endswith("order is CANCELLED"):
        return ALREADY_CANCELLED
    return response.status_code


def _dispatch(api, shipment_id: int) -> int:
    return api.post(f"/api/shipments/{shipment_id}/dispatch/").status_code


def _check_outcomes(shop, answers: dict[int, dict[str, int]]) -> Counter:
    """Settle, then: no mixed end state, and every answer the API gave fits how the order ended."""
    ids = shop["ids"]
    sagas.settle_with_worker(ids, allowed=sagas.FINAL)
    ends = sagas.assert_consistent(ids)
    sagas.assert_money_and_stock({"RACE-1": STOCK})
    wrong = {}
    for order in Order.objects.filter(pk__in=ids):
        got = answers[order.pk]
        shipped = order.status == Order.Status.SHIPPED
        if got["dispatch"] != (200 if shipped else 409):
            wrong[order.pk] = (order.status, got)
        cancels = [code for name, code in got.items() if name != "dispatch"]
        if any(code not in (202, 409, ALREADY_CANCELLED) for code in cancels):
            wrong[order.pk] = (order.status, got)
        if not shipped and (409 in cancels or 202 not in cancels):
            wrong[order.pk] = (
                order.status,
                got,
            )  # a cancel refused, or none taken, yet not shipped
        if shipped and ALREADY_CANCELLED in cancels:
            wrong[order.pk] = (order.status, got)  # told it was cancelled, yet it shipped
    assert wrong == {}
    # the customer was told how it ended: cancelled, or that the cancel came too late
    accepted_but_shipped = [
        pk
        for pk, got in answers.items()
        if 202 in got.values() and Order.objects.get(pk=pk).status == Order.Status.SHIPPED
    ]
    wait_for(
        lambda: (
            Notification.objects.filter(
                order_id__in=accepted_but_shipped, kind="cancellation_refused"
            ).count()
            == len(accepted_but_shipped)
        ),
        message="the customers whose cancel came too late to be told",
    )
    return ends


def test_customer_cancel_staff_cancel_and_dispatch_fired_together(celery_worker, settings):
    shop = _shop(celery_worker, settings, TRIALS)

    # when: for each order, the three requests start at one instant behind a barrier. The
    # dispatch of each trial starts a little later than the last (0 to 0.45 s after the
    # barrier, cyclically), so the trials cross the whole window in which shipping takes
    # the cancel request, not only its start.
    answers = {}
    for trial, order_id in enumerate(shop["ids"]):
        offset = (trial % 10) * 0.05
        customer, staff, dispatch = sagas.run_together(
            lambda o=order_id: _cancel(shop["customer"], o),
            lambda o=order_id: _cancel(shop["staff"], o),
            lambda o=order_id, t=offset: (
                time.sleep(t) or _dispatch(shop["staff"], shop["shipments"][o])
            ),
        )
        answers[order_id] = {"customer": customer, "staff": staff, "dispatch": dispatch}

    # then
    ends = _check_outcomes(shop, answers)
    assert sum(ends.values()) == TRIALS


# --- every ordering, forced by holding one side at a named point ----------------------------
#
# Each ordering runs for a chunk of orders at once: the held side (a consumer in the
# worker, or a dispatch in a thread) reaches the point for each order in turn, the test
# does what must come first for that order and lets that one go.


class _Request(threading.Thread):
    """An API request in its own thread and database connection; knows its backend's pid."""

    def __init__(self, func) -> None:
        super().__init__()
        self.func, self.result, self.pid = func, None, None
        self.connected = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.connected.set()
            self.result = self.func()
        finally:
            connection.close()

    def started(self) -> _Request:
        self.start()
        assert self.connected.wait(timeout=30)
        return self

    def join_result(self) -> int:
        self.join(timeout=60)
        assert not self.is_alive(), "the request did not finish"
        return self.result


def _in_turn(grip: failpoints.Holds, ready, act, what: str) -> None:
    """For each held key, as ``ready()`` lists it: ``act(key)``, then let that key go."""
    while grip.held:
        key = wait_for(
            lambda: min(ready() & grip.held, default=None),
            timeout=30,
            message=f"{what} at {grip.name}",
        )
        act(key)
        grip.release(key)


def shipped_then_cancel(shop, ids):
    """The dispatch, and orders learning of it, both come before the cancel."""
    dispatched = {o: _dispatch(shop["staff"], shop["shipments"][o]) for o in ids}
    wait_for(lambda: sagas.statuses(ids)[Order.Status.SHIPPED] == len(ids))
    return {o: {"dispatch": dispatched[o], "customer": _cancel(shop["customer"], o)} for o in ids}


def dispatched_cancel_before_orders_learns(shop, ids):
    """The dispatch commits; the cancel comes before orders applies OrderShipped."""
    answers = {}
    with failpoints.hold("orders.mark_shipped", *ids) as grip:
        dispatched = {o: _dispatch(shop["staff"], shop["shipments"][o]) for o in ids}

        def cancel(o: int) -> None:
            answers[o] = {"dispatch": dispatched[o], "customer": _cancel(shop["customer"], o)}

        _in_turn(grip, grip.waiting, cancel, "orders' consumer")
    return answers


def dispatch_before_shipping_takes_the_request(shop, ids):
    """The cancel is asked; the dispatch commits before shipping looks at the request."""
    answers = {}
    with failpoints.hold("shipping.cancel_request.before_lock", *ids) as grip:
        cancelled = {o: _cancel(shop["customer"], o) for o in ids}

        def dispatch(o: int) -> None:
            answers[o] = {"dispatch": _dispatch(shop["staff"], shop["shipments"][o])}
            answers[o]["customer"] = cancelled[o]

        _in_turn(grip, grip.waiting, dispatch, "shipping's consumer")
    return answers


def request_taken_before_dispatch(shop, ids):
    """Shipping cancels the shipment before the dispatch is tried."""
    cancelled = {o: _cancel(shop["customer"], o) for o in ids}
    wait_for(
        lambda: (
            Shipment.objects.filter(order_id__in=ids, status=Shipment.Status.CANCELLED).count()
            == len(ids)
        ),
        message="shipping to cancel the shipments",
    )
    return {
        o: {"dispatch": _dispatch(shop["staff"], shop["shipments"][o]), "customer": cancelled[o]}
        for o in ids
    }


def request_holds_the_lock_dispatch_waits(shop, ids):
    """Shipping has the shipment locked for the request when the dispatch comes: it waits."""
    requests = {}
    with failpoints.hold("shipping.cancel_request.locked", *ids) as grip:
        cancelled = {o: _cancel(shop["customer"], o) for o in ids}

        def dispatch(o: int) -> None:
            request = _Request(lambda: _dispatch(shop["staff"], shop["shipments"][o])).started()
            wait_for(
                lambda: failpoints.waits_for_lock(request.pid),
                timeout=30,
                message=f"the dispatch of order {o} to wait for the shipment's lock",
            )
            requests[o] = request

        _in_turn(grip, grip.waiting, dispatch, "shipping's consumer")
    return {o: {"dispatch": r.join_result(), "customer": cancelled[o]} for o, r in requests.items()}


def dispatch_holds_the_lock_request_waits(shop, ids):
    """The dispatch has the shipment locked when shipping takes the request: shipping waits."""
    with failpoints.hold("shipping.dispatch.locked", *ids) as grip:
        requests = {
            o: _Request(lambda o=o: _dispatch(shop["staff"], shop["shipments"][o])).started()
            for o in ids
        }
        wait_for(lambda: grip.waiting() == set(ids), timeout=30, message="the dispatches")
        cancelled = {o: _cancel(shop["customer"], o) for o in ids}
        _in_turn(grip, grip.blocking, lambda o: None, "shipping's consumer to wait for a dispatch")
    return {o: {"dispatch": r.join_result(), "customer": cancelled[o]} for o, r in requests.items()}


ORDERINGS = {
    shipped_then_cancel: Order.Status.SHIPPED,
    dispatched_cancel_before_orders_learns: Order.Status.SHIPPED,
    dispatch_before_shipping_takes_the_request: Order.Status.SHIPPED,
    request_taken_before_dispatch: Order.Status.CANCELLED,
    request_holds_the_lock_dispatch_waits: Order.Status.CANCELLED,
    dispatch_holds_the_lock_request_waits: Order.Status.SHIPPED,
}


def test_every_ordering_of_cancel_and_dispatch_ends_as_the_first_to_the_shipment_says(
    celery_worker, settings
):
    # 50 trials or more in all, each ordering as often as the others
    per_ordering = -(-TRIALS // len(ORDERINGS))
    shop = _shop(celery_worker, settings, per_ordering * len(ORDERINGS))

    # when: each ordering, forced by a hold point, per_ordering times (chunks round them)
    answers, expected = {}, {}
    orderings = list(ORDERINGS)
    chunks = [shop["ids"][i : i + per_ordering] for i in range(0, len(shop["ids"]), per_ordering)]
    for number, ids in enumerate(chunks):
        force = orderings[number % len(orderings)]
        answers.update(force(shop, ids))
        expected.update(dict.fromkeys(ids, ORDERINGS[force]))

    # then every order ended as its ordering says, and nothing is mixed
    assert set(answers) == set(shop["ids"])
    ends = _check_outcomes(shop, answers)
    got = dict(Order.objects.filter(pk__in=shop["ids"]).values_list("pk", "status"))
    assert got == expected
    assert ends == Counter(expected.values())
