import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from orders import services
from orders.handlers import TIMELINE_EVENTS
from orders.models import IdempotencyKey, Order, TimelineEntry
from orders.tests.factories import (
    age_idempotency_key,
    confirm,
    order_events,
    order_shipped,
    payment_processed,
    place,
    seed_product,
    shipment_cancelled,
    stock_reserved,
    timeline_project,
)
from outbox.testing import deliver
from shop import vault
from shop.tests.clients import client_for

pytestmark = pytest.mark.django_db

URL = "/api/orders/"


@pytest.fixture(autouse=True)
def catalogue():
    seed_product("SKU-1", name="Widget", price="10.00")
    seed_product("SKU-2", name="Gadget", price="2.50")


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw-alice-123")


@pytest.fixture
def bob():
    return get_user_model().objects.create_user("bob", "bob@example.com", "pw-bob-123")


@pytest.fixture
def staff():
    return get_user_model().objects.create_user(
        "staff", "staff@example.com", "pw-staff-123", is_staff=True
    )


BODY = {"lines": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}]}


# --- placing -----------------------------------------------------------------------------


def test_place_returns_201_with_the_order(alice):
    # when
    response = client_for(alice).post(URL, BODY, format="json")

    # then
    assert response.status_code == 201, response.data
    order = Order.objects.get(customer_id=alice.pk)
    body = response.json()
    assert body == {
        "id": order.pk,
        "customer_id": alice.pk,
        "status": "PENDING",
        "cancel_reason": "",
        "cancel_reason_code": "",
        "lines": [
            {"sku": "SKU-1", "name": "Widget", "unit_price": "10.00", "quantity": 2},
            {"sku": "SKU-2", "name": "Gadget", "unit_price": "2.50", "quantity": 1},
        ],
        "total": "22.50",
        "currency": "EUR",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_at"].endswith("Z")
    assert response["Location"] == f"/api/orders/{order.pk}/"
    assert vault.payment_token_resolve(reference=order.payment_reference) == "tok_visa"
    assert [event for event, _ in order_events(order.pk)] == ["orders.OrderCreated"]


def test_place_passes_the_payment_token_on(alice):
    response = client_for(alice).post(
        URL, {**BODY, "payment_token": "tok_chargeDeclined"}, format="json"
    )

    assert response.status_code == 201
    payload = order_events(response.data["id"])[0][1]
    # the event carries a reference that payments resolves, never the token itself
    assert "tok_chargeDeclined" not in json.dumps(payload)
    assert vault.payment_token_resolve(reference=payload["payment_reference"]) == (
        "tok_chargeDeclined"
    )


def test_replay_with_the_same_key_and_body_returns_the_same_order_with_200(alice):
    client = client_for(alice)
    first = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    again = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Order.objects.filter(customer_id=alice.pk).count() == 1
    assert (
        IdempotencyKey.objects.get(customer_id=alice.pk, key="key-1").order_id == first.data["id"]
    )


def test_a_key_older_than_the_retention_places_a_new_order_with_201(alice, settings):
    # given
    settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 24
    client = client_for(alice)
    first = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    age_idempotency_key(alice.pk, "key-1", hours=25)

    # when
    again = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    # then
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.data["id"] != first.data["id"]
    assert Order.objects.filter(customer_id=alice.pk).count() == 2
    assert (
        IdempotencyKey.objects.get(customer_id=alice.pk, key="key-1").order_id == again.data["id"]
    )


def test_a_key_within_the_retention_still_returns_the_first_order_with_200(alice, settings):
    # given
    settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 24
    client = client_for(alice)
    first = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    age_idempotency_key(alice.pk, "key-1", hours=23)

    # when
    again = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    # then
    assert again.status_code == 200
    assert again.data["id"] == first.data["id"]
    assert Order.objects.filter(customer_id=alice.pk).count() == 1


def test_the_same_key_with_another_body_is_409_and_writes_nothing(alice):
    client = client_for(alice)
    first = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    other = client.post(
        URL,
        {"lines": [{"sku": "SKU-1", "quantity": 3}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )

    assert other.status_code == 409
    assert other.json()["code"] == "conflict"
    assert list(Order.objects.filter(customer_id=alice.pk).values_list("pk", flat=True)) == [
        first.data["id"]
    ]


def test_without_a_key_each_request_places_an_order(alice):
    client = client_for(alice)

    ids = {client.post(URL, BODY, format="json").data["id"] for _ in range(2)}

    assert len(ids) == 2


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "lines"),
        ({"lines": []}, "lines"),
        ({"lines": None}, "lines"),
        ({"lines": "SKU-1"}, "lines"),
        ({"lines": [{"sku": "SKU-1"}]}, "lines"),
        ({"lines": [{"sku": "SKU-1", "quantity": 0}]}, "lines"),
        ({"lines": [{"sku": "SKU-1", "quantity": -2}]}, "lines"),
        ({"lines": [{"sku": "SKU-1", "quantity": 101}]}, "lines"),
        ({"lines": [{"sku": "SKU-1", "quantity": 1.5}]}, "lines"),
        ({"lines": [{"sku": "SKU-1", "quantity": "2"}]}, "lines"),
        ({"lines": [{"sku": "SKU-1", "quantity": True}]}, "lines"),
        ({"lines": [{"sku": 1, "quantity": 1}]}, "lines"),
        ({"lines": [{"quantity": 1}]}, "lines"),
        ({"lines": [{"sku": "NOPE", "quantity": 1}]}, "lines"),
        ({"lines": [{"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-1", "quantity": 2}]}, "lines"),
        ({"lines": [{"sku": f"SKU-{i}", "quantity": 1} for i in range(51)]}, "lines"),
        ({**BODY, "payment_token": "t" * 101}, "payment_token"),
        ({**BODY, "payment_token": 42}, "payment_token"),
        ({**BODY, "payment_token": ""}, "payment_token"),
    ],
    ids=[
        "missing-lines",
        "empty-lines",
        "null-lines",
        "lines-not-a-list",
        "missing-quantity",
        "zero-quantity",
        "negative-quantity",
        "quantity-above-100",
        "fractional-quantity",
        "quantity-as-string",
        "quantity-as-bool",
        "sku-not-a-string",
        "missing-sku",
        "unknown-sku",
        "duplicate-sku",
        "51-lines",
        "token-too-long",
        "token-not-a-string",
        "token-blank",
    ],
)
def test_bad_input_is_400_with_a_field_message_and_writes_nothing(alice, body, field):
    response = client_for(alice).post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 400, response.data
    assert field in response.json()
    assert not Order.objects.filter(customer_id=alice.pk).exists()
    assert not IdempotencyKey.objects.filter(customer_id=alice.pk).exists()


