from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import services
from orders.models import CatalogueItem, IdempotencyKey, Order, OrderLine
from orders.tests.factories import age_idempotency_key, order_events, place, seed_product
from shop import vault
from shop.errors import Conflict, DomainError, NotFound

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalogue():
    seed_product("SKU-1", name="Widget", price="10.00")
    seed_product("SKU-2", name="Gadget", price="2.50")


def pending_order(**kwargs) -> Order:
    return place(7, [("SKU-1", 2), ("SKU-2", 3)], **kwargs)


# --- placing ---------------------------------------------------------------------------


def test_place_prices_lines_from_the_replica_and_publishes_order_created():
    # when
    placed = services.order_place(
        customer_id=7,
        lines=[services.LineIn(sku="SKU-1", quantity=2), services.LineIn(sku="SKU-2", quantity=3)],
        payment_token="tok_visa",
    )

    # then
    order = placed.order
    assert placed.created is True
    assert order.status == Order.Status.PENDING
    assert order.total == Decimal("27.50")
    assert order.currency == "EUR"
    assert vault.payment_token_resolve(reference=order.payment_reference) == "tok_visa"
    assert [
        (line.sku, line.name, line.unit_price, line.quantity) for line in order.lines.all()
    ] == [
        ("SKU-1", "Widget", Decimal("10.00"), 2),
        ("SKU-2", "Gadget", Decimal("2.50"), 3),
    ]
    assert order_events(order.pk) == [
        (
            "orders.OrderCreated",
            {
                "order_id": order.pk,
                "customer_id": 7,
                "lines": [
                    {"sku": "SKU-1", "name": "Widget", "unit_price": "10.00", "quantity": 2},
                    {"sku": "SKU-2", "name": "Gadget", "unit_price": "2.50", "quantity": 3},
                ],
                "total": "27.50",
                "currency": "EUR",
                "payment_reference": order.payment_reference,
            },
        )
    ]


@pytest.mark.parametrize("skus", [["SKU-1"], ["SKU-2", "SKU-1"]])
def test_the_placed_orders_lines_are_known_without_reading_them_back(skus):
    # when an order of one line, or of two, is placed
    placed = services.order_place(
        customer_id=7,
        lines=[services.LineIn(sku=sku, quantity=1) for sku in skus],
        payment_token="tok_visa",
    )

    # then its lines answer without a query, and as the database holds them
    with CaptureQueriesContext(connection) as queries:
        known = [(line.pk, line.sku, line.unit_price) for line in placed.order.lines.all()]
    assert len(queries) == 0
    stored = OrderLine.objects.filter(order_id=placed.order.pk).order_by("id")
    assert known == [(line.pk, line.sku, line.unit_price) for line in stored]
    assert [sku for _, sku, _ in known] == skus


def test_place_uses_the_default_payment_token():
    order = place(7, [("SKU-1", 1)])

    reference = order_events(order.pk)[0][1]["payment_reference"]
    assert reference == order.payment_reference
    assert vault.payment_token_resolve(reference=reference) == "tok_visa"


def test_place_uses_the_price_the_replica_has_now():
    # given
    seed_product("SKU-1", name="Widget Pro", price="12.00")

    # when
    order = place(7, [("SKU-1", 1)])

    # then
    line = order.lines.get()
    assert (line.name, line.unit_price, order.total) == ("Widget Pro", Decimal("12.00"), 12)


def test_place_rejects_an_unknown_sku_and_writes_nothing():
    with pytest.raises(DomainError) as error:
        place(7, [("SKU-1", 1), ("NOPE", 1)])

    assert error.value.field == "lines"
    assert "NOPE" in error.value.message
    assert not Order.objects.filter(customer_id=7).exists()
    assert not OrderLine.objects.filter(sku="SKU-1").exists()


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [("SKU-1", 0)],
        [("SKU-1", 101)],
        [("SKU-1", -1)],
        [("", 1)],
        [("SKU-1", 1), ("SKU-1", 2)],
        [(f"SKU-{i}", 1) for i in range(51)],
    ],
    ids=["empty", "zero", "above-100", "negative", "blank-sku", "duplicate-sku", "51-lines"],
)
def test_place_rejects_bad_lines_and_writes_nothing(lines):
    with pytest.raises(DomainError) as error:
        place(7, lines)

    assert error.value.field == "lines"
    assert not Order.objects.filter(customer_id=7).exists()


