"""Walk through the order saga against a running shop, over its HTTP API."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from django.core.management.base import BaseCommand, CommandError

from shop.management.commands.seed_demo import (
    RESET_HINT,
    ROLES,
    credentials_file,
    read_credentials,
)

POLL_INTERVAL_S = 0.5
# After an order leaves PENDING, its timeline (a read model) and the compensations
# (refund, release) may still be on their way: wait until the timeline has not grown
# for longer than the relay's polling interval.
SETTLE_S = 3.0
OUTCOMES = ("orders.OrderConfirmed", "orders.OrderCancelled")


@dataclass(frozen=True)
class Scenario:
    title: str
    lines: list[dict[str, Any]]
    payment_token: str
    expected: str


SCENARIOS = [
    Scenario("in stock, paid", [{"sku": "KB-001", "quantity": 1}], "tok_visa", "CONFIRMED"),
    Scenario("out of stock", [{"sku": "CB-004", "quantity": 1}], "tok_visa", "CANCELLED"),
    Scenario(
        "card declined", [{"sku": "MS-002", "quantity": 1}], "tok_chargeDeclined", "CANCELLED"
    ),
]


class Unreachable(Exception):
    pass


@dataclass
class Api:
    """A tiny JSON client for the shop's API (standard library only)."""

    base_url: str
    token: str | None = None
    timeout_s: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)

    def call(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        request = Request(  # noqa: S310 - the scheme is checked in Command.handle
            self.base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                return response.status, _decode(response.read())
        except HTTPError as exc:
            return exc.code, _decode(exc.read())
        except (URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Unreachable(str(reason)) from None


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:200]


# Options that take a value: "--password -x..." means the value "-x...", not an option.
VALUE_OPTIONS = ("--url", "--username", "--password", "--admin-username", "--admin-password")


def joined_values(argv: list[str]) -> list[str]:
    """``--password -abc`` as ``--password=-abc``: argparse would take ``-abc`` for an option."""
    joined: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in VALUE_OPTIONS:
            value = next(args, None)
            joined.append(arg if value is None else f"{arg}={value}")
        else:
            joined.append(arg)
    return joined


class Command(BaseCommand):
    help = (
        "Place three orders through the API of a running shop (one that succeeds, one out of "
        "stock, one with a declined card) as the demo customer, wait for each saga to finish, "
        "print what happened, then dispatch the good order as the demo staff user until it is "
        "SHIPPED. The users and passwords are seed_demo's (kept in DEMO_CREDENTIALS_FILE) "
        "unless given."
    )

    def run_from_argv(self, argv: list[str]) -> None:
        super().run_from_argv(joined_values(argv))

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default=os.environ.get("DEMO_URL", "http://127.0.0.1:8000"))
        parser.add_argument(
            "--username",
            help="customer username (default: $DEMO_CUSTOMER_USERNAME, seed_demo's, or customer)",
        )
        parser.add_argument(
            "--password",
            help="customer password (default: $DEMO_CUSTOMER_PASSWORD or the one seed_demo "
            "kept; without one a fresh demo customer signs up)",
        )
        parser.add_argument(
            "--admin-username",
            help="staff username (default: $DEMO_ADMIN_USERNAME, seed_demo's, or admin)",
        )
        parser.add_argument(
            "--admin-password",
            help="staff password (default: $DEMO_ADMIN_PASSWORD or the one seed_demo kept)",
        )
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="seconds to wait for each saga"
        )

    def handle(self, *args, **options) -> None:
        url = options["url"].rstrip("/")
        if urlsplit(url).scheme not in ("http", "https"):
            raise CommandError(f"--url must be an http(s) URL, not {url!r}")
        self.timeout_s = options["timeout"]
        try:
            self._run(url, options)
        except Unreachable as exc:
            raise CommandError(
                f"the shop does not answer at {url} ({exc}); start it first (make run)"
            ) from None

    def _run(self, url: str, options: dict[str, Any]) -> None:
        kept = read_credentials()
        staff = _credentials(options, kept, "admin")
        if not staff[1]:
            raise CommandError(
                f"no password for the staff user {staff[0]}, who dispatches the good order: "
                f"give --admin-password or DEMO_ADMIN_PASSWORD, or run `{RESET_HINT}` "
                f"(it keeps new passwords in {credentials_file()})"
            )
        customer = Api(url)
        username, password = _credentials(options, kept, "customer")
        if not password:
            username, password = self._sign_up(customer)
        customer.token = self._token(customer, username, password)
        self.stdout.write(f"Logged in as {username} at {url}")

        orders = [(self._place(customer, scenario), scenario) for scenario in SCENARIOS]
        details = self._wait_for_outcomes(customer, [order_id for order_id, _ in orders])
        self._print_table(orders, details)
        unexpected = [
            order_id
            for order_id, scenario in orders
            if details[order_id]["status"] != scenario.expected
        ]
        if unexpected:
            raise CommandError(
                f"{len(unexpected)} of {len(orders)} orders did not end as expected: "
                + ", ".join(f"#{order_id}" for order_id in unexpected)
                + " (is the Celery worker running?)"
            )
        good_id = orders[0][0]
        self._dispatch(url, customer, good_id, staff)
        self.stdout.write(
            self.style.SUCCESS(f"Every order ended as expected; order #{good_id} is SHIPPED.")
        )

    def _sign_up(self, api: Api) -> tuple[str, str]:
        username = f"demo-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        status, body = api.call(
            "POST",
            "/api/customers/",
            {"username": username, "email": f"{username}@example.com", "password": password},
        )
        if status != 201:
            raise CommandError(f"signing up a demo customer failed ({status}): {_one_line(body)}")
        self.stdout.write(f"Signed up a fresh demo customer: {username}")
        return username, password

    def _token(self, api: Api, username: str, password: str) -> str:
        status, body = api.call(
            "POST", "/api/auth/token/", {"username": username, "password": password}
        )
        if status != 200:
            raise CommandError(f"logging in as {username} failed ({status}): {_one_line(body)}")
        return body["token"]

    def _place(self, api: Api, scenario: Scenario) -> int:
        status, body = api.call(
            "POST",
            "/api/orders/",
            {"lines": scenario.lines, "payment_token": scenario.payment_token},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        if status not in (200, 201):
            raise CommandError(
                f"placing the '{scenario.title}' order failed ({status}): {_one_line(body)} "
                "(has `manage.py seed_demo` run?)"
            )
        self.stdout.write(f"Placed order #{body['id']} ({scenario.title})")
        return body["id"]

    def _wait_for_outcomes(self, api: Api, order_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Each order once it is decided and the timelines stopped growing (bounded)."""
        deadline = time.monotonic() + self.timeout_s
        details = {order_id: self._order(api, order_id) for order_id in order_ids}
        while not all(map(_decided, details.values())) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
            details = {order_id: self._order(api, order_id) for order_id in order_ids}
        settled_at = time.monotonic() + SETTLE_S
        while time.monotonic() < min(settled_at, deadline):
            time.sleep(POLL_INTERVAL_S)
            latest = {order_id: self._order(api, order_id) for order_id in order_ids}
            if any(
                len(latest[order_id]["timeline"]) != len(details[order_id]["timeline"])
                for order_id in order_ids
            ):
                settled_at = time.monotonic() + SETTLE_S
            details = latest
        return details

    def _order(self, api: Api, order_id: int) -> dict[str, Any]:
        status, body = api.call("GET", f"/api/orders/{order_id}/")
        if status != 200:
            raise CommandError(f"reading order #{order_id} failed ({status}): {_one_line(body)}")
        return body

    def _print_table(
        self, orders: list[tuple[int, Scenario]], details: dict[int, dict[str, Any]]
    ) -> None:
        rows = [("order", "scenario", "status", "cancel reason", "timeline")]
        for order_id, scenario in orders:
            detail = details[order_id]
            rows.append(
                (
                    f"#{order_id}",
                    scenario.title,
                    detail["status"],
                    detail.get("cancel_reason") or "-",
                    ", ".join(entry["type"] for entry in detail.get("timeline", [])),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        self.stdout.write("")
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]))
        self.stdout.write("")

    def _dispatch(
        self, url: str, customer: Api, order_id: int, credentials: tuple[str, str | None]
    ) -> None:
        username, password = credentials
        staff = Api(url)
        staff.token = self._token(staff, username, str(password))
        deadline = time.monotonic() + self.timeout_s
        shipment = None
        while shipment is None:
            status, body = staff.call("GET", f"/api/shipments/?order={order_id}")
            if status != 200:
                raise CommandError(f"listing shipments failed ({status}): {_one_line(body)}")
            shipment = next(iter(body["results"]), None)
            if shipment is None:
                if time.monotonic() > deadline:
                    raise CommandError(f"order #{order_id} got no shipment in {self.timeout_s}s")
                time.sleep(POLL_INTERVAL_S)
        status, body = staff.call("POST", f"/api/shipments/{shipment['id']}/dispatch/")
        if status != 200:
            raise CommandError(
                f"dispatching shipment {shipment['id']} failed ({status}): {_one_line(body)}"
            )
        self.stdout.write(
            f"Dispatched shipment {shipment['id']} as {username}: "
            f"tracking number {body['tracking_number']}"
        )
        detail = self._order(customer, order_id)
        # The timeline is a read model of its own: it may trail the status a little.
        while not _shipped(detail) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
            detail = self._order(customer, order_id)
        if detail["status"] != "SHIPPED":
            raise CommandError(f"order #{order_id} is still {detail['status']} after dispatch")
        self.stdout.write(
            f"Order #{order_id} is SHIPPED; timeline: "
            + ", ".join(entry["type"] for entry in detail["timeline"])
        )


def _credentials(
    options: dict[str, Any], kept: dict[str, dict[str, str]], role: str
) -> tuple[str, str | None]:
    """(username, password): the options', else the environment's, else what seed_demo kept."""
    username_env, default, password_env = ROLES[role]
    prefix = "admin_" if role == "admin" else ""
    stored = kept.get(role, {})
    username = (
        options.get(f"{prefix}username")
        or os.environ.get(username_env)
        or stored.get("username")
        or default
    )
    password = options.get(f"{prefix}password") or os.environ.get(password_env)
    if not password and stored.get("username") == username:
        password = stored.get("password")
    return username, password or None


def _decided(detail: dict[str, Any]) -> bool:
    """The order left PENDING and its timeline shows the event that decided it."""
    types = {entry["type"] for entry in detail.get("timeline", [])}
    return detail["status"] != "PENDING" and bool(types & set(OUTCOMES))


def _shipped(detail: dict[str, Any]) -> bool:
    types = {entry["type"] for entry in detail.get("timeline", [])}
    return detail["status"] == "SHIPPED" and "shipping.OrderShipped" in types


def _one_line(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return " ".join(text.split())[:300]
