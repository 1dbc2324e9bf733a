"""Every error under /api/ is JSON with a message and a code, whatever the cause."""

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate

from inventory import api as inventory_api
from outbox import api as outbox_api
from shop.parsers import MAX_DEPTH, JSONParser, RequestTooLarge
from shop.tests.clients import client_for

pytestmark = pytest.mark.django_db


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str) and body["code"]
    if code is not None:
        assert body["code"] == code
    return body


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def customer_client():
    user = get_user_model().objects.create_user("carol", password="a-long-pass-phrase-1")
    return client_for(user)


@pytest.fixture
def staff_client():
    user = get_user_model().objects.create_user(
        "sam", password="a-long-pass-phrase-2", is_staff=True
    )
    return client_for(user)


def test_json_nested_5000_deep_is_a_400_for_sign_up():
    # given
    body = '{"username": ' + nested(5000) + "}"

    # when
    response = APIClient().post("/api/customers/", body, content_type="application/json")

    # then
    assert "nested deeper" in assert_json_error(response, 400, "parse_error")["detail"]
    assert not get_user_model().objects.exists()


def test_json_nested_5000_deep_is_a_400_for_orders(customer_client):
    # given
    body = '{"lines": ' + nested(5000) + "}"

    # when
    response = customer_client.post("/api/orders/", body, content_type="application/json")

    # then
    assert_json_error(response, 400, "parse_error")


def test_json_deeper_than_the_limit_is_refused_and_at_the_limit_is_parsed():
    # given
    parser = JSONParser()

    # when
    at_limit = parser.parse(io.BytesIO(nested(MAX_DEPTH).encode()), parser_context={})

    # then
    assert isinstance(at_limit, list)
    with pytest.raises(Exception, match="nested deeper"):
        parser.parse(io.BytesIO(nested(MAX_DEPTH + 1).encode()), parser_context={})


def test_a_lone_surrogate_in_json_is_a_400_not_a_database_error():
    # given: valid JSON, but "\ud800" is no character PostgreSQL can store
    body = '{"username": "a\\ud800", "email": "a@example.com", "password": "a-long-pass-1"}'

    # when
    response = APIClient().post("/api/customers/", body, content_type="application/json")

    # then
    assert_json_error(response, 400, "parse_error")
    assert not get_user_model().objects.exists()


def test_a_nul_byte_in_a_path_is_a_json_404():
    # when
    response = Client().get("/api/products/a%00b/")

    # then
    assert_json_error(response, 404, "not_found")


def test_a_nul_byte_in_a_header_is_a_json_400_naming_it(customer_client):
    # when: the Idempotency-Key reached the database before (DataError, a 500)
    response = customer_client.post(
        "/api/orders/",
        {"lines": [{"sku": "A", "quantity": 1}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="a\x00b",
    )

    # then
    assert assert_json_error(response, 400, "null_character")["Idempotency-Key"]


def test_a_nul_byte_in_a_sku_is_a_404_in_the_view_too():
    # given: past the middleware, straight to the view
    view = inventory_api.ProductDetailApi.as_view()

    # when
    response = view(APIRequestFactory().get("/api/products/x/"), sku="a\x00b")

    # then
    assert response.status_code == 404


@pytest.mark.parametrize("name", ["type", "aggregate", "group"])
@pytest.mark.parametrize("path", ["/api/outbox/events/", "/api/outbox/dead-letters/"])
def test_a_nul_byte_in_a_staff_filter_is_a_json_400_naming_it(staff_client, path, name):
    # when
    response = staff_client.get(path, {name: "a\x00b"})

    # then
    body = assert_json_error(response, 400)
    assert body[name]


@pytest.mark.parametrize("name", ["type", "aggregate"])
def test_a_nul_byte_in_an_event_filter_is_refused_by_the_view_itself(name):
    # given: past the middleware, straight to the view
    staff = get_user_model().objects.create_user("sue", password="x-long-pass-3", is_staff=True)
    request = APIRequestFactory().get("/api/outbox/events/", {name: "a\x00b"})
    force_authenticate(request, user=staff)

    # when
    response = outbox_api.EventListView.as_view()(request)

    # then
    assert response.status_code == 400
    assert name in response.data


@pytest.mark.parametrize("name", ["since", "until"])
def test_an_impossible_date_is_a_json_400_naming_the_filter(staff_client, name):
    # when
    response = staff_client.get("/api/outbox/events/", {name: "2026-13-45T00:00:00Z"})

    # then
    assert assert_json_error(response, 400, "invalid")[name]


def test_a_20_mb_body_is_a_json_413():
    # given
    body = json.dumps({"username": "x" * (20 * 1024 * 1024)})

    # when
    response = APIClient().post("/api/customers/", body, content_type="application/json")

    # then
    assert_json_error(response, 413, "request_too_large")
    assert not get_user_model().objects.exists()


def test_the_parser_refuses_a_body_over_the_limit_whatever_the_content_length_said(settings):
    # given
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    # when / then
    with pytest.raises(RequestTooLarge):
        JSONParser().parse(io.BytesIO(b'"' + b"x" * 200 + b'"'), parser_context={})


def test_a_query_with_too_many_fields_is_a_json_400():
    query = "&".join(f"f{n}=1" for n in range(1200))

    assert_json_error(Client().get(f"/api/products/?{query}"), 400, "bad_request")


def test_an_unknown_route_is_a_json_404():
    assert_json_error(Client().get("/api/no-such-thing/"), 404, "not_found")


def test_a_wrong_method_is_a_json_405():
    assert_json_error(APIClient().delete("/api/products/"), 405, "method_not_allowed")


def test_an_unsupported_media_type_is_a_json_415():
    response = APIClient().post("/api/customers/", "a=b", content_type="text/plain")

    assert_json_error(response, 415, "unsupported_media_type")


def test_a_server_error_is_a_json_500_that_tells_nothing_of_its_cause(monkeypatch):
    # given: a fault deep inside a view
    def broken(**kwargs):
        raise RuntimeError("secret detail of the database at db.internal")

    monkeypatch.setattr("inventory.selectors.product_list", broken)

    # when
    response = Client(raise_request_exception=False).get("/api/products/")

    # then
    body = assert_json_error(response, 500, "server_error")
    assert "secret" not in response.content.decode()
    assert body == {"detail": "Server error.", "code": "server_error"}


def test_validation_errors_keep_their_field_messages_beside_detail_and_code(staff_client):
    # when
    response = staff_client.post("/api/products/", {"sku": "bad sku!"}, format="json")

    # then
    body = assert_json_error(response, 400, "invalid")
    assert body["sku"] and body["name"] and body["price"] and body["stock"]


def test_errors_outside_the_api_keep_django_pages():
    # when: the admin and the rest are for browsers
    response = Client().get("/no-such-page/")

    # then
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