def test_place_rejects_a_payment_token_over_100_characters():
    with pytest.raises(DomainError) as error:
        place(7, [("SKU-1", 1)], payment_token="t" * 101)

    assert error.value.field == "payment_token"
    assert not Order.objects.filter(customer_id=7).exists()


# --- idempotency -----------------------------------------------------------------------


def test_same_key_and_same_request_returns_the_same_order_without_a_second_event():
    # given
    first = services.order_place(
        customer_id=7, lines=[services.LineIn(sku="SKU-1", quantity=2)], idempotency_key="k-1"
    )

    # when
    second = services.order_place(
        customer_id=7, lines=[services.LineIn(sku="SKU-1", quantity=2)], idempotency_key="k-1"
    )

    # then
    assert (first.created, second.created) == (True, False)
    assert second.order.pk == first.order.pk
    assert Order.objects.filter(customer_id=7).count() == 1
    assert [event for event, _ in order_events(first.order.pk)] == ["orders.OrderCreated"]


def test_replay_ignores_the_order_of_lines():
    first = pending_order(idempotency_key="k-1")

    again = place(7, [("SKU-2", 3), ("SKU-1", 2)], idempotency_key="k-1")

    assert again.pk == first.pk


def test_replay_returns_the_original_order_even_after_a_price_change():
    first = pending_order(idempotency_key="k-1")
    seed_product("SKU-1", name="Widget", price="99.00")

    again = pending_order(idempotency_key="k-1")

    assert again.pk == first.pk
    assert again.total == Decimal("27.50")


def test_same_key_with_another_request_is_a_conflict_and_writes_nothing():
    # given
    first = place(7, [("SKU-1", 2)], idempotency_key="k-1")

    # when / then
    with pytest.raises(Conflict):
        place(7, [("SKU-1", 3)], idempotency_key="k-1")
    with pytest.raises(Conflict):
        place(7, [("SKU-1", 2)], idempotency_key="k-1", payment_token="tok_chargeDeclined")
    assert list(Order.objects.filter(customer_id=7).values_list("pk", flat=True)) == [first.pk]


def test_keys_are_per_customer():
    mine = place(7, [("SKU-1", 2)], idempotency_key="k-1")

    theirs = place(8, [("SKU-1", 2)], idempotency_key="k-1")

    assert theirs.pk != mine.pk
    assert theirs.customer_id == 8
    assert IdempotencyKey.objects.filter(key="k-1").count() == 2


def test_a_rejected_request_does_not_consume_its_key():
    with pytest.raises(DomainError):
        place(7, [("NOPE", 1)], idempotency_key="k-1")

    order = place(7, [("SKU-1", 1)], idempotency_key="k-1")

    assert order.status == Order.Status.PENDING
    assert not IdempotencyKey.objects.filter(key="k-1").exclude(order=order).exists()


def test_a_key_older_than_the_retention_is_forgotten_and_the_same_request_places_a_new_order(
    settings,
):
    # given
    settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 24
    first = pending_order(idempotency_key="k-1")
    age_idempotency_key(7, "k-1", hours=24.5)

    # when
    placed = services.order_place(
        customer_id=7,
        lines=[services.LineIn(sku="SKU-1", quantity=2), services.LineIn(sku="SKU-2", quantity=3)],
        idempotency_key="k-1",
    )

    # then
    assert placed.created is True
    assert placed.order.pk != first.pk
    assert [row.order_id for row in IdempotencyKey.objects.filter(customer_id=7)] == [
        placed.order.pk
    ]
    assert [event for event, _ in order_events(placed.order.pk)] == ["orders.OrderCreated"]
    assert Order.objects.filter(pk=first.pk).exists()  # the first order itself stays

    # and the new key is remembered in turn
    assert pending_order(idempotency_key="k-1").pk == placed.order.pk


def test_a_key_within_the_retention_returns_the_first_order(settings):
    # given
    settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 24
    first = pending_order(idempotency_key="k-1")
    age_idempotency_key(7, "k-1", hours=23.5)

    # when
    again = services.order_place(
        customer_id=7,
        lines=[services.LineIn(sku="SKU-1", quantity=2), services.LineIn(sku="SKU-2", quantity=3)],
        idempotency_key="k-1",
    )

    # then
    assert (again.created, again.order.pk) == (False, first.pk)
    assert Order.objects.filter(customer_id=7).count() == 1


