"""One grep of a correlation id: the API request and every handler of its saga, in every process."""

import http.client
import json

import pytest

from shop.tests.faults import Shop, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_PORT, WEB_PORT = 17401, 17402
SAGA_GROUPS = {"inventory", "payments", "notifications", "orders", "orders-timeline", "shipping"}


def _place(shop: Shop) -> tuple[int, int, str]:
    """POST an order as the shop's customer; (status, order id, the answer's correlation id)."""
    conn = http.client.HTTPConnection("127.0.0.1", shop.port, timeout=15)
    try:
        conn.request(
            "POST",
            "/api/orders/",
            json.dumps({"lines": [{"sku": "FAULT-1", "quantity": 1}]}),
            {"Content-Type": "application/json", "Authorization": f"Token {shop.token}"},
        )
        response = conn.getresponse()
        body = json.loads(response.read())
        return response.status, body.get("id"), response.getheader("X-Correlation-ID")
    finally:
        conn.close()


def _json_lines(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pass
    return lines


def test_one_correlation_id_finds_the_request_and_every_handler_of_its_saga(
    tmp_path, own_database, own_redis
):
    # given the shop running with JSON logs, on a database and a Redis of its own
    shop = None
    try:
        shop = Shop(
            database_url=own_database,
            redis_url=own_redis.url,
            port=WEB_PORT,
            logdir=tmp_path,
            env={"LOG_FORMAT": "json"},
        )
        # when an order is placed through the API and its saga runs
        status, order_id, correlation = _place(shop)
        assert status == 201 and correlation
        wait_until(lambda: shop.pending_orders([order_id]) == 0, 60, "the order to be confirmed")
        wait_until(lambda: not shop.audit(), 60, "every group to catch up")

        # then one grep of the correlation id finds the request line ...
        found = [
            line
            for line in _json_lines(shop.log.read_text())
            if line.get("correlation_id") == correlation
        ]
        requests = [line for line in found if line["logger"] == "shop.request"]
        assert len(requests) == 1
        assert requests[0]["message"].startswith("POST /api/orders/ 201")
        assert requests[0]["order_id"] == order_id
        assert requests[0]["request_id"]
        # ... and a line for every event each group applied in its saga, naming it
        handled = [line for line in found if line["logger"] == "outbox.handled"]
        assert {line["group"] for line in handled} == SAGA_GROUPS
        for line in handled:
            assert line["order_id"] == order_id
            assert line["event_id"] and line["causation_id"]
            assert line["message"].startswith(f"{line['group']} applied {line['event_type']} ")
        applied = {(line["group"], line["event_type"]) for line in handled}
        assert {
            ("inventory", "orders.OrderCreated"),
            ("payments", "orders.OrderCreated"),
            ("orders", "inventory.StockReserved"),
            # the charge ran in a Celery task, which carried the correlation on
            ("orders", "payments.PaymentProcessed"),
            ("shipping", "orders.OrderConfirmed"),
            ("notifications", "orders.OrderConfirmed"),
            ("orders-timeline", "orders.OrderConfirmed"),
        } <= applied
        # across processes: the web's and the worker's
        assert requests[0]["process"] not in {line["process"] for line in handled}
        # and every event of the saga carries the same correlation id
        types = shop.scalar(
            "SELECT array_agg(DISTINCT headers->>'correlation_id') FROM outbox_outboxevent "
            "WHERE aggregate_type IN ('order', 'payment', 'shipment') AND payload->>'order_id' = %s",
            (str(order_id),),
        )
        assert types == [correlation]
    finally:
        if shop is not None:
            shop.stop()
