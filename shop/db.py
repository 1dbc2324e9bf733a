"""Small database helpers the apps share."""

from __future__ import annotations

from django.db import connection, models
from django.db.models.fields import AutoFieldMixin


def insert_unless_exists(obj: models.Model) -> bool:
    """INSERT ``obj`` unless a row conflicts with it on a unique constraint; True if inserted.

    One statement (``ON CONFLICT DO NOTHING ... RETURNING``), so no savepoint is
    needed inside a transaction, as catching an ``IntegrityError`` would need.
    On success ``obj`` has its primary key. Works on PostgreSQL and SQLite.
    """
    meta = obj._meta
    fields = [
        f
        for f in meta.concrete_fields
        if f.column and not (f.primary_key and isinstance(f, AutoFieldMixin))
    ]
    quote = connection.ops.quote_name
    pk_column = meta.pk.column if meta.pk is not None else None
    if pk_column is None:  # pragma: no cover - every concrete model has a primary key
        raise TypeError(f"{meta.label} has no primary key column")
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(str(f.column)) for f in fields)}) "  # noqa: S608 - names from the model
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING "
        f"RETURNING {quote(pk_column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return True
