from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from inventory import services
from inventory.models import Product, Reservation
from inventory.services import LineRequest
from outbox.models import OutboxEvent
from shop.errors import DomainError, NotFound


def events_for(aggregate_type: str, aggregate_id) -> list[tuple[str, dict]]:
    return list(
        OutboxEvent.objects.filter(aggregate_type=aggregate_type, aggregate_id=str(aggregate_id))
        .order_by("id")
        .values_list("event_type", "payload")
    )


def make_product(sku: str = "MUG", *, stock: int = 10, price: str = "12.50") -> Product:
    return services.product_create(sku=sku, name=f"{sku} name", price=Decimal(price), stock=stock)


def stock_of(sku: str) -> tuple[int, int]:
    product = Product.objects.get(sku=sku)
    return product.on_hand, product.reserved


@pytest.mark.django_db
def test_product_create_publishes_product_and_stock():
    # when
    product = services.product_create(sku="MUG", name="Mug", price=Decimal("12.5"), stock=7)

    # then
    assert (product.sku, product.name, product.price, product.on_hand, product.reserved) == (
        "MUG",
        "Mug",
        Decimal("12.50"),
        7,
        0,
    )
    assert events_for("product", "MUG") == [
        ("inventory.ProductChanged", {"sku": "MUG", "name": "Mug", "price": "12.50"}),
        (
            "inventory.StockUpdated",
            {"sku": "MUG", "on_hand": 7, "reserved": 0, "available": 7},
        ),
    ]


@pytest.mark.django_db
def test_product_create_duplicate_sku_is_a_field_error_and_writes_nothing():
    make_product("MUG", stock=3)
    before = events_for("product", "MUG")

    with pytest.raises(DomainError) as excinfo:
        services.product_create(sku="MUG", name="Other", price=Decimal("1.00"), stock=5)

    assert excinfo.value.field == "sku"
    assert Product.objects.get(sku="MUG").name == "MUG name"
    assert events_for("product", "MUG") == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("price", "stock", "field"),
    [(Decimal("-1"), 1, "price"), (Decimal("1"), -1, "stock")],
)
def test_product_create_rejects_negative_values(price, stock, field):
    with pytest.raises(DomainError) as excinfo:
        services.product_create(sku="BAD", name="Bad", price=price, stock=stock)

    assert excinfo.value.field == field
    assert not Product.objects.filter(sku="BAD").exists()
    assert events_for("product", "BAD") == []


@pytest.mark.django_db
def test_product_update_publishes_only_when_something_changed():
    make_product("MUG")

    services.product_update(sku="MUG", name="Big mug", price=Decimal("14.00"))
    services.product_update(sku="MUG", name="Big mug", price=Decimal("14.00"))

    product = Product.objects.get(sku="MUG")
    assert (product.name, product.price) == ("Big mug", Decimal("14.00"))
    changes = [p for t, p in events_for("product", "MUG") if t == "inventory.ProductChanged"]
    assert changes == [
        {"sku": "MUG", "name": "MUG name", "price": "12.50"},
        {"sku": "MUG", "name": "Big mug", "price": "14.00"},
    ]


@pytest.mark.django_db
def test_product_update_unknown_sku_raises_not_found():
    with pytest.raises(NotFound):
        services.product_update(sku="NOPE", name="x")


@pytest.mark.django_db
def test_stock_restock_adds_on_hand_and_publishes():
    make_product("MUG", stock=2)

    product = services.stock_restock(sku="MUG", quantity=5)

    assert (product.on_hand, product.reserved) == (7, 0)
    assert events_for("product", "MUG")[-1] == (
        "inventory.StockUpdated",
        {"sku": "MUG", "on_hand": 7, "reserved": 0, "available": 7},
    )


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", [0, -3, True, 1.5])
def test_stock_restock_rejects_non_positive_quantity(quantity):
    make_product("MUG", stock=2)
    before = events_for("product", "MUG")

    with pytest.raises(DomainError) as excinfo:
        services.stock_restock(sku="MUG", quantity=quantity)

    assert excinfo.value.field == "quantity"
    assert stock_of("MUG") == (2, 0)
    assert events_for("product", "MUG") == before


