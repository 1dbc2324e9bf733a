from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from inventory import services
from inventory.models import Product
from outbox.models import OutboxEvent
from shop.tests.clients import client_for


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def customer(db) -> APIClient:
    return client_for(get_user_model().objects.create_user("carol", password="pw"))


@pytest.fixture
def staff(db) -> APIClient:
    return client_for(get_user_model().objects.create_user("sam", password="pw", is_staff=True))


@pytest.fixture
def catalogue(db) -> None:
    services.product_create(sku="MUG", name="Mug", price=Decimal("12.50"), stock=5)
    services.product_create(sku="TEE", name="T-shirt", price=Decimal("20"), stock=2)
    services.stock_reserve_for_order(order_id=1, lines=[services.LineRequest("MUG", 2)])


def product_events(sku: str) -> list:
    return list(
        OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=sku).values_list(
            "event_type", "payload"
        )
    )


def test_catalogue_is_public_and_paginated(anonymous, catalogue):
    response = anonymous.get("/api/products/")

    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {"sku": "MUG", "name": "Mug", "price": "12.50", "available": 3},
            {"sku": "TEE", "name": "T-shirt", "price": "20.00", "available": 2},
        ],
    }


def test_staff_see_stock_levels(staff, catalogue):
    response = staff.get("/api/products/MUG/")

    assert response.status_code == 200
    assert response.json() == {
        "sku": "MUG",
        "name": "Mug",
        "price": "12.50",
        "available": 3,
        "on_hand": 5,
        "reserved": 2,
    }


def test_product_detail(customer, catalogue):
    response = customer.get("/api/products/TEE/")

    assert response.status_code == 200
    assert response.json() == {"sku": "TEE", "name": "T-shirt", "price": "20.00", "available": 2}


def test_product_detail_unknown_sku_is_404(anonymous, db):
    response = anonymous.get("/api/products/NOPE/")

    assert response.status_code == 404


def test_staff_create_product(staff):
    response = staff.post(
        "/api/products/",
        {"sku": "CAP", "name": "Cap", "price": "9.90", "stock": 4},
        format="json",
    )

    assert response.status_code == 201
    assert response.json() == {
        "sku": "CAP",
        "name": "Cap",
        "price": "9.90",
        "available": 4,
        "on_hand": 4,
        "reserved": 0,
    }
    assert [t for t, _ in product_events("CAP")] == [
        "inventory.ProductChanged",
        "inventory.StockUpdated",
    ]


@pytest.mark.parametrize(("client_name", "status"), [("anonymous", 401), ("customer", 403)])
def test_only_staff_create_products(request, db, client_name, status):
    client = request.getfixturevalue(client_name)

    response = client.post(
        "/api/products/", {"sku": "CAP", "name": "Cap", "price": "9.90", "stock": 4}, format="json"
    )

    assert response.status_code == status
    assert not Product.objects.filter(sku="CAP").exists()
    assert product_events("CAP") == []


def test_create_duplicate_sku_is_a_field_error(staff, catalogue):
    response = staff.post(
        "/api/products/",
        {"sku": "MUG", "name": "Mug 2", "price": "1.00", "stock": 1},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["sku"] == ["A product with this SKU exists already."]
    assert Product.objects.get(sku="MUG").name == "Mug"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"sku", "name", "price", "stock"}),
        ({"sku": "a b", "name": "x", "price": "1", "stock": 1}, {"sku"}),
        ({"sku": "CAP", "name": "x", "price": "-1", "stock": 1}, {"price"}),
        ({"sku": "CAP", "name": "x", "price": "abc", "stock": 1}, {"price"}),
        ({"sku": "CAP", "name": "x", "price": "1.001", "stock": 1}, {"price"}),
        ({"sku": "CAP", "name": "x", "price": "1", "stock": -1}, {"stock"}),
        ({"sku": "CAP", "name": "x", "price": "1", "stock": 1.5}, {"stock"}),
        ({"sku": "CAP", "name": "", "price": "1", "stock": 1}, {"name"}),
    ],
)
def test_create_bad_input_is_400_with_field_messages(staff, body, fields):
    response = staff.post("/api/products/", body, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body.pop("code") == "invalid"
    assert body.pop("detail")
    assert set(body) == fields
    assert all(isinstance(messages, list) and messages for messages in body.values())
    assert not Product.objects.exists()


def test_create_malformed_json_is_400(staff):
    response = staff.post("/api/products/", '{"sku": ', content_type="application/json")

    assert response.status_code == 400
    assert not Product.objects.exists()


def test_staff_restock(staff, catalogue):
    response = staff.post("/api/products/TEE/restock/", {"quantity": 3}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "sku": "TEE",
        "name": "T-shirt",
        "price": "20.00",
        "available": 5,
        "on_hand": 5,
        "reserved": 0,
    }
    assert product_events("TEE")[-1] == (
        "inventory.StockUpdated",
        {"sku": "TEE", "on_hand": 5, "reserved": 0, "available": 5},
    )


@pytest.mark.parametrize("quantity", [0, -1, "x", 2.5, None])
def test_restock_bad_quantity_is_400(staff, catalogue, quantity):
    before = product_events("TEE")

    response = staff.post("/api/products/TEE/restock/", {"quantity": quantity}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["quantity", "detail", "code"]
    assert Product.objects.get(sku="TEE").on_hand == 2
    assert product_events("TEE") == before


def test_restock_unknown_sku_is_404(staff, db):
    response = staff.post("/api/products/NOPE/restock/", {"quantity": 3}, format="json")

    assert response.status_code == 404


@pytest.mark.parametrize(("client_name", "status"), [("anonymous", 401), ("customer", 403)])
def test_only_staff_restock(request, catalogue, client_name, status):
    client = request.getfixturevalue(client_name)

    response = client.post("/api/products/TEE/restock/", {"quantity": 3}, format="json")

    assert response.status_code == status
    assert Product.objects.get(sku="TEE").on_hand == 2


def test_the_schema_describes_each_audiences_product_shape(db):
    # given
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]

    # when
    public, staff = components["Product"], components["StaffProduct"]
    either = components["ProductForAudience"]["oneOf"]

    # then: the public shape never promises stock levels; the staff shape does
    assert set(public["required"]) == {"sku", "name", "price", "available"}
    assert public["additionalProperties"] is False
    assert {"on_hand", "reserved"} <= set(staff["required"])
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in either} == {"Product", "StaffProduct"}
    detail = schema["paths"]["/api/products/{sku}/"]["get"]["responses"]["200"]
    assert detail["content"]["application/json"]["schema"]["$ref"].endswith("ProductForAudience")
    page = components["PaginatedProducts"]["properties"]["results"]["items"]
    assert page["$ref"].endswith("ProductForAudience")