def test_the_unknown_sku_message_names_it(alice):
    response = client_for(alice).post(
        URL, {"lines": [{"sku": "NOPE", "quantity": 1}]}, format="json"
    )

    assert response.json() == {
        "lines": ["unknown sku: NOPE"],
        "detail": "unknown sku: NOPE",
        "code": "invalid",
    }


def test_malformed_json_is_400_and_writes_nothing(alice):
    response = client_for(alice).post(URL, data='{"lines": [', content_type="application/json")

    assert response.status_code == 400
    assert not Order.objects.filter(customer_id=alice.pk).exists()


def test_a_too_long_idempotency_key_is_400(alice):
    response = client_for(alice).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Order.objects.filter(customer_id=alice.pk).exists()


def test_anonymous_requests_are_401_and_write_nothing(alice):
    order = place(alice.pk)
    anonymous = client_for()

    responses = [
        anonymous.post(URL, BODY, format="json"),
        anonymous.get(URL),
        anonymous.get(f"{URL}{order.pk}/"),
        anonymous.post(f"{URL}{order.pk}/cancel/"),
    ]

    assert [response.status_code for response in responses] == [401, 401, 401, 401]
    assert Order.objects.count() == Order.objects.filter(pk=order.pk).count() == 1
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING


def test_token_authentication_works(alice):
    from shop.services import auth_token_issue

    token = auth_token_issue(user=alice).token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.post(URL, BODY, format="json").status_code == 201


# --- reading -----------------------------------------------------------------------------


def test_list_shows_only_my_orders_newest_first_paginated(alice, bob):
    mine = [place(alice.pk), place(alice.pk)]
    place(bob.pk)

    response = client_for(alice).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    assert [order["id"] for order in body["results"]] == [mine[1].pk, mine[0].pk]
    assert body["results"][0]["lines"] == [
        {"sku": "SKU-1", "name": "Widget", "unit_price": "10.00", "quantity": 2}
    ]