def test_the_retention_comes_from_the_setting(settings):
    # given: a key two days old, kept for three
    settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 72
    first = pending_order(idempotency_key="k-1")
    age_idempotency_key(7, "k-1", hours=48)

    # when
    again = pending_order(idempotency_key="k-1")
    settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 24
    later = pending_order(idempotency_key="k-1")

    # then
    assert again.pk == first.pk
    assert later.pk != first.pk


def test_an_expired_key_with_another_request_places_that_request_instead_of_a_conflict():
    # given
    first = place(7, [("SKU-1", 2)], idempotency_key="k-1")
    age_idempotency_key(7, "k-1", hours=25)

    # when
    other = place(7, [("SKU-1", 3)], idempotency_key="k-1")

    # then
    assert other.pk != first.pk
    assert [line.quantity for line in other.lines.all()] == [3]


def test_a_rejected_request_with_an_expired_key_leaves_the_key_as_it_was():
    # given
    first = place(7, [("SKU-1", 2)], idempotency_key="k-1")
    age_idempotency_key(7, "k-1", hours=25)

    # when
    with pytest.raises(DomainError):
        place(7, [("NOPE", 1)], idempotency_key="k-1")

    # then
    assert [row.order_id for row in IdempotencyKey.objects.filter(customer_id=7)] == [first.pk]
    assert Order.objects.filter(customer_id=7).count() == 1


def test_prune_deletes_the_keys_older_than_the_retention_and_keeps_their_orders(settings):
    # given
    settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 24
    old = place(7, [("SKU-1", 1)], idempotency_key="old")
    recent = place(7, [("SKU-1", 1)], idempotency_key="recent")
    fresh = place(8, [("SKU-1", 1)], idempotency_key="old")
    age_idempotency_key(7, "old", hours=30)
    age_idempotency_key(7, "recent", hours=20)

    # when
    deleted = services.idempotency_keys_prune()

    # then
    assert deleted == 1
    assert sorted(IdempotencyKey.objects.values_list("customer_id", "key", "order_id")) == [
        (7, "recent", recent.pk),
        (8, "old", fresh.pk),
    ]
    assert Order.objects.filter(pk=old.pk).exists()
    assert services.idempotency_keys_prune() == 0


# --- the saga's replies ----------------------------------------------------------------


@pytest.mark.parametrize("stock_first", [True, False], ids=["stock-first", "payment-first"])
def test_confirms_only_when_both_replies_arrived_in_either_order(stock_first):
    # given
    order = pending_order()
    first, second = (
        (services.order_record_stock_result, {"reserved": True}),
        (services.order_record_payment_result, {"captured": True}),
    )[:: 1 if stock_first else -1]

    # when
    first[0](order_id=order.pk, **first[1])

    # then
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert [event for event, _ in order_events(order.pk)] == ["orders.OrderCreated"]

    # when
    second[0](order_id=order.pk, **second[1])

    # then
    order.refresh_from_db()
    assert order.status == Order.Status.CONFIRMED
    assert (order.stock_reserved, order.payment_captured) == (True, True)
    assert order_events(order.pk)[1:] == [
        (
            "orders.OrderConfirmed",
            {
                "order_id": order.pk,
                "customer_id": 7,
                "lines": [
                    {"sku": "SKU-1", "name": "Widget", "unit_price": "10.00", "quantity": 2},
                    {"sku": "SKU-2", "name": "Gadget", "unit_price": "2.50", "quantity": 3},
                ],
                "total": "27.50",
            },
        )
    ]


def test_a_repeated_success_changes_nothing():
    order = pending_order()
    services.order_record_stock_result(order_id=order.pk, reserved=True)

    services.order_record_stock_result(order_id=order.pk, reserved=True)

    order.refresh_from_db()
    assert (order.status, order.stock_reserved, order.payment_captured) == ("PENDING", True, False)
    assert [event for event, _ in order_events(order.pk)] == ["orders.OrderCreated"]


def test_stock_failure_cancels_with_out_of_stock():
    order = pending_order()

    services.order_record_stock_result(order_id=order.pk, reserved=False, reason="Out: SKU-1.")

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert (order.cancel_reason_code, order.cancel_reason) == ("out_of_stock", "Out: SKU-1.")
    assert order_events(order.pk)[1:] == [
        (
            "orders.OrderCancelled",
            {
                "order_id": order.pk,
                "customer_id": 7,
                "reason": "Out: SKU-1.",
                "reason_code": "out_of_stock",
                "previous_status": "PENDING",
            },
        )
    ]


