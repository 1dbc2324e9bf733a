"""The demo command against a live server, with real Celery workers running the saga."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from conftest import wait_for
from outbox.models import InboxEntry, OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_walks_three_orders_through_the_saga_and_ships_one(
    live_server, celery_worker, monkeypatch
):
    # given: a running shop with the demo data, which orders has learned of
    monkeypatch.setenv("DEMO_ADMIN_USERNAME", "admin")
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "an-admin-pass-phrase-1")
    monkeypatch.setenv("DEMO_CUSTOMER_USERNAME", "customer")
    monkeypatch.setenv("DEMO_CUSTOMER_PASSWORD", "a-customer-pass-phrase-2")
    celery_worker("w1")
    call_command("seed_demo", stdout=StringIO())
    catalogue = OutboxEvent.objects.filter(event_type="inventory.ProductChanged")
    wait_for(
        lambda: (
            InboxEntry.objects.filter(
                group="orders", event_id__in=catalogue.values("event_id")
            ).count()
            == catalogue.count()
        ),
        message="orders to learn the catalogue",
    )

    # when
    out = StringIO()
    call_command("demo", url=live_server.url, stdout=out)

    # then
    text = out.getvalue()
    rows = {
        match["scenario"]: (match["status"], match["rest"])
        for match in re.finditer(
            r"^#\d+\s+(?P<scenario>in stock, paid|out of stock|card declined)\s+"
            r"(?P<status>[A-Z]+)\s+(?P<rest>.*)$",
            text,
            re.MULTILINE,
        )
    }
    assert rows["in stock, paid"][0] == "CONFIRMED"
    assert rows["out of stock"][0] == "CANCELLED"
    assert not rows["out of stock"][1].startswith("-")  # a cancel reason is shown
    assert rows["card declined"][0] == "CANCELLED"
    assert "orders.OrderCancelled" in rows["card declined"][1]
    assert re.search(r"Dispatched shipment \d+ as admin: tracking number TRK[0-9A-F]{10}", text)
    assert re.search(r"Order #\d+ is SHIPPED; timeline: .*shipping\.OrderShipped", text)
    assert re.search(r"Every order ended as expected; order #\d+ is SHIPPED\.\Z", text.rstrip())