def test_staff_list_every_order_and_can_filter_by_status(alice, bob, staff):
    a, b = place(alice.pk), place(bob.pk)
    services.order_cancel(order_id=b.pk)

    everything = client_for(staff).get(URL).json()
    cancelled = client_for(staff).get(URL, {"status": "CANCELLED"}).json()

    assert {order["id"] for order in everything["results"]} >= {a.pk, b.pk}
    assert [order["id"] for order in cancelled["results"]] == [b.pk]


def test_a_bad_status_filter_is_400(alice):
    assert client_for(alice).get(URL, {"status": "LOST"}).status_code == 400


def test_list_pages_by_the_configured_page_size(alice):
    # given: one more order than a page holds (PAGE_SIZE 50)
    for _ in range(51):
        place(alice.pk, [("SKU-1", 1)])
    client = client_for(alice)

    # when
    first = client.get(URL).json()
    second = client.get(URL, {"page": 2}).json()

    # then
    assert (first["count"], len(first["results"]), second["count"]) == (51, 50, 51)
    assert first["next"].endswith("/api/orders/?page=2")
    assert (len(second["results"]), second["next"]) == (1, None)
    assert second["previous"] is not None


def test_detail_shows_status_lines_and_the_timeline_in_sequence_order(alice):
    # given
    order = place(alice.pk, [("SKU-1", 2)])
    for sequence, event_type in [(30, "payments.PaymentProcessed"), (10, "orders.OrderCreated")]:
        deliver(
            "orders-timeline",
            event_type,
            {"order_id": order.pk, "marker": sequence},
            aggregate_type="test",
            aggregate_id=order.pk,
            version=TIMELINE_EVENTS[event_type],
        )
        TimelineEntry.objects.filter(order_id=order.pk, event_type=event_type).update(
            sequence=sequence
        )

    # when
    response = client_for(alice).get(f"{URL}{order.pk}/")

    # then
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["cancel_reason"], body["total"]) == (
        order.pk,
        "PENDING",
        "",
        "20.00",
    )
    assert body["lines"] == [
        {"sku": "SKU-1", "name": "Widget", "unit_price": "10.00", "quantity": 2}
    ]
    assert [(entry["type"], entry["data"]) for entry in body["timeline"]] == [
        ("orders.OrderCreated", {"order_id": order.pk, "marker": 10}),
        ("payments.PaymentProcessed", {"order_id": order.pk, "marker": 30}),
    ]
    assert all(entry["occurred_at"].endswith("Z") for entry in body["timeline"])


def test_someone_elses_order_is_404_and_staff_see_it(alice, bob, staff):
    order = place(bob.pk)

    assert client_for(alice).get(f"{URL}{order.pk}/").status_code == 404
    assert client_for(staff).get(f"{URL}{order.pk}/").status_code == 200


def test_a_missing_order_is_404(alice):
    assert client_for(alice).get(f"{URL}999999/").status_code == 404


# --- cancelling ----------------------------------------------------------------------------


def test_cancel_my_pending_order(alice):
    order = place(alice.pk)

    response = client_for(alice).post(f"{URL}{order.pk}/cancel/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["cancel_reason"], body["cancel_reason_code"]) == (
        order.pk,
        "CANCELLED",
        services.CUSTOMER_CANCEL_REASON,
        "customer_request",
    )
    assert "timeline" in body
    assert order_events(order.pk)[-1][0] == "orders.OrderCancelled"


def test_cancel_my_confirmed_order_is_accepted_and_asks_shipping_first(alice):
    order = place(alice.pk)
    stock_reserved(order)
    payment_processed(order)

    # when
    response = client_for(alice).post(f"{URL}{order.pk}/cancel/")
    again = client_for(alice).post(f"{URL}{order.pk}/cancel/")

    # then: 202, CANCELLING, one request to shipping
    assert (response.status_code, again.status_code) == (202, 202)
    assert response.json()["status"] == again.json()["status"] == "CANCELLING"
    assert [event for event, _ in order_events(order.pk)][-1] == "orders.OrderCancellationRequested"
    assert [event for event, _ in order_events(order.pk)].count(
        "orders.OrderCancellationRequested"
    ) == 1

    # when shipping cancels the shipment, the end state shows on GET
    shipment_cancelled(order)
    detail = client_for(alice).get(f"{URL}{order.pk}/").json()
    assert (detail["status"], detail["cancel_reason_code"]) == ("CANCELLED", "customer_request")
    assert order_events(order.pk)[-1][1]["previous_status"] == "CANCELLING"


