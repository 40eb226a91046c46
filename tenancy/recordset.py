"""Many rows in one PostgreSQL statement.

Batch jobs (the SLA check, the outbox, recurring invoicing) write hundreds of rows at a time, where Django's
``bulk_create`` and ``bulk_update`` build model instances, a placeholder per value and (for updates) a CASE per field
and row. Two faster shapes:

- **Updates and upserts** send the rows as one JSON text parameter read back with ``jsonb_to_recordset``: one
  ``json.dumps`` here and a fast parse on the server, whatever the number of rows and columns. Each column's values
  are turned into JSON's types by a converter chosen once per column from its field (``str`` for decimals and uuids,
  ``isoformat`` for dates), not by a fallback called for every value.
- **Inserts** stream the rows with ``COPY … FROM STDIN``, which psycopg adapts in C.

``recordset`` gives the SQL fragment and its parameter; ``update_many`` / ``update_rows`` and ``insert_many`` /
``insert_rows`` are the common statements built on them, each with a plain Django path for SQLite.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import nullcontext
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import Field, Model
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.duration import duration_iso_string

Convert = Callable[[Any], Any]


def _encode(value: object) -> object:
    """JSON for the values model attributes hold, in the text form PostgreSQL's input functions read (for values a
    column's converter did not expect)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_iso_string(value)
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} in a recordset")


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else str(value)