def test_payment_failure_after_stock_was_reserved_cancels_with_payment_failed():
    order = pending_order()
    services.order_record_stock_result(order_id=order.pk, reserved=True)

    services.order_record_payment_result(order_id=order.pk, captured=False, reason="Declined.")

    order.refresh_from_db()
    assert (order.status, order.cancel_reason_code) == ("CANCELLED", "payment_failed")
    assert [event for event, _ in order_events(order.pk)] == [
        "orders.OrderCreated",
        "orders.OrderCancelled",
    ]


@pytest.mark.parametrize(
    "reply",
    [
        (services.order_record_stock_result, {"reserved": True}),
        (services.order_record_stock_result, {"reserved": False}),
        (services.order_record_payment_result, {"captured": True}),
        (services.order_record_payment_result, {"captured": False}),
    ],
    ids=["stock-ok", "stock-failed", "payment-ok", "payment-failed"],
)
def test_a_reply_for_a_cancelled_order_does_not_fit_and_changes_nothing(reply):
    # given
    order = pending_order()
    services.order_cancel(order_id=order.pk, customer_id=7)
    before = Order.objects.values().get(pk=order.pk)

    # when / then
    func, kwargs = reply
    with pytest.raises(Conflict):
        func(order_id=order.pk, **kwargs)
    assert Order.objects.values().get(pk=order.pk) == before
    assert [event for event, _ in order_events(order.pk)] == [
        "orders.OrderCreated",
        "orders.OrderCancelled",
    ]


def test_a_reply_for_an_unknown_order_is_not_found():
    with pytest.raises(NotFound):
        services.order_record_stock_result(order_id=999_999, reserved=True)


# --- cancelling and shipping -----------------------------------------------------------


def confirmed_order() -> Order:
    order = pending_order()
    services.order_record_stock_result(order_id=order.pk, reserved=True)
    services.order_record_payment_result(order_id=order.pk, captured=True)
    order.refresh_from_db()
    return order


def test_customer_cancels_a_pending_order_at_once():
    order = pending_order()

    cancelled = services.order_cancel(order_id=order.pk, customer_id=7)

    assert cancelled.status == Order.Status.CANCELLED
    assert (cancelled.cancel_reason_code, cancelled.deadline_at) == ("customer_request", None)
    assert order_events(order.pk)[-1] == (
        "orders.OrderCancelled",
        {
            "order_id": order.pk,
            "customer_id": 7,
            "reason": services.CUSTOMER_CANCEL_REASON,
            "reason_code": "customer_request",
            "previous_status": "PENDING",
        },
    )


def test_cancelling_a_confirmed_order_asks_shipping_and_holds_it_cancelling(settings):
    settings.ORDERS_DEADLINE_S = 60.0
    order = confirmed_order()

    # when
    before = timezone.now()
    cancelling = services.order_cancel(order_id=order.pk, customer_id=7)
    again = services.order_cancel(order_id=order.pk, reason=services.STAFF_CANCEL_REASON)

    # then: no OrderCancelled yet (nothing is given back), one request to shipping
    assert cancelling.status == again.status == Order.Status.CANCELLING
    assert cancelling.cancel_reason_code == "customer_request"
    assert before + timedelta(seconds=59) < cancelling.deadline_at < before + timedelta(seconds=61)
    assert order_events(order.pk)[-1] == (
        "orders.OrderCancellationRequested",
        {
            "order_id": order.pk,
            "customer_id": 7,
            "reason": services.CUSTOMER_CANCEL_REASON,
            "deadline_at": cancelling.deadline_at.isoformat(),
        },
    )
    assert [event for event, _ in order_events(order.pk)].count("orders.OrderCancelled") == 0


def test_shipment_cancelled_ends_a_cancelling_order_cancelled():
    order = confirmed_order()
    services.order_cancel(order_id=order.pk, customer_id=7)

    cancelled = services.order_record_shipment_cancelled(order_id=order.pk)

    assert (cancelled.status, cancelled.deadline_at) == (Order.Status.CANCELLED, None)
    assert order_events(order.pk)[-1] == (
        "orders.OrderCancelled",
        {
            "order_id": order.pk,
            "customer_id": 7,
            "reason": services.CUSTOMER_CANCEL_REASON,
            "reason_code": "customer_request",
            "previous_status": "CANCELLING",
        },
    )