def test_cancel_of_a_confirmed_order_that_had_shipped_ends_shipped(alice):
    order = confirm(place(alice.pk))
    assert client_for(alice).post(f"{URL}{order.pk}/cancel/").status_code == 202

    # when shipping had dispatched it already
    order_shipped(order)

    # then
    assert client_for(alice).get(f"{URL}{order.pk}/").json()["status"] == "SHIPPED"
    assert client_for(alice).post(f"{URL}{order.pk}/cancel/").status_code == 409


def test_cancelling_someone_elses_order_is_404_and_changes_nothing(alice, bob):
    order = place(bob.pk)

    response = client_for(alice).post(f"{URL}{order.pk}/cancel/")

    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert [event for event, _ in order_events(order.pk)] == ["orders.OrderCreated"]


def test_staff_cancel_any_order(bob, staff):
    order = place(bob.pk)

    response = client_for(staff).post(f"{URL}{order.pk}/cancel/")

    assert response.status_code == 200
    assert response.json()["cancel_reason"] == services.STAFF_CANCEL_REASON


@pytest.mark.parametrize("final", ["SHIPPED", "CANCELLED"])
def test_cancelling_a_shipped_or_cancelled_order_is_409_and_changes_nothing(alice, final):
    # given
    order = place(alice.pk)
    if final == "SHIPPED":
        stock_reserved(order)
        payment_processed(order)
        services.order_mark_shipped(order_id=order.pk)
    else:
        services.order_cancel(order_id=order.pk)
    before = Order.objects.values().get(pk=order.pk), order_events(order.pk)

    # when
    response = client_for(alice).post(f"{URL}{order.pk}/cancel/")

    # then
    assert response.status_code == 409
    assert final in response.json()["detail"]
    assert (Order.objects.values().get(pk=order.pk), order_events(order.pk)) == before


# --- the saga, drawn ------------------------------------------------------------------------


def test_staff_see_the_saga_as_steps_and_as_a_picture(alice, staff):
    order = confirm(place(alice.pk))
    timeline_project(
        order,
        {
            "inventory.StockReserved": (
                "reservation",
                order.pk,
                {"order_id": order.pk, "lines": [{"sku": "SKU-1", "quantity": 1}]},
            ),
            "payments.PaymentProcessed": (
                "payment",
                order.pk,
                {"order_id": order.pk, "payment_id": 1, "amount": "10.00", "currency": "EUR"},
            ),
        },
    )

    # when
    steps = client_for(staff).get(f"{URL}{order.pk}/saga/")
    picture = client_for(staff).get(f"{URL}{order.pk}/saga/", {"format": "svg"})

    # then
    assert steps.status_code == 200
    body = steps.json()
    assert (body["id"], body["status"]) == (order.pk, "CONFIRMED")
    by_name = {step["name"]: step for step in body["steps"]}
    assert by_name["reserve stock"]["state"] == by_name["charge payment"]["state"] == "done"
    assert by_name["confirm"]["state"] == "done"
    assert by_name["ship"]["state"] == "waiting"
    assert by_name["refund payment"]["state"] == "not needed"
    assert by_name["reserve stock"]["duration_s"] >= 0
    assert picture.status_code == 200
    assert picture["Content-Type"] == "image/svg+xml; charset=utf-8"
    svg = picture.content.decode()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "reserve stock" in svg and f"Order #{order.pk}" in svg


def test_the_saga_is_for_staff_only(alice, staff):
    order = place(alice.pk)

    assert client_for(alice).get(f"{URL}{order.pk}/saga/").status_code == 403
    missing = client_for(staff).get(f"{URL}999999/saga/", {"format": "svg"})
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_the_schema_documents_the_orders_endpoints(staff):
    response = client_for(staff).get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert {"/api/orders/", "/api/orders/{order_id}/", "/api/orders/{order_id}/cancel/"} <= set(
        paths
    )
    assert {"get", "post"} <= set(paths["/api/orders/"])
