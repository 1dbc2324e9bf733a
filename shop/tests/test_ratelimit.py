"""Rate limits on login, sign-up and order placement: per user and per client address."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache.backends.redis import RedisCache
from django.test import RequestFactory
from rest_framework.test import APIClient

from shop import ratelimit, services
from shop.rates import Rate

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def alice():
    return services.customer_sign_up(username="alice", email="a@example.com", password=PASSWORD)


def login(password: str, *, username: str = "alice", address: str = "192.0.2.1", **headers):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/auth/token/",
        {"username": username, "password": password},
        format="json",
        **headers,
    )


def sign_up(username: str, *, email: str | None = None, address: str = "192.0.2.1"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/customers/",
        {"username": username, "email": email or f"{username}@example.com", "password": PASSWORD},
        format="json",
    )


def assert_throttled(response, *, period_s: int) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= period_s


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10/m", Rate(10, 60)),
        ("10/15m", Rate(10, 900)),
        ("3/h", Rate(3, 3600)),
        ("1/d", (1, 86400)),
    ],
)
def test_rates_read_as_count_per_period(text, rate):
    assert Rate.parse(text) == (rate if isinstance(rate, Rate) else Rate(*rate))


@pytest.mark.parametrize("text", ["", "10", "0/m", "10/0m", "10/w", "ten/m", "-1/m"])
def test_a_bad_rate_is_refused(text):
    with pytest.raises(ValueError, match="COUNT/PERIOD"):
        Rate.parse(text)


def test_failed_logins_for_one_username_are_limited_from_any_address(alice, rate_limits):
    # given
    rate_limits["login_user"] = "3/15m"
    for n in range(3):
        assert login("wrong", address=f"192.0.2.{n + 1}").status_code == 400

    # when: even the right password, from yet another address
    response = login(PASSWORD, address="198.51.100.7")

    # then
    assert_throttled(response, period_s=900)


def test_the_username_limit_ignores_case(alice, rate_limits):
    # given
    rate_limits["login_user"] = "2/15m"
    login("wrong", username="ALICE")
    login("wrong", username="Alice")

    # when / then
    assert_throttled(login(PASSWORD), period_s=900)


def test_successful_logins_do_not_count_against_the_username(alice, rate_limits):
    # given
    rate_limits["login_user"] = "2/15m"

    # when
    statuses = [login(PASSWORD).status_code for _ in range(5)]

    # then
    assert statuses == [200] * 5
    assert login("wrong").status_code == 400


def test_login_attempts_from_one_address_are_limited(alice, rate_limits):
    # given
    rate_limits["login_address"] = "4/m"
    for _ in range(4):
        login("wrong", username="somebody-else")

    # when / then
    assert_throttled(login(PASSWORD), period_s=60)
    assert login(PASSWORD, address="192.0.2.99").status_code == 200


def test_a_forged_x_forwarded_for_does_not_dodge_the_address_limit(alice, rate_limits):
    # given: no trusted proxy, so the header is the client's own words
    rate_limits["login_address"] = "3/m"

    # when
    statuses = [
        login("wrong", username=f"u{n}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(6)
    ]

    # then
    assert statuses == [400, 400, 400, 429, 429, 429]


def test_the_limit_starts_again_in_the_next_window(alice, rate_limits, monkeypatch):
    # given
    rate_limits["login_address"] = "1/m"
    clock = [1_000_020.0]
    monkeypatch.setattr(ratelimit, "_now", lambda: clock[0])
    login("wrong")
    assert login("wrong").status_code == 429

    # when
    clock[0] += 60

    # then
    assert login("wrong").status_code == 400


def test_retry_after_counts_down_to_the_end_of_the_window(alice, rate_limits, monkeypatch):
    # given
    rate_limits["login_address"] = "1/m"
    # 1_000_020 is a multiple of 60: half a second into a window, 59.5 s are left
    monkeypatch.setattr(ratelimit, "_now", lambda: 1_000_020.5)
    login("wrong")

    # when
    response = login("wrong")

    # then
    assert response["Retry-After"] == "60"


def test_sign_ups_from_one_address_are_limited(rate_limits):
    # given
    rate_limits["signup_address"] = "2/h"
    assert sign_up("one").status_code == 201
    assert sign_up("two").status_code == 201

    # when
    response = sign_up("three")

    # then
    assert_throttled(response, period_s=3600)
    assert not get_user_model().objects.filter(username="three").exists()
    assert sign_up("three", address="192.0.2.50").status_code == 201


def test_accounts_per_email_address_are_limited_but_failed_attempts_are_not_counted(rate_limits):
    # given
    rate_limits["signup_email"] = "2/h"
    assert sign_up("bad name!", email="victim@example.com").status_code == 400
    assert sign_up("one", email="victim@example.com", address="192.0.2.2").status_code == 201
    assert sign_up("two", email="Victim@Example.com", address="192.0.2.3").status_code == 201

    # when
    response = sign_up("three", email="victim@example.com", address="192.0.2.4")

    # then
    assert_throttled(response, period_s=3600)
    assert get_user_model().objects.filter(email__iexact="victim@example.com").count() == 2


def _customer(name: str):
    user = get_user_model().objects.create_user(name, password=PASSWORD)
    return services.auth_token_issue(user=user).token


def place(token: str, *, address: str = "192.0.2.1"):
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.post("/api/orders/", {"lines": [{"sku": "NOPE", "quantity": 1}]}, format="json")


def test_orders_placed_by_one_customer_are_limited_from_any_address(rate_limits):
    # given
    rate_limits["order_user"] = "3/m"
    carol, dave = _customer("carol"), _customer("dave")
    for n in range(3):
        assert place(carol, address=f"192.0.2.{n + 1}").status_code == 400  # unknown sku

    # when
    response = place(carol, address="198.51.100.1")

    # then
    assert_throttled(response, period_s=60)
    assert place(dave, address="198.51.100.2").status_code == 400


def test_orders_from_one_address_are_limited_whoever_places_them(rate_limits):
    # given
    rate_limits["order_address"] = "2/m"
    place(_customer("carol"))
    place(_customer("dave"))

    # when / then
    assert_throttled(place(_customer("erin")), period_s=60)


def test_reading_orders_is_not_limited(rate_limits):
    # given
    rate_limits["order_user"] = "1/m"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {_customer('carol')}")

    # when
    statuses = [client.get("/api/orders/").status_code for _ in range(5)]

    # then
    assert statuses == [200] * 5


def test_no_limits_when_turned_off(alice, rate_limits, settings):
    # given
    rate_limits["login_address"] = "1/m"
    settings.RATELIMIT_ENABLED = False

    # when
    statuses = [login("wrong").status_code for _ in range(3)]

    # then
    assert statuses == [400, 400, 400]


def test_limits_fail_open_when_the_cache_is_down(alice, rate_limits, monkeypatch):
    # given: nothing listens on this port
    dead = RedisCache("redis://127.0.0.1:17099/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    monkeypatch.setattr(ratelimit, "cache", dead)
    rate_limits["login_address"] = "1/m"

    # when
    statuses = [login("wrong").status_code for _ in range(3)]

    # then
    assert statuses == [400, 400, 400]


def request_from(remote: str, forwarded: str | None = None):
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **headers)


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "client"),
    [
        # no trusted proxy: the header is never read
        ([], "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        # from a trusted proxy: the address it appended
        (["10.0.0.1"], "10.0.0.1", "203.0.113.9", "203.0.113.9"),
        # a forged entry left of it is never read
        (["10.0.0.1"], "10.0.0.1", "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # two proxies of ours (a network): past both
        (["10.0.0.0/8"], "10.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.1.1", "203.0.113.9"),
        # not from a trusted proxy: its header is not believed
        (["10.0.0.1"], "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        # garbage where an address should be: the last trusted hop
        (["10.0.0.1"], "10.0.0.1", "not-an-ip", "10.0.0.1"),
        # only proxies: the outermost one
        (["10.0.0.0/8"], "10.0.0.1", "10.0.0.2", "10.0.0.2"),
        # IPv6 clients count by their /64
        ([], "2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64"),
        # IPv4 mapped into IPv6 is the IPv4 address
        ([], "::ffff:192.0.2.1", None, "192.0.2.1"),
    ],
)
def test_the_client_address(settings, proxies, remote, forwarded, client):
    # given
    settings.TRUSTED_PROXIES = proxies

    # when / then
    assert ratelimit.client_address(request_from(remote, forwarded)) == client


def test_the_schema_documents_429_and_retry_after_where_limits_apply(db):
    # given
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]

    # when
    limited = {
        (path, method)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "429" in operation["responses"]
    }

    # then
    assert limited == {
        ("/api/auth/token/", "post"),
        ("/api/customers/", "post"),
        ("/api/orders/", "post"),
    }
    assert "Retry-After" in paths["/api/orders/"]["post"]["responses"]["429"]["headers"]