def _iso(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else value.isoformat()


def _duration(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else duration_iso_string(value)


def _converter(field: Field[Any, Any]) -> Convert | None:
    """How a value of ``field`` becomes JSON (None: it already is)."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.DateField | models.TimeField):  # DateTimeField is a DateField
        return _iso
    if isinstance(target, models.DurationField):
        return _duration
    if isinstance(target, models.DecimalField | models.UUIDField):
        return _text
    return None


def recordset(fields: Sequence[Field[Any, Any]], rows: Iterable[Sequence[object]], alias: str = "v") -> tuple[str, str]:
    """``jsonb_to_recordset(%s::jsonb) AS <alias>(<column> <type>, …)`` for ``fields``, and the JSON parameter
    holding ``rows`` (one value per field, in order: the attribute values, as a model instance holds them)."""
    quote = connection.ops.quote_name
    columns = ", ".join(f"{quote(str(field.column))} {field.cast_db_type(connection)}" for field in fields)
    names = [str(field.column) for field in fields]
    converters = [(index, convert) for index, field in enumerate(fields) if (convert := _converter(field)) is not None]
    if converters:
        converted = []
        for row in rows:
            values = list(row)
            for index, convert in converters:
                values[index] = convert(values[index])
            converted.append(values)
        rows = converted
    document = json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=_encode)
    return f"jsonb_to_recordset(%s::jsonb) AS {alias}({columns})", document


def among(field: Field[Any, Any], values: Collection[Any]) -> Any:
    """The right side of ``<field>__in`` for many values. PostgreSQL: ``SELECT unnest(%s::<type>[])``, one array
    parameter the driver adapts at once, not a placeholder per value that Django resolves one by one. Elsewhere: the
    values."""
    if connection.vendor != "postgresql":
        return list(values)
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    return RawSQL(f"SELECT unnest(%s::{target.cast_db_type(connection)}[])", [list(values)])  # noqa: S611


def update_many(objects: Sequence[Model], names: Sequence[str]) -> None:
    """Write ``names`` of ``objects`` (all of one model) back in one statement; ``Model.save`` logic does not run."""
    if not objects:
        return
    meta = objects[0]._meta
    attnames = [meta.get_field(name).attname for name in names]  # type: ignore[union-attr]
    update_rows(type(objects[0]), names, [[obj.pk, *(getattr(obj, name) for name in attnames)] for obj in objects])


def update_rows(model: type[Model], names: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Set ``names`` of ``model``'s rows: each row is the primary key, then one attribute value per name.

    PostgreSQL: ``UPDATE … FROM jsonb_to_recordset(…)``. Elsewhere: one parameterised UPDATE per row, sent with
    ``executemany``.
    """
    if not rows:
        return
    meta = model._meta
    pk = meta.pk
    if pk is None:  # every concrete model has one
        raise ValueError(f"{meta.label} has no primary key")
    fields = [meta.get_field(name) for name in names]
    concrete = [field for field in fields if isinstance(field, Field)]
    if len(concrete) != len(fields):
        raise ValueError(f"{meta.label}: only concrete fields can be updated, not {list(names)}")
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    key = quote(str(pk.column))
    if connection.vendor == "postgresql":
        source, document = recordset([pk, *concrete], rows)
        assignments = ", ".join(f"{quote(str(field.column))} = v.{quote(str(field.column))}" for field in concrete)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {source} "  # noqa: S608 - names from the model
                f"WHERE {table}.{key} = v.{key}",
                [document],
            )
        return
    setters = ", ".join(f"{quote(str(field.column))} = %s" for field in concrete)
    prepared = [
        [field.get_db_prep_save(value, connection) for field, value in zip(concrete, row[1:], strict=True)]
        + [pk.get_db_prep_value(row[0], connection)]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {setters} WHERE {key} = %s", prepared)  # noqa: S608


def insert_many(objects: Sequence[Model]) -> None:
    """INSERT ``objects`` (all of one model), as ``bulk_create`` would without returning ids: an auto-incremented
    key is left to the database, every other field is the value ``pre_save`` gives (``auto_now`` stamps included).
    ``Model.save`` logic and signals do not run."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objects)
        return
    fields = _insertable(model)
    insert_rows(
        model, [field.name for field in fields], [[field.pre_save(obj, True) for field in fields] for obj in objects]
    )


def _insertable(model: type[Model]) -> list[Field[Any, Any]]:
    """The fields an INSERT names: every concrete one but a key the database numbers."""
    return [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and getattr(field, "db_returning", False))
    ]


def _copy_value(field: Field[Any, Any], value: Any) -> Any:
    """``value`` as COPY sends it: JSON as its text (as ``DjangoJSONEncoder`` writes dates, decimals and uuids unless
    the field names another encoder), anything else as the field prepares it."""
    if isinstance(field, models.JSONField):
        if value is None:
            return None
        if field.encoder is None:
            try:
                return json.dumps(value)  # plain JSON types: the C encoder alone
            except TypeError:
                pass
        return json.dumps(value, cls=field.encoder or DjangoJSONEncoder)
    return field.get_db_prep_save(value, connection)


def _stamped(field: Field[Any, Any]) -> bool:
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))


def insert_rows(model: type[Model], names: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """INSERT ``rows`` of ``model``, each one attribute value per name, in order. A field not named takes its
    default, computed once for all the rows (``auto_now`` and ``auto_now_add`` stamps: now), and an auto-incremented
    key is numbered by the database; any other primary key must be named. ``Model.save`` logic and signals do not
    run.

    PostgreSQL: ``COPY … FROM STDIN``, the named columns first, then the defaults. Elsewhere: ``bulk_create``.
    """
    if not rows:
        return
    meta = model._meta
    named = [field for name in names if isinstance(field := meta.get_field(name), Field)]
    if len(named) != len(names):
        raise ValueError(f"{meta.label}: only concrete fields can be inserted, not {list(names)}")
    insertable = _insertable(model)
    unknown = [field.name for field in named if field not in insertable]
    if unknown:
        raise ValueError(f"{meta.label} has no insertable field {unknown}")
    rest = [field for field in insertable if field not in named]
    if any(field.primary_key for field in rest):
        raise ValueError(f"{meta.label}: name the primary key; a default would give every row the same one")
    now = timezone.now()
    defaults = [now if _stamped(field) else field.get_default() for field in rest]
    attnames = [field.attname for field in named]
    if connection.vendor != "postgresql":
        fixed = {field.attname: value for field, value in zip(rest, defaults, strict=True)}
        json_named = [index for index, field in enumerate(named) if isinstance(field, models.JSONField)]
        objects = []
        for row in rows:
            values = dict(zip(attnames, row, strict=True))
            for index in json_named:  # stored as COPY would store it
                text = _copy_value(named[index], row[index])
                values[attnames[index]] = None if text is None else json.loads(text)
            objects.append(model(**fixed, **values))
        model._default_manager.bulk_create(objects)
        return
    tail = tuple(_copy_value(field, value) for field, value in zip(rest, defaults, strict=True))
    adapt = [(index, field) for index, field in enumerate(named) if isinstance(field, models.JSONField)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in [*named, *rest])

    def rows_out() -> Iterable[Sequence[object]]:
        last: tuple[object, Any] = (None, None)  # rows often share a JSON value (one payload, two events)
        for row in rows:
            if adapt:
                row = list(row)
                for index, field in adapt:
                    value = row[index]
                    if value is not last[0]:
                        last = (value, _copy_value(field, value))
                    row[index] = last[1]
            yield (*row, *tail)

    _copy_in(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN", rows_out())


def _copy_in(sql: str, rows: Iterable[Sequence[object]]) -> None:
    """Run ``COPY … FROM STDIN`` with ``rows`` as a statement Django sees: through the connection's execute wrappers,
    and in ``connection.queries`` (and so in test query counts) when queries are logged."""

    def copy_rows(sql: str, params: object, many: bool, context: object) -> None:
        connection.validate_no_broken_transaction()
        with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    with connection.cursor() as cursor:
        logged = cursor.debug_sql(sql) if isinstance(cursor, CursorDebugWrapper) else nullcontext()
        with logged:
            cursor._execute_with_wrappers(sql, None, False, copy_rows)
