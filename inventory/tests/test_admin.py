from decimal import Decimal

import pytest

from inventory import services
from inventory.models import Product, Reservation
from outbox.models import OutboxEvent


def product_event_types(sku: str) -> list[str]:
    return list(
        OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=sku).values_list(
            "event_type", flat=True
        )
    )


@pytest.mark.django_db
def test_admin_add_goes_through_the_service(admin_client):
    response = admin_client.post(
        "/admin/inventory/product/add/",
        {"sku": "CAP", "name": "Cap", "price": "9.90", "stock": "4"},
    )

    assert response.status_code == 302
    product = Product.objects.get(sku="CAP")
    assert (product.name, product.price, product.on_hand) == ("Cap", Decimal("9.90"), 4)
    assert product_event_types("CAP") == ["inventory.ProductChanged", "inventory.StockUpdated"]


@pytest.mark.django_db
def test_admin_add_duplicate_sku_is_refused(admin_client):
    services.product_create(sku="CAP", name="Cap", price=Decimal("9.90"), stock=4)

    response = admin_client.post(
        "/admin/inventory/product/add/",
        {"sku": "CAP", "name": "Other", "price": "1.00", "stock": "1"},
    )

    assert response.status_code == 200
    assert "sku" in response.context["adminform"].form.errors
    assert Product.objects.get(sku="CAP").name == "Cap"


@pytest.mark.django_db
def test_admin_change_goes_through_the_service_and_leaves_stock_alone(admin_client):
    product = services.product_create(sku="CAP", name="Cap", price=Decimal("9.90"), stock=4)

    response = admin_client.post(
        f"/admin/inventory/product/{product.pk}/change/",
        {"name": "Sun cap", "price": "11.00", "on_hand": "999", "reserved": "5"},
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.name, product.price, product.on_hand, product.reserved) == (
        "Sun cap",
        Decimal("11.00"),
        4,
        0,
    )
    assert product_event_types("CAP")[-1] == "inventory.ProductChanged"


@pytest.mark.django_db
def test_admin_restock_action(admin_client):
    cap = services.product_create(sku="CAP", name="Cap", price=Decimal("9.90"), stock=4)
    mug = services.product_create(sku="MUG", name="Mug", price=Decimal("5.00"), stock=0)
    selection = {"action": "restock", "_selected_action": [cap.pk, mug.pk]}

    # the action first asks for the quantity
    form_page = admin_client.post("/admin/inventory/product/", selection)
    assert form_page.status_code == 200
    assert b"Restock" in form_page.content
    assert Product.objects.get(sku="CAP").on_hand == 4

    response = admin_client.post(
        "/admin/inventory/product/", {**selection, "apply": "Restock", "quantity": "3"}
    )

    assert response.status_code == 302
    assert Product.objects.get(sku="CAP").on_hand == 7
    assert Product.objects.get(sku="MUG").on_hand == 3
    assert product_event_types("MUG")[-1] == "inventory.StockUpdated"


@pytest.mark.django_db
def test_admin_lists_and_reservations_are_read_only(admin_client):
    services.product_create(sku="CAP", name="Cap", price=Decimal("9.90"), stock=4)
    reservation = services.stock_reserve_for_order(
        order_id=77, lines=[services.LineRequest("CAP", 1)]
    )

    assert admin_client.get("/admin/inventory/product/?availability=in_stock").status_code == 200
    assert admin_client.get("/admin/inventory/reservation/?q=77").status_code == 200
    assert admin_client.get("/admin/inventory/reservation/?q=CAP").status_code == 200
    assert (
        admin_client.get(f"/admin/inventory/reservation/{reservation.pk}/change/").status_code
        == 200
    )
    assert admin_client.get("/admin/inventory/reservation/add/").status_code == 403
    response = admin_client.post(
        f"/admin/inventory/reservation/{reservation.pk}/change/", {"status": "RELEASED"}
    )
    assert response.status_code == 403
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.HELD