def test_dispatch_that_came_first_ends_a_cancelling_order_shipped_and_says_so():
    order = confirmed_order()
    services.order_cancel(order_id=order.pk, customer_id=7)

    shipped = services.order_mark_shipped(order_id=order.pk)

    assert (shipped.status, shipped.cancel_reason_code, shipped.deadline_at) == (
        Order.Status.SHIPPED,
        "",
        None,
    )
    assert order_events(order.pk)[-1] == (
        "orders.OrderCancellationRefused",
        {
            "order_id": order.pk,
            "customer_id": 7,
            "reason": services.ALREADY_SHIPPED_REASON,
            "reason_code": "already_shipped",
            "status": "SHIPPED",
        },
    )
    with pytest.raises(Conflict):
        services.order_record_shipment_cancelled(order_id=order.pk)


@pytest.mark.parametrize(
    ("reason", "status"), [("dispatched", "SHIPPED"), ("expired", "CONFIRMED")]
)
def test_shippings_refusal_resolves_a_cancelling_order(reason, status):
    order = confirmed_order()
    services.order_cancel(order_id=order.pk, customer_id=7)

    resolved = services.order_record_cancellation_refused(order_id=order.pk, reason=reason)

    assert resolved.status == status
    assert order_events(order.pk)[-1][0] == "orders.OrderCancellationRefused"
    with pytest.raises(Conflict):
        services.order_record_cancellation_refused(order_id=order.pk, reason=reason)


# --- deadlines ---------------------------------------------------------------------------


def test_a_pending_order_past_its_deadline_is_cancelled_with_reason_timeout():
    order = pending_order()
    services.order_record_stock_result(order_id=order.pk, reserved=True)

    # when
    early = services.order_expire(order_id=order.pk)
    late = services.order_expire(order_id=order.pk, now=order.deadline_at + timedelta(seconds=1))

    # then
    assert early is None
    assert (late.status, late.cancel_reason_code, late.cancel_reason) == (
        Order.Status.CANCELLED,
        "timeout",
        "No answer in time from payment.",
    )
    assert order_events(order.pk)[-1][1]["reason_code"] == "timeout"
    assert services.order_expire(order_id=order.pk, now=timezone.now() + timedelta(days=1)) is None


def test_a_cancelling_order_past_its_deadline_keeps_its_shipment_and_goes_back_to_confirmed():
    order = confirmed_order()
    cancelling = services.order_cancel(order_id=order.pk, customer_id=7)

    # when
    confirmed = services.order_expire(
        order_id=order.pk, now=cancelling.deadline_at + timedelta(seconds=1)
    )

    # then: never cancelled without shipping's word; the customer is told
    assert (confirmed.status, confirmed.cancel_reason_code, confirmed.deadline_at) == (
        Order.Status.CONFIRMED,
        "",
        None,
    )
    assert order_events(order.pk)[-1] == (
        "orders.OrderCancellationRefused",
        {
            "order_id": order.pk,
            "customer_id": 7,
            "reason": services.CANCEL_TIMEOUT_REASON,
            "reason_code": "timeout",
            "status": "CONFIRMED",
        },
    )
    # a shipment cancelled just before the deadline still cancels it
    cancelled = services.order_record_shipment_cancelled(order_id=order.pk)
    assert cancelled.status == Order.Status.CANCELLED
    assert cancelled.cancel_reason == services.LATE_SHIPMENT_CANCEL_REASON


def test_expire_overdue_resolves_only_the_orders_past_their_deadline():
    overdue, waiting, confirmed = pending_order(), pending_order(), confirmed_order()
    Order.objects.filter(pk=overdue.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))

    assert services.order_expire_overdue() == 1

    statuses = dict(
        Order.objects.filter(pk__in=[overdue.pk, waiting.pk, confirmed.pk]).values_list(
            "pk", "status"
        )
    )
    assert statuses == {overdue.pk: "CANCELLED", waiting.pk: "PENDING", confirmed.pk: "CONFIRMED"}


def test_staff_cancel_any_order():
    order = pending_order()

    services.order_cancel(order_id=order.pk, reason=services.STAFF_CANCEL_REASON)

    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("CANCELLED", "Cancelled by staff.")


