"""``shop.db.Lookup`` and ``save_fields``: what the ORM does, by statements compiled once."""

import threading
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import Payment
from shipping.models import Shipment
from shop.db import Lookup, insert, save_fields

pytestmark = pytest.mark.django_db(transaction=True)


def _payment(order_id: int = 7) -> Payment:
    return Payment.objects.create(
        order_id=order_id,
        customer_id=3,
        amount=Decimal("12.50"),
        currency="EUR",
        status=Payment.Status.PENDING,
        due_at=timezone.now(),
    )


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_a_lookup_gives_the_querysets_row_with_every_field_converted():
    # given a payment (decimal, UUID, datetimes) and a shipment (JSON lines)
    payment = _payment()
    shipment = Shipment.objects.create(order_id=7, customer_id=3, lines=[{"sku": "A", "n": 1}])

    # when each is looked up by a key, twice (compiled once, then bound)
    by_order = Lookup(Payment, "order_id")
    found = [by_order.get(7), by_order.get(7)]
    shipped = Lookup(Shipment, "pk").get(shipment.pk)

    # then the rows equal what the ORM reads, field by field, as saved rows
    assert [_fields(p) for p in found] == [_fields(Payment.objects.get(pk=payment.pk))] * 2
    assert isinstance(found[0].amount, Decimal) and found[0].charge_key == payment.charge_key
    assert shipped is not None and shipped.lines == [{"sku": "A", "n": 1}]
    assert found[0]._state.adding is False and found[0]._state.db == "default"


def test_a_lookup_is_one_statement_without_ordering_and_none_when_nothing_matches():
    _payment(order_id=8)
    lookup = Lookup(Payment, "order_id", "customer_id")
    lookup.get(8, 3)  # compiled

    with CaptureQueriesContext(connection) as queries:
        assert lookup.get(8, 3) is not None
        assert lookup.get(8, 4) is None
        assert lookup.get(9, 3) is None

    assert len(queries) == 3
    assert all("ORDER BY" not in q["sql"] and "LIMIT 1" in q["sql"] for q in queries)


def test_only_narrows_the_columns_and_a_none_value_looks_for_null():
    payment = _payment()
    narrow = Lookup(Payment, "pk", only=("status",)).get(payment.pk)
    assert narrow is not None and narrow.get_deferred_fields() >= {"amount", "currency"}
    assert narrow.status == Payment.Status.PENDING

    by_refund_key = Lookup(Payment, "refund_key")
    assert by_refund_key.get(None) == payment  # IS NULL, through the queryset
    assert by_refund_key.get(payment.charge_key) is None


def test_all_gives_every_row_in_the_order_asked_for_by_one_statement():
    for order_id in (41, 43, 42):
        _payment(order_id=order_id)
    by_customer = Lookup(Payment, "customer_id", order_by=["-order_id"])
    by_customer.all(3)  # compiled

    with CaptureQueriesContext(connection) as queries:
        found = by_customer.all(3)
        nothing = by_customer.all(4)

    assert [p.order_id for p in found] == [43, 42, 41] and nothing == []
    assert [_fields(p) for p in found] == [
        _fields(p) for p in Payment.objects.filter(customer_id=3).order_by("-order_id")
    ]
    assert len(queries) == 2 and "LIMIT" not in queries[0]["sql"]
    assert by_customer.get(3) == found[0]  # get takes the first in that order


def test_any_of_gives_the_rows_of_any_value_in_order_one_value_by_the_compiled_statement():
    for order_id in (51, 53, 52):
        _payment(order_id=order_id)
    by_order = Lookup(Payment, "order_id", order_by=["-order_id"])
    by_order.any_of([51])  # compiled

    with CaptureQueriesContext(connection) as queries:
        one = by_order.any_of([52, 52])
    several = by_order.any_of([51, 53, 99])

    assert [p.order_id for p in one] == [52] and "IN" not in queries[0]["sql"]
    assert [p.order_id for p in several] == [53, 51]
    assert by_order.any_of([]) == []
    with pytest.raises(TypeError, match="one field"):
        Lookup(Payment, "order_id", "customer_id").any_of([1])


def test_wrong_use_is_a_type_error():
    with pytest.raises(TypeError, match="at least one field"):
        Lookup(Payment)
    with pytest.raises(TypeError, match="1 value"):
        Lookup(Payment, "pk").get(1, 2)


def test_save_fields_writes_the_fields_given_and_stamps_auto_now_as_save_does():
    # given a payment, and a stale copy of it with two fields changed
    payment = _payment(order_id=11)
    stale = Payment.objects.get(pk=payment.pk)
    Payment.objects.filter(pk=payment.pk).update(tries=4)
    stale.refund_requested, stale.failure_reason = True, "not saved"
    before = stale.updated_at

    # when one of them and the time are saved, twice (compiled once, then bound)
    save_fields(stale, ["refund_requested", "updated_at"])
    with CaptureQueriesContext(connection) as queries:
        save_fields(stale, ["refund_requested", "updated_at"])

    # then one UPDATE by key wrote them; the other columns kept what the row held
    row = Payment.objects.get(pk=payment.pk)
    assert (row.refund_requested, row.tries, row.failure_reason) == (True, 4, "")
    assert row.updated_at == stale.updated_at > before
    assert len(queries) == 1 and queries[0]["sql"].startswith("UPDATE")


def test_save_fields_refuses_a_missing_row_and_what_is_not_a_column():
    payment = _payment(order_id=12)
    Payment.objects.filter(pk=payment.pk).delete()
    with pytest.raises(DatabaseError, match="no row updated"):
        save_fields(payment, ["status"])
    with pytest.raises(TypeError, match="not a column"):
        save_fields(payment, ["id"])
    with pytest.raises(TypeError, match="at least one field"):
        save_fields(payment, [])


