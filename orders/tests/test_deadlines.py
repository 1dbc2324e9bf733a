"""Orders past their deadline: what beat does with them and what the status reports say."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from orders import services, tasks
from orders.models import Order
from orders.tests.factories import confirm, place, seed_product
from shop.tests.clients import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalogue():
    seed_product("SKU-1", name="Widget", price="10.00")


def overdue(order: Order) -> Order:
    Order.objects.filter(pk=order.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    return order


def test_every_waiting_order_has_a_deadline_and_no_other(settings):
    settings.ORDERS_DEADLINE_S = 120.0

    pending = place()
    confirmed = confirm(place())
    cancelling = services.order_cancel(order_id=confirm(place()).pk)

    assert timezone.now() < pending.deadline_at <= timezone.now() + timedelta(seconds=120)
    assert confirmed.deadline_at is None
    assert cancelling.deadline_at is not None


def test_outbox_status_reports_the_orders_past_their_deadline():
    # given
    overdue(place())
    overdue(services.order_cancel(order_id=confirm(place()).pk))
    place()  # waiting, not yet overdue
    staff = get_user_model().objects.create_user("staff", password="pw-staff-1", is_staff=True)
    api = client_for(staff)

    # when
    out = StringIO()
    call_command("outbox_status", "--json", stdout=out)
    text = StringIO()
    call_command("outbox_status", stdout=text)
    endpoint = api.get("/api/outbox/status/").json()

    # then
    assert json.loads(out.getvalue())["orders_past_deadline"] == 2
    assert endpoint["orders_past_deadline"] == 2
    assert "orders past deadline      2" in text.getvalue()


def test_the_beat_task_resolves_the_overdue_orders():
    pending = overdue(place())
    cancelling = overdue(services.order_cancel(order_id=confirm(place()).pk))

    assert tasks.expire_overdue() == 2

    pending.refresh_from_db()
    cancelling.refresh_from_db()
    assert (pending.status, pending.cancel_reason_code) == ("CANCELLED", "timeout")
    assert (cancelling.status, cancelling.cancel_reason_code) == ("CONFIRMED", "")
    assert tasks.expire_overdue() == 0