@pytest.mark.django_db
def test_stock_restock_unknown_sku_raises_not_found():
    with pytest.raises(NotFound):
        services.stock_restock(sku="NOPE", quantity=1)


@pytest.mark.django_db
def test_reserve_holds_every_line_and_publishes():
    # given
    make_product("MUG", stock=5)
    make_product("TEE", stock=3)

    # when
    reservation = services.stock_reserve_for_order(
        order_id=41,
        lines=[LineRequest("TEE", 2), LineRequest("MUG", 1), LineRequest("MUG", 2)],
    )

    # then
    assert reservation.status == Reservation.Status.HELD
    assert sorted(reservation.lines.values_list("sku", "quantity")) == [("MUG", 3), ("TEE", 2)]
    assert stock_of("MUG") == (5, 3)
    assert stock_of("TEE") == (3, 2)
    assert events_for("reservation", 41) == [
        (
            "inventory.StockReserved",
            {
                "order_id": 41,
                "lines": [{"sku": "TEE", "quantity": 2}, {"sku": "MUG", "quantity": 3}],
            },
        )
    ]
    assert events_for("product", "MUG")[-1] == (
        "inventory.StockUpdated",
        {"sku": "MUG", "on_hand": 5, "reserved": 3, "available": 2},
    )
    assert events_for("product", "TEE")[-1] == (
        "inventory.StockUpdated",
        {"sku": "TEE", "on_hand": 3, "reserved": 2, "available": 1},
    )


@pytest.mark.django_db
def test_reserve_is_all_or_nothing_and_records_the_failure():
    # given
    make_product("MUG", stock=5)
    make_product("TEE", stock=1)
    mug_events = events_for("product", "MUG")

    # when
    reservation = services.stock_reserve_for_order(
        order_id=42,
        lines=[LineRequest("MUG", 2), LineRequest("TEE", 2), LineRequest("GHOST", 1)],
    )

    # then nothing is held
    assert reservation.status == Reservation.Status.FAILED
    assert stock_of("MUG") == (5, 0)
    assert stock_of("TEE") == (1, 0)
    assert events_for("product", "MUG") == mug_events
    assert events_for("reservation", 42) == [
        (
            "inventory.StockReservationFailed",
            {
                "order_id": 42,
                "reason": "Not enough stock for TEE (requested 2, available 1), "
                "GHOST (requested 1, available 0)",
                "unavailable": [
                    {"sku": "TEE", "requested": 2, "available": 1},
                    {"sku": "GHOST", "requested": 1, "available": 0},
                ],
            },
        )
    ]


@pytest.mark.django_db
def test_reserve_counts_stock_held_by_other_orders():
    make_product("MUG", stock=3)
    services.stock_reserve_for_order(order_id=1, lines=[LineRequest("MUG", 2)])

    reservation = services.stock_reserve_for_order(order_id=2, lines=[LineRequest("MUG", 2)])

    assert reservation.status == Reservation.Status.FAILED
    assert events_for("reservation", 2)[0][1]["unavailable"] == [
        {"sku": "MUG", "requested": 2, "available": 1}
    ]
    assert stock_of("MUG") == (3, 2)


@pytest.mark.django_db
def test_reserve_twice_for_one_order_does_nothing_the_second_time():
    make_product("MUG", stock=5)
    first = services.stock_reserve_for_order(order_id=7, lines=[LineRequest("MUG", 2)])
    before = (events_for("reservation", 7), events_for("product", "MUG"))

    second = services.stock_reserve_for_order(order_id=7, lines=[LineRequest("MUG", 2)])

    assert second.pk == first.pk
    assert stock_of("MUG") == (5, 2)
    assert (events_for("reservation", 7), events_for("product", "MUG")) == before