def test_insert_writes_rows_in_one_statement_and_gives_each_its_key():
    # given three payments built in memory
    payments = [
        Payment(
            order_id=20 + n,
            customer_id=3,
            amount=Decimal("1.25") * (n + 1),
            currency="EUR",
            status=Payment.Status.PENDING,
            due_at=timezone.now(),
        )
        for n in range(3)
    ]

    # when they are inserted at once
    with CaptureQueriesContext(connection) as queries:
        insert(*payments)

    # then one INSERT wrote them, each object has its row's key, stamps and defaults
    assert len(queries) == 1
    for payment in payments:
        row = Payment.objects.get(pk=payment.pk)
        assert (row.order_id, row.amount) == (payment.order_id, payment.amount)
        assert row.created_at == payment.created_at and row.charge_key == payment.charge_key
        assert payment._state.adding is False
    assert sorted(p.pk for p in payments) == [p.pk for p in payments]


def test_insert_raises_on_a_constraint_and_refuses_mixed_or_no_objects():
    _payment(order_id=30)
    with pytest.raises(IntegrityError), transaction.atomic():
        insert(Payment(order_id=30, customer_id=3, amount=1, currency="EUR", due_at=timezone.now()))
    assert Payment.objects.filter(order_id=30).count() == 1
    with pytest.raises(TypeError, match="one model"):
        insert()
    with pytest.raises(TypeError, match="one model"):
        insert(Payment(order_id=31), Shipment(order_id=31))


def _in_another_session(sql: str, params: list | None = None) -> BaseException | None:
    """Run ``sql`` in a transaction of another database session; the error it raised, if any."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
        except DatabaseError as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the other session did not answer"
    return errors[0] if errors else None


def _other_session_can(sql: str, pk: int) -> bool:
    """Whether another database session gets ``sql`` (a NOWAIT lock) on the row at once."""
    return _in_another_session(sql, [pk]) is None


@pytest.mark.parametrize(
    ("lock", "key_share_waits"),
    [("update", True), ("no key", False)],
)
def test_a_locking_lookup_holds_the_row_until_commit(lock, key_share_waits):
    payment = _payment()
    update = "SELECT 1 FROM payments_payment WHERE id = %s FOR UPDATE NOWAIT"
    key_share = "SELECT 1 FROM payments_payment WHERE id = %s FOR KEY SHARE NOWAIT"

    with transaction.atomic():
        assert Lookup(Payment, "pk", lock=lock).get(payment.pk) == payment
        assert not _other_session_can(update, payment.pk)
        # FOR NO KEY UPDATE lets a foreign key's check (KEY SHARE) through; FOR UPDATE does not
        assert _other_session_can(key_share, payment.pk) is not key_share_waits

    assert _other_session_can(update, payment.pk)


def _stale_plan_error() -> Exception:
    """Run a statement until it is prepared, change the type it returns, run it again."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE db_test_stale (x integer)")
        for _ in range(8):  # past DATABASE_PREPARE_THRESHOLD: prepared on this session
            cursor.execute("SELECT x FROM db_test_stale WHERE x > %s", [0])
        # by another session (psycopg forgets its own plans after its own ALTER)
        assert _in_another_session("ALTER TABLE db_test_stale ALTER COLUMN x TYPE bigint") is None
        with pytest.raises(DatabaseError) as caught:
            cursor.execute("SELECT x FROM db_test_stale WHERE x > %s", [0])
    return caught.value


def test_a_prepared_statement_a_migration_outdated_closes_its_connection_at_the_end():
    from outbox.failures import stale_plan

    try:
        # given a statement prepared on this session, outdated by a change of its table
        error = _stale_plan_error()
        assert stale_plan(error)
        # then the connection is obsolete: Django's end of request (or task) closes it
        assert connection.close_at == 0.0
        connection.close_if_unusable_or_obsolete()
        assert connection.connection is None
        # and the next session runs the statement again
        with connection.cursor() as cursor:
            cursor.execute("SELECT x FROM db_test_stale WHERE x > %s", [0])
            assert cursor.fetchall() == []
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS db_test_stale")


def test_insert_new_writes_only_the_rows_that_conflict_with_none_in_one_statement():
    # given a timeline entry already stored (unique event id)
    from uuid import uuid4

    from orders.models import TimelineEntry
    from shop.db import insert_new

    def entry(event_id, order_id: int) -> TimelineEntry:
        return TimelineEntry(
            order_id=order_id,
            event_id=event_id,
            event_type="orders.OrderCreated",
            occurred_at=timezone.now(),
            sequence=order_id,
            data={"order_id": order_id, "note": 'naïve "quoted" \\ ☃'},
        )

    stored = entry(uuid4(), 1)
    stored.save()
    fresh = [entry(uuid4(), 2), entry(stored.event_id, 3), entry(uuid4(), 4)]

    # when it and two new ones are inserted together
    with CaptureQueriesContext(connection) as queries:
        inserted = insert_new(fresh)

    # then one statement wrote the two new rows, with every value as the ORM reads it
    assert inserted == 2 and len(queries) == 1
    rows = {row.order_id: row for row in TimelineEntry.objects.all()}
    assert sorted(rows) == [1, 2, 4]
    for obj in (fresh[0], fresh[2]):
        got = rows[obj.order_id]
        assert (got.event_id, got.occurred_at, got.data) == (
            obj.event_id,
            obj.occurred_at,
            obj.data,
        )
    assert insert_new([]) == 0
    with pytest.raises(TypeError):
        insert_new([fresh[0], _payment()])
