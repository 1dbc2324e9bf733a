"""Log lines that carry the ids of the work they are about, and a quiet beat."""

import io
import json
import logging

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from outbox import publish
from outbox.logs import EventContextFilter
from outbox.models import OutboxEvent
from outbox.testing import drain
from outbox.tests.probe.events import ThingHappened
from shop import services
from shop.logs import RequestContextFilter, RoutineTaskFilter, logging_config, parse_levels


@pytest.fixture
def json_lines():
    """The root logger also writes JSON lines, formatted and filtered as LOG_FORMAT=json does."""
    config = logging_config(fmt="json", level="INFO")
    formatter_args = {k: v for k, v in config["formatters"]["json"].items() if k != "()"}
    from pythonjsonlogger.json import JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(**formatter_args))
    handler.addFilter(EventContextFilter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.mark.django_db
def test_a_request_gets_an_id_that_its_log_line_and_its_response_carry(json_lines):
    # when
    response = APIClient().get("/api/")

    # then
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    assert response["X-Correlation-ID"] == request_id
    (line,) = [line for line in json_lines() if line["logger"] == "shop.request"]
    assert line["message"].startswith("GET /api/ 200 (")
    assert (line["level"], line["request_id"], line["correlation_id"]) == (
        "INFO",
        request_id,
        request_id,
    )
    assert line["status"] == 200 and line["actor"] == "anonymous"
    assert "timestamp" in line and "process" in line


@pytest.mark.django_db
def test_a_clients_request_id_is_kept_and_one_that_is_not_a_plain_token_replaced():
    client = APIClient()

    kept = client.get("/api/", HTTP_X_REQUEST_ID="abc-123.4", HTTP_X_CORRELATION_ID="saga:7")
    replaced = client.get("/api/", HTTP_X_REQUEST_ID='inject" {evil}')

    assert (kept["X-Request-ID"], kept["X-Correlation-ID"]) == ("abc-123.4", "saga:7")
    assert replaced["X-Request-ID"] != 'inject" {evil}' and len(replaced["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_the_events_of_a_request_carry_its_correlation_id_and_the_acting_user(json_lines):
    # given a customer with a token, and a product orders knows
    from orders.tests.factories import seed_product

    seed_product("LOG-1")
    user = services.customer_sign_up(
        username="logger", email="l@example.com", password="a-long-pass-42"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {services.auth_token_issue(user=user).token}")

    # when
    response = client.post(
        "/api/orders/",
        {"lines": [{"sku": "LOG-1", "quantity": 1}]},
        format="json",
        HTTP_X_CORRELATION_ID="corr-42",
    )

    # then
    assert response.status_code == 201
    event = OutboxEvent.objects.get(
        event_type="orders.OrderCreated", aggregate_id=str(response.data["id"])
    )
    assert event.headers["correlation_id"] == "corr-42"
    assert event.headers["actor"] == f"user:{user.pk}"
    (line,) = [line for line in json_lines() if line["logger"] == "shop.request"]
    assert (line["correlation_id"], line["order_id"]) == ("corr-42", response.data["id"])
    assert line["actor"] == f"user:{user.pk}"


@pytest.mark.django_db
def test_a_handlers_lines_name_the_event_its_group_and_payload_fields(json_lines, settings):
    # given an event published in a correlated context
    settings.OUTBOX_LOG_PAYLOAD_FIELDS = ("thing_id",)
    from outbox import context

    with context.caused_by(correlation_id="corr-7"), transaction.atomic():
        publish(ThingHappened(thing_id=77, step=1))
    event = OutboxEvent.objects.get(event_type="probe.ThingHappened")

    # when the consumers apply it
    drain()

    # then each group that applied it wrote a line with the event's context
    applied = [line for line in json_lines() if line["logger"] == "outbox.handled"]
    assert {line["group"] for line in applied} == {"probe-alpha", "probe-beta"}
    for line in applied:
        assert line["event_id"] == str(event.event_id)
        assert line["event_type"] == "probe.ThingHappened"
        assert line["correlation_id"] == "corr-7"
        assert line["causation_id"] == str(event.event_id)
        assert line["thing_id"] == 77
        assert line["message"] == (
            f"{line['group']} applied probe.ThingHappened {event.event_id} (aggregate thing:77)"
        )


def _record(name: str, msg: str, args) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def test_beats_routine_tasks_are_written_at_debug_and_other_tasks_at_info():
    routine = RoutineTaskFilter(["outbox.tasks.poll"])
    logging.getLogger("celery.app.trace").setLevel(logging.INFO)
    received = _record(
        "celery.worker.strategy",
        "Task %(name)s[%(id)s] received",
        {"name": "outbox.tasks.poll", "id": "1"},
    )
    sent = _record(
        "celery.beat", "Scheduler: Sending due task %s (%s)", ("outbox-poll", "outbox.tasks.poll")
    )
    other = _record(
        "celery.app.trace",
        "Task %(name)s[%(id)s] succeeded",
        {"name": "payments.tasks.run_attempt", "id": "2"},
    )

    assert routine.filter(received) is False and received.levelname == "DEBUG"
    assert routine.filter(sent) is False
    assert routine.filter(other) is True and other.levelname == "INFO"


def test_a_routine_line_is_written_when_its_logger_is_at_debug():
    routine = RoutineTaskFilter(["outbox.tasks.poll"])
    logger = logging.getLogger("celery.beat")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        record = _record(
            "celery.beat",
            "Scheduler: Sending due task %s (%s)",
            ("outbox-poll", "outbox.tasks.poll"),
        )
        assert routine.filter(record) is True and record.levelname == "DEBUG"
    finally:
        logger.setLevel(previous)


def test_per_logger_levels_are_parsed_and_a_malformed_one_is_refused():
    assert parse_levels(" outbox.handled=warning, celery=INFO ") == {
        "outbox.handled": "WARNING",
        "celery": "INFO",
    }
    with pytest.raises(ValueError, match="'celery' is not LOGGER=LEVEL"):
        parse_levels("celery")
    with pytest.raises(ValueError, match="is not LOGGER=LEVEL"):
        parse_levels("celery=LOUD")