def test_cancelling_someone_elses_order_is_not_found_and_changes_nothing():
    order = pending_order()

    with pytest.raises(NotFound):
        services.order_cancel(order_id=order.pk, customer_id=8)

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert [event for event, _ in order_events(order.pk)] == ["orders.OrderCreated"]


def test_cancelling_a_shipped_or_cancelled_order_is_a_conflict():
    # given
    shipped = confirmed_order()
    services.order_mark_shipped(order_id=shipped.pk)
    cancelled = place(7, [("SKU-1", 1)])
    services.order_cancel(order_id=cancelled.pk, customer_id=7)

    # when / then
    for order, status in ((shipped, "SHIPPED"), (cancelled, "CANCELLED")):
        events_before = order_events(order.pk)
        with pytest.raises(Conflict):
            services.order_cancel(order_id=order.pk, customer_id=7)
        order.refresh_from_db()
        assert order.status == status
        assert order_events(order.pk) == events_before


def test_mark_shipped_moves_a_confirmed_order_and_publishes_nothing():
    order = confirmed_order()
    events_before = order_events(order.pk)

    services.order_mark_shipped(order_id=order.pk)

    order.refresh_from_db()
    assert order.status == Order.Status.SHIPPED
    assert order_events(order.pk) == events_before


@pytest.mark.parametrize("status", ["PENDING", "CANCELLED", "SHIPPED"])
def test_mark_shipped_does_not_fit_other_states(status):
    order = confirmed_order() if status == "SHIPPED" else pending_order()
    if status == "SHIPPED":
        services.order_mark_shipped(order_id=order.pk)
    if status == "CANCELLED":
        services.order_cancel(order_id=order.pk)

    with pytest.raises(Conflict):
        services.order_mark_shipped(order_id=order.pk)

    order.refresh_from_db()
    assert order.status == status


def test_a_failed_service_leaves_the_callers_transaction_usable():
    # Handlers call services inside their own transaction and swallow Conflict.
    order = pending_order()
    services.order_cancel(order_id=order.pk)

    with transaction.atomic():
        with pytest.raises(Conflict):
            services.order_record_payment_result(order_id=order.pk, captured=True)
        seed_product("SKU-3", name="Thing", price="1.00")

    assert CatalogueItem.objects.filter(sku="SKU-3").exists()


# --- the catalogue replica ---------------------------------------------------------------


def test_catalogue_upsert_creates_then_updates_one_row():
    services.catalogue_upsert(sku="SKU-9", name="Nine", price="9.90")
    services.catalogue_upsert(sku="SKU-9", name="Nine (new)", price="8.00")

    item = CatalogueItem.objects.get(sku="SKU-9")
    assert (item.name, item.price) == ("Nine (new)", Decimal("8.00"))


@pytest.mark.parametrize("price", ["-1.00", "abc", "NaN", "Infinity"])
def test_catalogue_upsert_rejects_a_bad_price(price):
    with pytest.raises(DomainError):
        services.catalogue_upsert(sku="SKU-9", name="Nine", price=price)

    assert not CatalogueItem.objects.filter(sku="SKU-9").exists()


# --- the saga's duration -------------------------------------------------------------------


def _saga_count(outcome: str) -> float:
    from prometheus_client import REGISTRY

    return (
        REGISTRY.get_sample_value("shop_saga_duration_seconds_count", {"outcome": outcome}) or 0.0
    )


@pytest.mark.django_db(transaction=True)
def test_the_saga_duration_is_observed_once_the_outcome_commits():
    # given a placed order
    seed_product()
    order = place(7, [("SKU-1", 1)])
    confirmed, cancelled = _saga_count("confirmed"), _saga_count("cancelled")

    # when its stock is reserved inside a transaction that rolls back, nothing is observed
    with pytest.raises(RuntimeError), transaction.atomic():
        services.order_record_payment_result(order_id=order.pk, captured=True)
        services.order_record_stock_result(order_id=order.pk, reserved=True)
        raise RuntimeError("rolled back")
    assert _saga_count("confirmed") == confirmed

    # when it is confirmed for real, then cancelled on request
    services.order_record_payment_result(order_id=order.pk, captured=True)
    services.order_record_stock_result(order_id=order.pk, reserved=True)
    other = place(8, [("SKU-1", 1)])
    services.order_cancel(order_id=other.pk)

    # then one observation per outcome
    assert _saga_count("confirmed") == confirmed + 1
    assert _saga_count("cancelled") == cancelled + 1
