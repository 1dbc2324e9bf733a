"""The saga, payments in phases included, on the default database (SQLite), in-process."""

import subprocess
import sys
from pathlib import Path

from conftest import process_env

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from decimal import Decimal
from inventory import services as inventory
from orders import services as orders
from orders.models import Order
from payments.models import Payment
from shop.tests.sagas import settle

inventory.product_create(sku="SQ-1", name="Thing", price=Decimal("5.00"), stock=3)
settle()
lines = [orders.LineIn(sku="SQ-1", quantity=1)]
orders.order_place(customer_id=1, lines=lines)
later = orders.order_place(customer_id=1, lines=lines, payment_token="tok_timeoutAfterCharge")
settle()
orders.order_cancel(order_id=later.order.pk)
settle()
print(sorted(Order.objects.values_list("status", flat=True)),
      sorted(Payment.objects.values_list("status", flat=True)))
"""


def test_the_saga_runs_on_sqlite(settings, tmp_path):
    env = process_env(
        settings,
        DATABASE_URL=f"sqlite:///{tmp_path / 'saga.sqlite3'}",
        PAYMENTS_DISPATCH_ON_COMMIT="false",
    )
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert (
        run.stdout.strip().splitlines()[-1] == "['CANCELLED', 'CONFIRMED'] ['CAPTURED', 'REFUNDED']"
    )
