"""API tokens end: at logout, on a password change, at expiry."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from shop import services
from shop.auth import TokenAuthentication

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "another-horse-battery-2"


@pytest.fixture
def alice():
    return services.customer_sign_up(username="alice", email="a@example.com", password=PASSWORD)


def login(username: str = "alice", password: str = PASSWORD) -> str:
    response = APIClient().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def works(token: str) -> bool:
    status = with_token(token).get("/api/customers/me/").status_code
    assert status in (200, 401)
    return status == 200


def test_a_token_answer_is_kept_by_no_cache(alice):
    response = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": PASSWORD}, format="json"
    )

    assert response["Cache-Control"] == "no-store"


def test_logging_in_twice_gives_two_different_tokens_that_both_work(alice):
    # when
    first, second = login(), login()

    # then
    assert first != second
    assert works(first) and works(second)


def test_logout_revokes_the_token_it_was_sent_with_and_no_other(alice):
    # given
    phone, laptop = login(), login()

    # when
    response = with_token(phone).post("/api/auth/logout/")

    # then
    assert response.status_code == 204
    assert not works(phone)
    assert works(laptop)


def test_logout_ends_a_browser_session_too(alice):
    # given
    client = APIClient()
    client.force_login(alice)
    assert client.get("/api/customers/me/").status_code == 200

    # when
    response = client.post("/api/auth/logout/")

    # then
    assert response.status_code == 204
    assert client.get("/api/customers/me/").status_code in (401, 403)


def test_logout_everywhere_revokes_every_token_of_the_user_only(alice):
    # given
    services.customer_sign_up(username="bob", email="b@example.com", password=PASSWORD)
    phone, laptop, bobs = login(), login(), login("bob")

    # when
    response = with_token(phone).post("/api/auth/logout-all/")

    # then
    assert response.status_code == 204
    assert not works(phone) and not works(laptop)
    assert works(bobs)


def test_a_password_change_through_the_api_revokes_every_token_and_returns_a_new_one(alice):
    # given
    phone, laptop = login(), login()

    # when
    response = with_token(phone).post(
        "/api/auth/password/",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
    )

    # then
    assert response.status_code == 200
    assert not works(phone) and not works(laptop)
    assert works(response.json()["token"])
    assert login(password=NEW_PASSWORD)


def test_a_wrong_current_password_changes_nothing(alice):
    # given
    token = login()

    # when
    response = with_token(token).post(
        "/api/auth/password/",
        {"old_password": "not-it", "new_password": NEW_PASSWORD},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json()["old_password"]
    assert works(token)
    assert login(password=PASSWORD)


def test_a_weak_new_password_is_refused_with_a_field_message(alice):
    # given
    token = login()

    # when
    response = with_token(token).post(
        "/api/auth/password/", {"old_password": PASSWORD, "new_password": "123"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json()["new_password"]
    assert works(token)


def test_a_password_set_anywhere_else_revokes_the_tokens_too(alice):
    # given: as the admin's form and manage.py changepassword do
    token = login()
    user = get_user_model().objects.get(pk=alice.pk)

    # when
    user.set_password(NEW_PASSWORD)
    user.save()

    # then
    assert not works(token)


def test_a_token_past_its_expiry_is_refused(alice):
    # given
    token = login()
    AuthToken.objects.filter(user=alice).update(expiry=timezone.now() - timedelta(seconds=1))

    # when / then
    assert not works(token)
    assert not AuthToken.objects.filter(user=alice).exists()


def test_the_expiry_comes_from_the_settings(alice, settings):
    # given
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(minutes=5)}

    # when
    response = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": PASSWORD}, format="json"
    )

    # then
    expiry = AuthToken.objects.get(user=alice).expiry
    assert timedelta(minutes=4) < expiry - timezone.now() <= timedelta(minutes=5)
    assert response.json()["expiry"]


def test_a_new_login_beyond_the_limit_revokes_the_oldest_token(alice, settings):
    # given
    settings.AUTH_TOKENS_PER_USER = 2
    first, second = login(), login()

    # when
    third = login()

    # then
    assert not works(first)
    assert works(second) and works(third)


@pytest.mark.parametrize(
    "header",
    [
        "Token not-a-token",
        "Token " + "\xff" * 64,
        "Token " + "a" * 64 + " extra",
        "Token",
    ],
)
def test_a_malformed_token_is_a_json_401(alice, header):
    # when
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/customers/me/")

    # then
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


@pytest.mark.parametrize(
    "token", [b"\x00" * 64, b"\xff" * 64, "é".encode() * 32, b"A" * 64, b"0" * 65]
)
def test_the_token_authentication_itself_refuses_tokens_knox_never_makes(token):
    # given: past the middleware (which answers a NUL in a header with a 400 first)
    authentication = TokenAuthentication()

    # when / then: no lookup, no decoding error, a plain "Invalid token."
    with pytest.raises(AuthenticationFailed, match="Invalid token"):
        authentication.authenticate_credentials(token)


def test_a_nul_byte_in_the_authorization_header_is_a_json_400(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 63 + "\x00")

    response = client.get("/api/customers/me/")

    assert response.status_code == 400
    assert response.json()["code"] == "null_character"


def test_changepassword_revokes_the_tokens(alice, monkeypatch):
    # given
    token = login()
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)

    # when
    call_command("changepassword", "alice")

    # then
    assert not works(token)


@pytest.mark.django_db
def test_expired_tokens_are_refused_and_beat_prunes_them():
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    from shop import services
    from shop.tasks import auth_tokens_prune

    # given a user with a live token and one past its expiry
    user = get_user_model().objects.create_user("expiring", "e@example.com", "pw-expiring-12")
    live = services.auth_token_issue(user=user).token
    old = services.auth_token_issue(user=user).token
    from knox.crypto import hash_token

    expired = AuthToken.objects.filter(digest=hash_token(old))
    assert expired.update(expiry=timezone.now() - timedelta(seconds=1)) == 1
    client = APIClient()
    # then the expired one is refused, the live one works
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.get("/api/customers/me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {live}")
    assert client.get("/api/customers/me/").status_code == 200
    # and beat's prune removes what has expired, nothing else
    AuthToken.objects.create(user=user, expiry=timedelta(seconds=-5))
    assert auth_tokens_prune() == 1
    assert AuthToken.objects.filter(user=user).count() == 1


def test_a_deactivated_user_s_token_is_refused_and_works_again_once_reactivated(alice):
    token = login()
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert not works(token)
    get_user_model().objects.filter(pk=alice.pk).update(is_active=True)
    assert works(token)


def test_a_token_with_a_live_token_s_key_but_other_characters_is_refused(alice):
    # the key (the first characters) finds the live token; its digest must still match
    token = login()
    last = "0" if token[-1] != "0" else "1"
    assert not works(token[:-1] + last)
    assert works(token)


def test_the_token_authenticates_its_own_user_among_several(alice):
    bob = services.customer_sign_up(username="bob", email="b@example.com", password=PASSWORD)
    alices, bobs = login(), login("bob")
    assert with_token(alices).get("/api/customers/me/").json()["id"] == alice.pk
    assert with_token(bobs).get("/api/customers/me/").json()["id"] == bob.pk
