import json
import os
import re
import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from inventory import selectors as inventory
from outbox.models import OutboxEvent
from shop.management.commands import seed_demo

pytestmark = pytest.mark.django_db

DEMO_SKUS = ["KB-001", "MS-002", "MN-003", "CB-004", "HP-005", "WC-006", "LS-007"]


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def demo_events() -> list[int]:
    products = OutboxEvent.objects.filter(aggregate_type="product", aggregate_id__in=DEMO_SKUS)
    users = OutboxEvent.objects.filter(event_type="shop.UserCreated")
    return sorted([*products.values_list("id", flat=True), *users.values_list("id", flat=True)])


@pytest.fixture
def demo_env(monkeypatch, settings, tmp_path):
    for name in ("DEMO_ADMIN_USERNAME", "DEMO_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEMO_CUSTOMER_USERNAME", "shopper")
    monkeypatch.setenv("DEMO_CUSTOMER_PASSWORD", "a-long-pass-phrase-42")
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo-users.json"
    return settings.DEMO_CREDENTIALS_FILE


def test_seed_creates_the_catalogue_and_the_users(demo_env):
    # when
    out = seed()

    # then: the catalogue, with stock
    stock = {sku: inventory.product_get(sku=sku) for sku in DEMO_SKUS}
    assert (stock["KB-001"].name, str(stock["KB-001"].price), stock["KB-001"].available) == (
        "Mechanical keyboard",
        "89.00",
        25,
    )
    assert stock["MS-002"].available == 40
    assert stock["MN-003"].available == 5
    assert stock["CB-004"].available == 0

    # then: a staff superuser with the printed, generated password
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    password = re.search(r"Staff user: admin created, password: (\S+) \(generated\)", out)[1]
    assert admin.check_password(password)

    # then: a customer signed up the customer way, with the password from the environment
    customer = get_user_model().objects.get(username="shopper")
    assert customer.check_password("a-long-pass-phrase-42")
    assert not customer.is_staff
    assert OutboxEvent.objects.filter(
        event_type="shop.UserCreated", aggregate_id=str(customer.pk)
    ).exists()
    assert "a-long-pass-phrase-42" not in out
    assert "Products: 7 in the demo catalogue, 7 created" in out


def test_seeding_twice_changes_nothing(demo_env, monkeypatch):
    # given
    seed()
    events = demo_events()
    admin = get_user_model().objects.get(username="admin")
    monkeypatch.setenv("DEMO_CUSTOMER_PASSWORD", "another-pass-phrase-43")

    # when
    out = seed()

    # then
    assert demo_events() == events
    assert get_user_model().objects.get(username="admin").password == admin.password
    assert get_user_model().objects.get(username="shopper").check_password("a-long-pass-phrase-42")
    assert inventory.product_get(sku="KB-001").available == 25
    assert "Products: 7 in the demo catalogue, 0 created (all existed already)" in out
    assert "Staff user: admin (exists already, password kept in demo-users.json)" in out
    assert (
        "Customer: shopper (exists already, password unchanged; "
        "`manage.py seed_demo --reset-passwords` sets a new one)" in out
    )


def test_a_weak_customer_password_from_the_environment_is_refused(demo_env, monkeypatch):
    from django.core.management import CommandError

    monkeypatch.setenv("DEMO_CUSTOMER_PASSWORD", "123")

    with pytest.raises(CommandError, match="cannot create the demo customer shopper"):
        seed()

    assert not get_user_model().objects.filter(username="shopper").exists()


def test_generated_passwords_are_kept_in_a_file_only_its_owner_reads(demo_env):
    # when
    out = seed()

    # then the generated staff password is in the file the output names, readable by its owner
    kept = json.loads(demo_env.read_text())
    assert list(kept) == ["admin"]  # the customer's password came from the environment
    assert get_user_model().objects.get(username="admin").check_password(kept["admin"]["password"])
    assert stat.S_IMODE(os.stat(demo_env).st_mode) == 0o600
    assert f"Generated passwords are kept in {demo_env}" in out


def test_reset_passwords_gives_the_demo_users_new_ones(demo_env, monkeypatch):
    # given
    seed()
    old = json.loads(demo_env.read_text())["admin"]["password"]
    monkeypatch.delenv("DEMO_CUSTOMER_PASSWORD")

    # when
    out = StringIO()
    call_command("seed_demo", reset_passwords=True, stdout=out)

    # then both users have the new generated passwords the file keeps, and the old one is gone
    kept = json.loads(demo_env.read_text())
    admin = get_user_model().objects.get(username="admin")
    assert kept["admin"]["password"] != old
    assert admin.check_password(kept["admin"]["password"])
    assert not admin.check_password(old)
    shopper = get_user_model().objects.get(username="shopper")
    assert shopper.check_password(kept["customer"]["password"])
    assert f"Customer: shopper, new password: {kept['customer']['password']} (generated)" in (
        out.getvalue()
    )


def test_a_generated_password_never_starts_with_a_dash(monkeypatch):
    # given token_urlsafe that first draws a password starting with "-"
    draws = iter(["-looks-like-an-option", "a-fine-password"])
    monkeypatch.setattr(seed_demo.secrets, "token_urlsafe", lambda n: next(draws))
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)

    # when
    password, generated = seed_demo._password("DEMO_ADMIN_PASSWORD")

    # then
    assert (password, generated) == ("a-fine-password", True)
