import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from outbox.models import OutboxEvent
from shop import services

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "correct-horse-battery"
SIGN_UP = {"username": "alice", "email": "alice@example.com", "password": GOOD_PASSWORD}


def user_created_count() -> int:
    return OutboxEvent.objects.filter(event_type="shop.UserCreated").count()


def test_sign_up_returns_the_new_customer():
    response = APIClient().post("/api/customers/", SIGN_UP, format="json")

    assert response.status_code == 201
    user = get_user_model().objects.get(username="alice")
    assert response.json() == {"id": user.pk, "username": "alice", "email": "alice@example.com"}
    assert OutboxEvent.objects.filter(
        event_type="shop.UserCreated", aggregate_id=str(user.pk)
    ).exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"username", "email", "password"}),
        (SIGN_UP | {"email": "not-an-email"}, {"email"}),
        (SIGN_UP | {"password": "12345678"}, {"password"}),
        (SIGN_UP | {"password": "short"}, {"password"}),
        (SIGN_UP | {"username": "al ice"}, {"username"}),
    ],
)
def test_bad_sign_ups_are_400_with_field_messages_and_write_nothing(body, fields):
    before = user_created_count()

    response = APIClient().post("/api/customers/", body, format="json")

    assert response.status_code == 400
    assert fields <= set(response.json())
    for name in fields:
        assert response.json()[name]
    assert not get_user_model().objects.filter(email="alice@example.com").exists()
    assert user_created_count() == before


def test_a_taken_username_is_400():
    services.customer_sign_up(**SIGN_UP)
    before = user_created_count()

    response = APIClient().post(
        "/api/customers/", SIGN_UP | {"email": "another@example.com"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["username"] == ["A user with that username already exists."]
    assert not get_user_model().objects.filter(email="another@example.com").exists()
    assert user_created_count() == before


def test_malformed_json_is_400():
    response = APIClient().post(
        "/api/customers/", data="{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert not get_user_model().objects.filter(username="alice").exists()


def test_a_token_for_good_credentials():
    user = services.customer_sign_up(**SIGN_UP)

    response = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": GOOD_PASSWORD}, format="json"
    )

    assert response.status_code == 200
    token = response.json()["token"]
    assert set(response.json()) == {"token", "expiry"}
    assert AuthToken.objects.filter(user=user, token_key=token[:15]).count() == 1


@pytest.mark.parametrize(
    "body", [{"username": "alice", "password": "wrong"}, {"username": "alice"}, {}]
)
def test_no_token_for_bad_credentials(body):
    services.customer_sign_up(**SIGN_UP)

    response = APIClient().post("/api/auth/token/", body, format="json")

    assert response.status_code == 400
    assert not AuthToken.objects.filter(user__username="alice").exists()


def test_me_with_a_token():
    services.customer_sign_up(**SIGN_UP)
    token = services.auth_token_obtain(username="alice", password=GOOD_PASSWORD).token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = client.get("/api/customers/me/")

    assert response.status_code == 200
    user = get_user_model().objects.get(username="alice")
    assert response.json() == {
        "id": user.pk,
        "username": "alice",
        "email": "alice@example.com",
        "is_staff": False,
    }


def test_me_anonymous_is_401():
    assert APIClient().get("/api/customers/me/").status_code == 401


def test_a_bad_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    assert client.get("/api/customers/me/").status_code == 401
