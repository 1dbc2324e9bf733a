"""Small database helpers the apps share."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, Generic, Literal, TypeVar

from django.db import DatabaseError, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.fields import AutoFieldMixin

from outbox.failures import stale_plan

M = TypeVar("M", bound=models.Model)


def insert_unless_exists(obj: models.Model) -> bool:
    """INSERT ``obj`` unless a row conflicts with it on a unique constraint; True if inserted.

    One statement (``ON CONFLICT DO NOTHING ... RETURNING``), so no savepoint is
    needed inside a transaction, as catching an ``IntegrityError`` would need.
    On success ``obj`` has its primary key. Works on PostgreSQL and SQLite.
    """
    return bool(_insert([obj], on_conflict_do_nothing=True))


def insert_new(objs: Sequence[models.Model]) -> int:
    """INSERT, in one statement, those of ``objs`` (of one model) that conflict with no row.

    Returns how many were inserted; their primary keys are not set. On PostgreSQL
    the rows travel as one array per column (``unnest``), so the statement is the
    same whatever their number and is prepared once; elsewhere it is
    ``insert_unless_exists`` for each.
    """
    if not objs:
        return 0
    model = type(objs[0])
    if any(type(obj) is not model for obj in objs):
        raise TypeError("insert_new takes objects of one model")
    if connection.vendor != "postgresql":
        return sum(insert_unless_exists(obj) for obj in objs)
    sql, fields = _insert_unnest_statement(model)
    columns = [
        [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in objs] for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)
        return cursor.rowcount


@functools.lru_cache(maxsize=64)
def _insert_unnest_statement(model: type[models.Model]) -> tuple[str, list[models.Field]]:
    fields = _insert_fields(model)
    quote = connection.ops.quote_name
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608 - names from the model
        f"({', '.join(quote(str(f.column)) for f in fields)}) "
        f"SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING"
    )
    return sql, fields


def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if f.column and not (f.primary_key and isinstance(f, AutoFieldMixin))
    ]


def insert(*objs: models.Model) -> None:
    """INSERT the objects (of one model) in one statement compiled once per model and count.

    ``Model.objects.create`` or ``bulk_create`` without the ORM's compile, for the
    hot paths: values go through ``pre_save`` and ``get_db_prep_save`` as in
    ``save``, every object gets its primary key, and no signals are sent (the
    shop has no receivers). A constraint violation raises ``IntegrityError``.
    """
    if len({type(obj) for obj in objs}) != 1:
        raise TypeError("insert takes one or more objects of one model")
    _insert(objs, on_conflict_do_nothing=False)


def _insert(objs: Sequence[models.Model], *, on_conflict_do_nothing: bool) -> int:
    sql, fields = _insert_statement(
        type(objs[0]), len(objs), on_conflict_do_nothing, connection.vendor
    )
    values = [
        f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in objs for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        keys = cursor.fetchall()  # in the VALUES' order, as bulk_create relies on too
    for obj, (key,) in zip(objs, keys, strict=False):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = connection.alias
    return len(keys)


@functools.lru_cache(maxsize=512)
def _insert_statement(
    model: type[models.Model], rows: int, on_conflict_do_nothing: bool, vendor: str
) -> tuple[str, list[models.Field]]:
    meta = model._meta
    fields = _insert_fields(model)
    quote = connection.ops.quote_name
    pk_column = meta.pk.column if meta.pk is not None else None
    if pk_column is None:  # pragma: no cover - every concrete model has a primary key
        raise TypeError(f"{meta.label} has no primary key column")
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(str(f.column)) for f in fields)}) "  # noqa: S608 - names from the model
        f"VALUES {', '.join([row] * rows)}"
        f"{' ON CONFLICT DO NOTHING' if on_conflict_do_nothing else ''} RETURNING {quote(pk_column)}"
    )
    return sql, fields


def save_fields(obj: models.Model, fields: Sequence[str]) -> None:
    """``obj.save(update_fields=fields)`` by a statement compiled once per model and fields.

    For the saves on the handlers' hot paths, where compiling the UPDATE costs
    more than running it. The values go through each field's ``pre_save`` (so
    ``auto_now`` stamps the time) and ``get_db_prep_save``, as in ``save``. Unlike
    ``save`` it sends no ``pre_save``/``post_save`` signals (the shop has no
    receivers). Raises ``DatabaseError`` when no row has the object's key, as
    ``save(update_fields=...)`` does.
    """
    sql, targets = _update_statement(type(obj), tuple(fields), connection.vendor)
    values = [f.get_db_prep_save(f.pre_save(obj, add=False), connection) for f in targets]
    key = obj._meta.pk.get_db_prep_value(obj.pk, connection)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, key])
        if cursor.rowcount != 1:
            raise DatabaseError(f"{type(obj).__name__} {obj.pk}: no row updated")


@functools.cache
def _update_statement(
    model: type[models.Model], names: tuple[str, ...], vendor: str
) -> tuple[str, list[models.Field]]:
    meta = model._meta
    targets = []
    for name in names:
        field = meta.get_field(name)
        if not isinstance(field, models.Field) or not field.concrete or field.primary_key:
            raise TypeError(f"{meta.label}.{name} is not a column to update")
        targets.append(field)
    if not targets:
        raise TypeError("save_fields needs at least one field")
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in targets)
    key = quote(str(meta.pk.column))  # type: ignore[union-attr]
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {key} = %s"  # noqa: S608 - names from the model
    return sql, targets


class Lookup(Generic[M]):
    """The rows of ``model`` whose ``fields`` equal the values given, by a statement compiled once.

    For the lookups by key on the handlers' hot paths: building and compiling a
    queryset costs a lookup more than running it, and a handler makes several.
    The statement is the queryset's own (``filter(**fields)``, ordered by
    ``order_by`` or not at all, ``LIMIT 1`` for ``get``; ``lock`` adds ``FOR UPDATE``
    or ``FOR NO KEY UPDATE``, ``only`` narrows the columns), compiled on first use
    per database alias, and the rows come back through the queryset's converters::

        ORDER_FOR_UPDATE = Lookup(Order, "pk", lock="no key")
        order = ORDER_FOR_UPDATE.get(order_id)  # an Order, or None
        LINES = Lookup(OrderLine, "order_id", order_by=["id"])
        lines = LINES.all(order_id)  # a list

    A ``None`` value (``IS NULL``, another statement) goes through the queryset.
    """

    def __init__(
        self,
        model: type[M],
        *fields: str,
        lock: Literal["", "update", "no key"] = "",
        only: Sequence[str] = (),
        order_by: Sequence[str] = (),
    ) -> None:
        if not fields:
            raise TypeError("a Lookup needs at least one field")
        self.model = model
        self.fields = fields
        self.lock = lock
        self.only = tuple(only)
        self.order_by = tuple(order_by)
        meta = model._meta
        self._prep: list[models.Field] = []
        for name in fields:
            field = meta.pk if name == "pk" else meta.get_field(name)
            if not isinstance(field, models.Field):
                raise TypeError(f"{meta.label}.{name} is not a column")
            self._prep.append(field)
        self._compiled: dict[tuple[str, bool], tuple[str, Any, list, list[str]]] = {}

    def queryset(self, *values: object, many: bool = False) -> models.QuerySet[M]:
        """The same lookup as a queryset (what ``get``, or with ``many`` ``all``, compiles)."""
        return self._queryset(list(zip(self.fields, values, strict=True)), many=many)

    def any_of(self, values: Iterable[object], using: str = "default") -> list[M]:
        """The rows whose (one) field is any of ``values``, in ``order_by``'s order.

        One value, the common case, takes the compiled statement; several go
        through the queryset's ``__in``, whose statement changes with their number.
        """
        if len(self.fields) != 1:
            raise TypeError("any_of needs a Lookup of one field")
        distinct = list(dict.fromkeys(values))
        if len(distinct) == 1:
            return self.all(distinct[0], using=using)
        name = f"{self.fields[0]}__in"
        return list(self._queryset([(name, distinct)], many=True).using(using))

    def _queryset(self, filters: list[tuple[str, object]], *, many: bool) -> models.QuerySet[M]:
        queryset = self.model._default_manager.all()
        for name, value in filters:
            queryset = queryset.filter(**{name: value})  # one by one: the parameters' order
        if self.lock:
            queryset = queryset.select_for_update(no_key=self.lock == "no key")
        if self.only:
            queryset = queryset.only(*self.only)
        queryset = queryset.order_by(*self.order_by)
        return queryset if many else queryset[:1]

    def get(self, *values: object, using: str = "default") -> M | None:
        """The first row (by ``order_by``, else any), or None."""
        return next(iter(self._rows(values, using, many=False)), None)

    def all(self, *values: object, using: str = "default") -> list[M]:
        """Every row, in ``order_by``'s order."""
        return self._rows(values, using, many=True)

    def _rows(self, values: Sequence[object], using: str, *, many: bool) -> list[M]:
        if len(values) != len(self.fields):
            raise TypeError(f"{len(self.fields)} value(s) expected, {len(values)} given")
        if any(value is None for value in values):
            return list(self.queryset(*values, many=many).using(using))
        db = connections[using]
        params = [
            field.get_db_prep_value(value, db, prepared=False)
            for field, value in zip(self._prep, values, strict=True)
        ]
        compiled = self._compiled.get((using, many)) or self._compile(values, params, using, many)
        sql, compiler, converters, attnames = compiled
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        return [self.model.from_db(using, attnames, row) for row in rows]

    def _compile(self, values: Sequence[object], params: list, using: str, many: bool) -> tuple:
        compiler = self.queryset(*values, many=many).query.get_compiler(using)
        sql, compiled_params = compiler.as_sql()
        if list(compiled_params) != params:
            raise TypeError(
                f"Lookup({self.model.__name__}, {', '.join(self.fields)}) binds "
                f"{list(compiled_params)!r}, not the values given: use a queryset"
            )
        expressions = [column for column, _, _ in compiler.select]
        converters = compiler.get_converters(expressions)
        attnames = [column.target.attname for column in expressions]
        compiled = (sql, compiler, converters, attnames)
        self._compiled[(using, many)] = compiled
        return compiled


def watch_for_stale_plans(
    sender: object, connection: BaseDatabaseWrapper, **kwargs: object
) -> None:
    """On every new connection that prepares statements: close it after one whose plan went stale.

    A migration that changes what a prepared statement returns makes PostgreSQL
    refuse it on that session until the session ends. The connection is then
    marked obsolete, and Django closes it at the end of the request or task: the
    next one starts a fresh session (the readers renew theirs themselves).
    """
    if connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None:
        connection.execute_wrappers.append(_close_after_stale_plan)


def _close_after_stale_plan(execute, sql, params, many, context):  # Django's execute hook
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        if stale_plan(exc):
            context["connection"].close_at = 0.0
        raise
