"""Checks of the plain values the pure billing modules (``billing.forecast``, ``billing.metrics``) take: each returns
the value (a currency code upper-cased) or raises ValueError naming the argument and what it has to be. Pure: standard
library only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import TypeVar

from billing.proration import minor_units

__all__ = ["EXACT", "check_bool", "check_currency", "check_date", "check_id", "check_items", "check_money"]

_T = TypeVar("_T")

EXACT = Context(prec=60, traps=[Inexact, InvalidOperation, Overflow])
"""Exact arithmetic: an amount too long for 60 digits fails loudly instead of being rounded somewhere it should not
be."""


def check_date(value: object, name: str) -> date:
    # datetime is a subclass of date, so it has to be turned away explicitly.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{name} must be a date (not a datetime), got {value!r}")
    return value


def check_money(value: object, name: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise ValueError(f"{name} must be a Decimal (money is never a float), got {value!r}")
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite amount of at least zero, got {value}")
    return value


def check_currency(value: object, name: str) -> str:
    try:
        minor_units(value)  # type: ignore[arg-type]  # it checks the type itself
    except ValueError:
        raise ValueError(f"{name} must be a three-letter ISO 4217 code, got {value!r}") from None
    return str(value).upper()


def check_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_items(value: object, name: str, kind: type[_T]) -> list[_T]:
    if isinstance(value, (str, bytes, Mapping)):
        raise ValueError(f"{name} must be a list of {kind.__name__}, got {value!r}")
    try:
        items = list(value)  # type: ignore[call-overload]  # anything iterable; a TypeError otherwise
    except TypeError:
        raise ValueError(f"{name} must be a list of {kind.__name__}, got {value!r}") from None
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            raise ValueError(f"{name}[{index}] must be a {kind.__name__}, got {item!r}")
    return items
