"""Many rows in one PostgreSQL statement, sent as one JSON document.

Batch jobs (the SLA check, the outbox) write hundreds of rows at a time. Django's ``bulk_update`` builds a CASE per
field and row, and even ``unnest`` over one array parameter per column spends most of its time in the driver adapting
every element. A single JSON text parameter read back with ``jsonb_to_recordset`` costs one ``json.dumps`` on this
side and a fast parse on the server, whatever the number of rows and columns.

``recordset`` gives the SQL fragment and its parameter; ``update_many`` is the common UPDATE built on it. Callers
that also run on SQLite keep a plain Django path for it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Field, Model
from django.utils.duration import duration_iso_string


def _encode(value: object) -> object:
    """JSON for the values model attributes hold, in the text form PostgreSQL's input functions read."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_iso_string(value)
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} in a recordset")


def recordset(fields: Sequence[Field[Any, Any]], rows: Iterable[Sequence[object]], alias: str = "v") -> tuple[str, str]:
    """``jsonb_to_recordset(%s::jsonb) AS <alias>(<column> <type>, …)`` for ``fields``, and the JSON parameter
    holding ``rows`` (one value per field, in order: the attribute values, as a model instance holds them)."""
    quote = connection.ops.quote_name
    columns = ", ".join(f"{quote(str(field.column))} {field.cast_db_type(connection)}" for field in fields)
    names = [str(field.column) for field in fields]
    document = json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=_encode)
    return f"jsonb_to_recordset(%s::jsonb) AS {alias}({columns})", document


def update_many(objects: Sequence[Model], names: Sequence[str]) -> None:
    """Write ``names`` of ``objects`` (all of one model) back in one statement; ``Model.save`` logic does not run.

    PostgreSQL: ``UPDATE … FROM jsonb_to_recordset(…)``. Elsewhere: one parameterised UPDATE per row, sent with
    ``executemany``.
    """
    if not objects:
        return
    meta = objects[0]._meta
    pk = meta.pk
    if pk is None:  # every concrete model has one
        raise ValueError(f"{meta.label} has no primary key")
    fields = [meta.get_field(name) for name in names]
    concrete = [field for field in fields if isinstance(field, Field)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    key = quote(str(pk.column))
    if connection.vendor == "postgresql":
        source, document = recordset(
            [pk, *concrete], ([obj.pk, *(getattr(obj, field.attname) for field in concrete)] for obj in objects)
        )
        assignments = ", ".join(f"{quote(str(field.column))} = v.{quote(str(field.column))}" for field in concrete)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {source} "  # noqa: S608 - names from the model
                f"WHERE {table}.{key} = v.{key}",
                [document],
            )
        return
    setters = ", ".join(f"{quote(str(field.column))} = %s" for field in concrete)
    rows = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in concrete]
        + [pk.get_db_prep_value(obj.pk, connection)]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {setters} WHERE {key} = %s", rows)  # noqa: S608


def insert_many(objects: Sequence[Model]) -> None:
    """INSERT ``objects`` (all of one model) in one statement, as ``bulk_create`` would without returning ids: an
    auto-incremented key is left to the database, every other field is the value ``pre_save`` gives (``auto_now``
    stamps included). ``Model.save`` logic and signals do not run.

    PostgreSQL: ``INSERT … SELECT … FROM jsonb_to_recordset(…)``. Elsewhere: ``bulk_create``.
    """
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objects)
        return
    meta = model._meta
    fields = [
        field
        for field in meta.concrete_fields
        if not (field.primary_key and getattr(field, "db_returning", False))  # serial keys come from the database
    ]
    source, document = recordset(fields, ([field.pre_save(obj, True) for field in fields] for obj in objects))
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {columns} FROM {source}",  # noqa: S608
            [document],
        )
