"""A property-based fuzz of the whole API, from its own OpenAPI schema (schemathesis).

Every operation of the schema gets generated requests, valid and invalid ones,
as an anonymous client, as a customer and as staff. Each answer must not be a
server error and must match what the schema says of its status code. The
rate limits are on, with a cache key prefix of the fuzz's own, so 429s are
answered (and checked) too. Bounded by ``FUZZ_EXAMPLES`` per operation and
audience.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from inventory import services as inventory_services
from notifications.models import Notification
from orders import services as order_services
from outbox.testing import drain
from payments.models import Payment
from payments.simulated import SimulatedProvider
from shipping.models import Shipment
from shop import services
from shop.tests.sagas import settle

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, response_schema_conformance]


class _InTestWSGI:
    """Django's WSGI application, run inside the test's transaction.

    Like Django's test client, it keeps the request signals from closing the
    test's database connection.
    """

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def __call__(self, environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


def _schema() -> schemathesis.BaseSchema:
    raw = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(raw)))
    loaded.app = _InTestWSGI()
    return loaded


everything = _schema()

# Ids of the objects the fuzz world holds, by path parameter name (set by the fixture).
KNOWN: dict[str, int | str] = {}


@everything.hook("map_path_parameters")
def _known_objects_half_the_time(context, path_parameters):
    """Even ids and even-length SKUs name a real object, so detail answers are checked too."""
    if not path_parameters:
        return path_parameters
    mapped = dict(path_parameters)
    for name, value in path_parameters.items():
        if name not in KNOWN or isinstance(value, bool):
            continue
        if (isinstance(value, int) and value % 2 == 0) or (
            isinstance(value, str) and len(value) % 2 == 0
        ):
            mapped[name] = KNOWN[name]
    return mapped


# The schema endpoint renders the whole schema each time (about 0.4 s): a few
# examples of it, and the full count of everything else.
SCHEMA_PATH = "/api/schema/"
schema = everything.exclude(path=SCHEMA_PATH)
schema_endpoint = everything.include(path=SCHEMA_PATH)

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


class ProviderInsideTheTestsTransaction(SimulatedProvider):
    """The simulated provider, callable inside the transaction a ``db`` test runs in."""

    @staticmethod
    def _outside_transaction() -> None:
        return None


@pytest.fixture
def fuzz_world(request, db, rate_limits, settings, django_capture_on_commit_callbacks):
    """Some of everything for the fuzz to find, limits on: a catalogue, a customer, staff,
    and for operations on one object, the customer's confirmed order (its payment,
    shipment and notifications) through the real saga."""
    inventory_services.product_create(sku="FUZZ-1", name="Fuzz", price="3.50", stock=5)
    customer = get_user_model().objects.create_user(
        "fuzz-customer", email="fuzz@example.com", password="a-fuzz-pass-1"
    )
    staff = get_user_model().objects.create_user(
        "fuzz-staff", password="a-fuzz-pass-2", is_staff=True
    )
    tokens = {
        "customer": services.auth_token_issue(user=customer).token,
        "staff": services.auth_token_issue(user=staff).token,
    }
    # The saga costs a few tenths of a second: only where a path names an object.
    if "{" not in getattr(request.node, "operation_label", "{"):
        yield tokens
        return
    settings.PAYMENTS_DISPATCH_ON_COMMIT = False  # settle() runs the provider calls here
    settings.PAYMENTS_PROVIDER = f"{__name__}.ProviderInsideTheTestsTransaction"
    with django_capture_on_commit_callbacks(execute=True):
        drain()
        placed = order_services.order_place(
            customer_id=customer.pk, lines=[order_services.LineIn(sku="FUZZ-1", quantity=1)]
        )
        settle()
    KNOWN.update(
        order_id=placed.order.pk,
        payment_id=Payment.objects.get(order_id=placed.order.pk).pk,
        shipment_id=Shipment.objects.get(order_id=placed.order.pk).pk,
        notification_id=Notification.objects.filter(customer_id=customer.pk).first().pk,
        sku="FUZZ-1",
    )
    yield tokens
    KNOWN.clear()


def _call(case, headers: dict[str, str]) -> None:
    case.call_and_validate(headers=headers, checks=CHECKS)


@schema.parametrize()
@fuzz_settings
def test_fuzz_anonymous(case, fuzz_world):
    _call(case, {})


@schema_endpoint.parametrize()
@settings(fuzz_settings, max_examples=3)
def test_fuzz_the_schema_endpoint(case, fuzz_world):
    _call(case, {})


@schema.parametrize()
@fuzz_settings
def test_fuzz_customer(case, fuzz_world):
    _call(case, {"Authorization": f"Token {fuzz_world['customer']}"})


@schema.parametrize()
@fuzz_settings
def test_fuzz_staff(case, fuzz_world):
    _call(case, {"Authorization": f"Token {fuzz_world['staff']}"})
