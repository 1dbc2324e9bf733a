"""/metrics after a saga, scraped as Prometheus would, from the web and worker processes."""

import http.client
import re

import pytest

from shop.tests.faults import Shop, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_PORT, WEB_PORT = 16512, 16513


def _scrape(shop: Shop, token: str | None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", shop.port, timeout=15)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` (labels in any order), 0 when absent."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


def test_metrics_count_a_saga_across_the_web_and_the_worker(tmp_path, own_database, own_redis):
    # given the shop running, with its own Redis and database
    shop = None
    try:
        shop = Shop(
            database_url=own_database,
            redis_url=own_redis.url,
            port=WEB_PORT,
            logdir=tmp_path,
        )
        token = shop.env["METRICS_TOKEN"]
        # when three orders go through the saga
        orders = [shop.place(n) for n in range(3)]
        assert None not in orders
        wait_until(lambda: shop.pending_orders(orders) == 0, 60, "the orders to be confirmed")
        wait_until(lambda: not shop.audit(), 30, "every group to catch up")
        # then the metrics are not public
        assert _scrape(shop, None)[0] == 401
        assert _scrape(shop, "not-the-token")[0] == 401
        # and they count what the web and the worker's readers did
        status, text = _scrape(shop, token)
        assert status == 200
        assert (
            _value(text, "http_requests_total", view="orders:list", method="POST", status="201")
            == 3
        )
        assert _value(text, "outbox_events_relayed_total", type="orders.OrderCreated") == 3
        assert _value(text, "outbox_events_relayed_total", type="orders.OrderConfirmed") == 3
        for group in ("inventory", "payments", "notifications", "orders-timeline"):
            assert (
                _value(text, "outbox_events_handled_total", group=group, type="orders.OrderCreated")
                == 3
            )
        handled_by_payments = sum(
            float(v)
            for v in re.findall(
                r'^outbox_events_handled_total\{group="payments",type="[^"]+"\} (\S+)$', text, re.M
            )
        )
        assert (
            _value(text, "outbox_commit_to_handled_seconds_count", group="payments")
            == handled_by_payments
        )
        assert _value(text, "outbox_relay_batch_size_count") >= 1
        assert _value(text, "outbox_unpublished_events") == 0
        assert _value(text, "outbox_dead_letters_open") == 0
        assert _value(text, "outbox_group_lag", group="payments") == 0
        assert _value(text, "outbox_events_dead_lettered_total") == 0
        # and the saga's duration, placement to confirmation, per outcome
        assert _value(text, "shop_saga_duration_seconds_count", outcome="confirmed") == 3
        assert _value(text, "shop_saga_duration_seconds_sum", outcome="confirmed") > 0
        assert (
            _value(text, "shop_saga_duration_seconds_bucket", outcome="confirmed", le="60.0") == 3
        )
        assert _value(text, "shop_saga_duration_seconds_count", outcome="cancelled") == 0
    finally:
        if shop is not None:
            shop.stop()