@pytest.mark.django_db
def test_reserve_after_a_recorded_failure_does_nothing():
    make_product("MUG", stock=1)
    services.stock_reserve_for_order(order_id=8, lines=[LineRequest("MUG", 2)])
    services.stock_restock(sku="MUG", quantity=5)

    again = services.stock_reserve_for_order(order_id=8, lines=[LineRequest("MUG", 2)])

    assert again.status == Reservation.Status.FAILED
    assert stock_of("MUG") == (6, 0)
    assert [t for t, _ in events_for("reservation", 8)] == ["inventory.StockReservationFailed"]


@pytest.mark.django_db
@pytest.mark.parametrize("lines", [[], [LineRequest("MUG", 0)], [LineRequest("MUG", -1)]])
def test_reserve_rejects_malformed_lines(lines):
    make_product("MUG", stock=5)

    with pytest.raises(DomainError):
        services.stock_reserve_for_order(order_id=9, lines=lines)

    assert not Reservation.objects.filter(order_id=9).exists()
    assert stock_of("MUG") == (5, 0)


@pytest.mark.django_db
def test_release_gives_back_held_stock_once():
    make_product("MUG", stock=5)
    services.stock_reserve_for_order(order_id=10, lines=[LineRequest("MUG", 3)])

    released = services.stock_release_for_order(order_id=10)
    again = services.stock_release_for_order(order_id=10)

    assert released.status == again.status == Reservation.Status.RELEASED
    assert stock_of("MUG") == (5, 0)
    assert events_for("reservation", 10)[1:] == [
        ("inventory.StockReleased", {"order_id": 10, "lines": [{"sku": "MUG", "quantity": 3}]})
    ]
    assert events_for("product", "MUG")[-1] == (
        "inventory.StockUpdated",
        {"sku": "MUG", "on_hand": 5, "reserved": 0, "available": 5},
    )


@pytest.mark.django_db
def test_release_without_a_held_reservation_does_nothing():
    make_product("MUG", stock=1)
    services.stock_reserve_for_order(order_id=11, lines=[LineRequest("MUG", 2)])  # fails

    assert services.stock_release_for_order(order_id=11).status == Reservation.Status.FAILED
    assert services.stock_release_for_order(order_id=999) is None
    assert [t for t, _ in events_for("reservation", 11)] == ["inventory.StockReservationFailed"]
    assert stock_of("MUG") == (1, 0)


@pytest.mark.django_db
def test_fulfil_takes_held_stock_out_once():
    make_product("MUG", stock=5)
    services.stock_reserve_for_order(order_id=12, lines=[LineRequest("MUG", 3)])

    fulfilled = services.stock_fulfil_for_order(order_id=12)
    services.stock_fulfil_for_order(order_id=12)

    assert fulfilled.status == Reservation.Status.FULFILLED
    assert stock_of("MUG") == (2, 0)
    assert events_for("product", "MUG")[-1] == (
        "inventory.StockUpdated",
        {"sku": "MUG", "on_hand": 2, "reserved": 0, "available": 2},
    )
    assert [t for t, _ in events_for("product", "MUG")].count("inventory.StockUpdated") == 3


@pytest.mark.django_db
def test_fulfil_after_release_and_release_after_fulfil_do_nothing():
    make_product("MUG", stock=5)
    services.stock_reserve_for_order(order_id=13, lines=[LineRequest("MUG", 1)])
    services.stock_reserve_for_order(order_id=14, lines=[LineRequest("MUG", 1)])
    services.stock_release_for_order(order_id=13)
    services.stock_fulfil_for_order(order_id=14)

    assert services.stock_fulfil_for_order(order_id=13).status == Reservation.Status.RELEASED
    assert services.stock_release_for_order(order_id=14).status == Reservation.Status.FULFILLED
    assert stock_of("MUG") == (4, 0)


@pytest.mark.django_db
def test_database_refuses_overselling_even_without_the_service():
    make_product("MUG", stock=2)

    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(sku="MUG").update(reserved=3)

    assert stock_of("MUG") == (2, 0)
