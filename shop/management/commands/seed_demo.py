"""Demo data: a small catalogue with stock, a staff user and a customer. Safe to run again."""

from __future__ import annotations

import os
import secrets
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
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


class Command(BaseCommand):
    help = (
        "Create demo products with stock, a staff superuser and a customer. Existing ones are "
        "left as they are. Usernames and passwords come from DEMO_ADMIN_USERNAME, "
        "DEMO_ADMIN_PASSWORD, DEMO_CUSTOMER_USERNAME and DEMO_CUSTOMER_PASSWORD; a password "
        "not given is generated and printed."
    )

    def handle(self, *args, **options) -> None:
        created = [
            sku for sku, name, price, stock in PRODUCTS if self._product(sku, name, price, stock)
        ]
        self.stdout.write(
            f"Products: {len(PRODUCTS)} in the demo catalogue, {len(created)} created"
            + (f" ({', '.join(created)})" if created else " (all existed already)")
        )
        for sku, name, price, stock in PRODUCTS:
            self.stdout.write(f"  {sku:<7} {name:<28} {price:>7}  stock {stock}")
        self._staff_user()
        self._customer()

    def _product(self, sku: str, name: str, price: str, stock: int) -> bool:
        try:
            inventory.product_create(sku=sku, name=name, price=Decimal(price), stock=stock)
        except DomainError as exc:
            if exc.field == "sku":  # exists already: its stock may have moved, keep it
                return False
            raise CommandError(f"cannot create product {sku}: {exc.message}") from exc
        return True

    def _staff_user(self) -> None:
        username = os.environ.get("DEMO_ADMIN_USERNAME") or "admin"
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            self.stdout.write(f"Staff user: {username} (exists already, password unchanged)")
            return
        password, generated = _password("DEMO_ADMIN_PASSWORD")
        with transaction.atomic():
            user_model.objects.create_superuser(
                username=username, email=f"{username}@example.com", password=password
            )
        self.stdout.write(
            f"Staff user: {username} created, password: {_shown(password, generated)}"
        )

    def _customer(self) -> None:
        username = os.environ.get("DEMO_CUSTOMER_USERNAME") or "customer"
        if get_user_model().objects.filter(username__iexact=username).exists():
            self.stdout.write(f"Customer: {username} (exists already, password unchanged)")
            return
        password, generated = _password("DEMO_CUSTOMER_PASSWORD")
        try:
            services.customer_sign_up(
                username=username, email=f"{username}@example.com", password=password
            )
        except DomainError as exc:
            raise CommandError(
                f"cannot create the demo customer {username}: {exc.message}"
            ) from exc
        self.stdout.write(f"Customer: {username} created, password: {_shown(password, generated)}")


def _password(variable: str) -> tuple[str, bool]:
    given = os.environ.get(variable)
    if given:
        return given, False
    return secrets.token_urlsafe(12), True


def _shown(password: str, generated: bool) -> str:
    # A password from the environment is the operator's own: not echoed to logs.
    return f"{password} (generated)" if generated else "as given in the environment"
