"""Demo data: a small catalogue with stock, a staff user and a customer. Safe to run again.

Generated passwords are printed and kept in a local file (``DEMO_CREDENTIALS_FILE``,
``.demo-users.json`` beside ``manage.py``, which git ignores), where ``make run``
shows them again once everything is up and ``manage.py demo`` finds them.
``--reset-passwords`` gives the demo users new ones.
"""

from __future__ import annotations

import json
import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from inventory import services as inventory
from shop import services
from shop.errors import DomainError

PRODUCTS = [
    ("KB-001", "Mechanical keyboard", "89.00", 25),
    ("MS-002", "Wireless mouse", "29.50", 40),
    ("MN-003", "27-inch monitor", "249.00", 5),
    ("CB-004", "USB-C cable", "9.90", 0),
    ("HP-005", "Noise-cancelling headphones", "199.00", 12),
    ("WC-006", "HD webcam", "59.90", 15),
    ("LS-007", "Laptop stand", "39.00", 30),
]
ROLES = {
    "admin": ("DEMO_ADMIN_USERNAME", "admin", "DEMO_ADMIN_PASSWORD"),
    "customer": ("DEMO_CUSTOMER_USERNAME", "customer", "DEMO_CUSTOMER_PASSWORD"),
}
RESET_HINT = "manage.py seed_demo --reset-passwords"


def credentials_file() -> Path:
    return Path(settings.DEMO_CREDENTIALS_FILE)


def read_credentials(path: Path | None = None) -> dict[str, dict[str, str]]:
    """``{"admin": {"username", "password"}, "customer": {...}}`` from the file, or {}."""
    path = path or credentials_file()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_credentials(kept: dict[str, dict[str, str]]) -> Path:
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Readable by its owner only: it holds passwords.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(kept, out, indent=2)
        out.write("\n")
    return path


class Command(BaseCommand):
    help = (
        "Create demo products with stock, a staff superuser and a customer. Existing ones are "
        "left as they are. Usernames and passwords come from DEMO_ADMIN_USERNAME, "
        "DEMO_ADMIN_PASSWORD, DEMO_CUSTOMER_USERNAME and DEMO_CUSTOMER_PASSWORD; a password "
        "not given is generated, printed and kept in DEMO_CREDENTIALS_FILE."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="give the demo users new passwords (from the environment, else generated)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        created = [
            sku for sku, name, price, stock in PRODUCTS if self._product(sku, name, price, stock)
        ]
        self.stdout.write(
            f"Products: {len(PRODUCTS)} in the demo catalogue, {len(created)} created"
            + (f" ({', '.join(created)})" if created else " (all existed already)")
        )
        for sku, name, price, stock in PRODUCTS:
            self.stdout.write(f"  {sku:<7} {name:<28} {price:>7}  stock {stock}")
        kept = read_credentials()
        reset = options["reset_passwords"]
        changed = self._staff_user(kept, reset=reset) | self._customer(kept, reset=reset)
        if changed:
            path = _write_credentials(kept)
            self.stdout.write(
                f"Generated passwords are kept in {path} (git ignores it); `{RESET_HINT}` "
                "sets new ones."
            )

    def _product(self, sku: str, name: str, price: str, stock: int) -> bool:
        try:
            inventory.product_create(sku=sku, name=name, price=Decimal(price), stock=stock)
        except DomainError as exc:
            if exc.field == "sku":  # exists already: its stock may have moved, keep it
                return False
            raise CommandError(f"cannot create product {sku}: {exc.message}") from exc
        return True

    def _staff_user(self, kept: dict[str, dict[str, str]], *, reset: bool) -> bool:
        username = os.environ.get(ROLES["admin"][0]) or ROLES["admin"][1]
        user = get_user_model().objects.filter(username=username).first()
        if user is not None:
            return self._existing("Staff user", "admin", user, kept, reset=reset)
        password, generated = _password(ROLES["admin"][2])
        with transaction.atomic():
            get_user_model().objects.create_superuser(
                username=username, email=f"{username}@example.com", password=password
            )
        self.stdout.write(
            f"Staff user: {username} created, password: {_shown(password, generated)}"
        )
        return _keep(kept, "admin", username, password, generated)

    def _customer(self, kept: dict[str, dict[str, str]], *, reset: bool) -> bool:
        username = os.environ.get(ROLES["customer"][0]) or ROLES["customer"][1]
        user = get_user_model().objects.filter(username__iexact=username).first()
        if user is not None:
            return self._existing("Customer", "customer", user, kept, reset=reset)
        password, generated = _password(ROLES["customer"][2])
        try:
            services.customer_sign_up(
                username=username, email=f"{username}@example.com", password=password
            )
        except DomainError as exc:
            raise CommandError(
                f"cannot create the demo customer {username}: {exc.message}"
            ) from exc
        self.stdout.write(f"Customer: {username} created, password: {_shown(password, generated)}")
        return _keep(kept, "customer", username, password, generated)

    def _existing(
        self, label: str, role: str, user: Any, kept: dict[str, dict[str, str]], *, reset: bool
    ) -> bool:
        username = user.get_username()
        if reset:
            password, generated = _password(ROLES[role][2])
            try:
                services.password_reset(user=user, password=password)
            except DomainError as exc:
                raise CommandError(
                    f"cannot reset the password of {username}: {exc.message}"
                ) from exc
            self.stdout.write(f"{label}: {username}, new password: {_shown(password, generated)}")
            return _keep(kept, role, username, password, generated)
        stored = kept.get(role, {})
        if stored.get("username") == username and user.check_password(stored.get("password", "")):
            where = f"kept in {credentials_file().name}"
        else:
            where = f"unchanged; `{RESET_HINT}` sets a new one"
        self.stdout.write(f"{label}: {username} (exists already, password {where})")
        return False


def _password(variable: str) -> tuple[str, bool]:
    given = os.environ.get(variable)
    if given:
        return given, False
    password = secrets.token_urlsafe(12)
    while password.startswith("-"):  # it would read as an option on a command line
        password = secrets.token_urlsafe(12)
    return password, True


def _keep(
    kept: dict[str, dict[str, str]], role: str, username: str, password: str, generated: bool
) -> bool:
    """Record a generated password (one from the environment is the operator's own)."""
    if not generated:
        changed = role in kept
        kept.pop(role, None)
        return changed
    kept[role] = {"username": username, "password": password}
    return True


def _shown(password: str, generated: bool) -> str:
    # A password from the environment is the operator's own: not echoed to logs.
    return f"{password} (generated)" if generated else "as given in the environment"
