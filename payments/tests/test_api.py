import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from payments.models import Payment
from payments.tests.factories import payment_row
from shop.tests.clients import client_for


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password="pw")


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", password="pw")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user("sam", password="pw", is_staff=True)


@pytest.fixture
def payments(alice, bob):
    return {
        "alice_ok": payment_row(101, alice.pk),
        "alice_declined": payment_row(
            102,
            alice.pk,
            status=Payment.Status.FAILED,
            amount="20.00",
            failure_reason="card declined",
        ),
        "bob_ok": payment_row(201, bob.pk),
    }


def test_customer_lists_only_own_payments(alice, payments):
    response = client_for(alice, token=True).get("/api/payments/")

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    declined = payments["alice_declined"]
    assert body["results"][0] == {
        "id": declined.pk,
        "order": 102,
        "amount": "20.00",
        "currency": "EUR",
        "status": "FAILED",
        "failure_reason": "card declined",
        "created_at": declined.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert [p["order"] for p in body["results"]] == [102, 101]


def test_filter_by_order(alice, payments):
    response = client_for(alice, token=True).get("/api/payments/", {"order": 101})

    assert response.status_code == 200
    assert [(p["order"], p["status"], p["amount"]) for p in response.json()["results"]] == [
        (101, "CAPTURED", "10.00")
    ]


def test_filter_by_someone_elses_order_finds_nothing(alice, payments):
    response = client_for(alice, token=True).get("/api/payments/", {"order": 201})

    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.parametrize("order", ["abc", "1.5", "1e3", "[1]"])
def test_order_filter_must_be_an_integer(alice, payments, order):
    response = client_for(alice, token=True).get("/api/payments/", {"order": order})

    assert response.status_code == 400
    assert list(response.json()) == ["order", "detail", "code"]


def test_staff_see_every_payment(staff_user, payments):
    response = client_for(staff_user, token=True).get("/api/payments/")

    assert response.status_code == 200
    assert sorted(p["order"] for p in response.json()["results"]) == [101, 102, 201]


def test_detail_of_own_payment(alice, payments):
    payment = payments["alice_ok"]

    response = client_for(alice, token=True).get(f"/api/payments/{payment.pk}/")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["status"]) == (payment.pk, "CAPTURED")


def test_detail_shows_a_refund(alice, payments):
    refunded = payment_row(103, alice.pk, status=Payment.Status.REFUNDED)

    response = client_for(alice, token=True).get(f"/api/payments/{refunded.pk}/")

    assert response.json()["status"] == "REFUNDED"


def test_someone_elses_payment_is_404(alice, payments):
    response = client_for(alice, token=True).get(f"/api/payments/{payments['bob_ok'].pk}/")

    assert response.status_code == 404


def test_staff_see_any_payment(staff_user, payments):
    response = client_for(staff_user, token=True).get(f"/api/payments/{payments['bob_ok'].pk}/")

    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/payments/", "/api/payments/1/"])
def test_anonymous_is_401(db, path):
    assert APIClient().get(path).status_code == 401
