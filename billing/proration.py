"""Money rounding and proration by the day. Pure: standard library only, plain values in, plain values out.

Rounding
--------
Amounts are ``Decimal``, never float. :func:`quantize` rounds an amount to its currency's minor unit (cents for most
currencies, whole yen, thousandths of a dinar: the ISO 4217 exponent, :func:`minor_units`) with ROUND_HALF_UP, which
on Decimal rounds ties away from zero, so a credit is always the exact negative of the matching charge. Zero is
returned as ``0.00``, never ``-0.00``.

Proration
---------
A period's price is spread evenly over its days: ``prorate(amount, used_days, period_days)`` is
``amount x used_days / period_days`` computed exactly (as a fraction, not a rounded decimal) and rounded once.
Every other function here is built on it:

- :func:`prorate_piece` prices part of a cycle period (see ``billing.periods``);
- :func:`split` cuts a cycle period at some dates and prices each piece. Each piece is rounded on its own, because
  each becomes an invoice line and totals are sums of rounded lines; the pieces therefore add up to the full amount
  to within half a minor unit per piece, not always exactly;
- :func:`change_adjustment` charges (or credits) a mid-period change in a line's per-period amount for the days
  from the change to the end of the period.

Bad input raises ValueError naming the argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from itertools import pairwise
from types import MappingProxyType

from billing.periods import Period

__all__ = [
    "change_adjustment",
    "minor_units",
    "prorate",
    "prorate_piece",
    "quantize",
    "split",
]

# ISO 4217 exponents that are not 2. Codes not listed here (USD, AUD, EUR, GBP, NZD, ...) have cents.
_EXPONENTS: Mapping[str, int] = MappingProxyType(
    dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"), 0)
    | dict.fromkeys(("VND", "VUV", "XAF", "XOF", "XPF"), 0)
    | dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3)
    | dict.fromkeys(("CLF", "UYW"), 4)
)

# Arithmetic that must be exact: Inexact is trapped, so an amount too long for 60 digits fails loudly instead of
# being rounded somewhere it should not be.
_EXACT = Context(prec=60, rounding=ROUND_HALF_UP, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])
# Rounding to the minor unit (inexact by design); InvalidOperation when the result would not fit in 60 digits.
_ROUNDING = Context(prec=60, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow, DivisionByZero])


def _check_amount(value: object, name: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise ValueError(f"{name} must be a Decimal (money is never a float), got {value!r}")
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite amount, got {value}")
    return value


def _check_period(value: object, name: str) -> Period:
    if not isinstance(value, Period):
        raise ValueError(f"{name} must be a Period, got {value!r}")
    return value


def _check_date(value: object, name: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{name} must be a date (not a datetime), got {value!r}")
    return value


def _check_days(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number of days, got {value!r}")
    return value


def minor_units(currency: str) -> int:
    """The number of decimal places of ``currency``'s minor unit (ISO 4217 exponent): 2 for AUD or USD, 0 for JPY,
    3 for KWD. ``currency`` is a three-letter code, in either case."""
    if not isinstance(currency, str) or len(currency) != 3 or not (currency.isascii() and currency.isalpha()):
        raise ValueError(f"currency must be a three-letter ISO 4217 code, got {currency!r}")
    return _EXPONENTS.get(currency.upper(), 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded ROUND_HALF_UP (ties away from zero) to ``currency``'s minor unit."""
    _check_amount(amount, "amount")
    exponent = minor_units(currency)
    try:
        rounded = amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP, context=_ROUNDING)
    except InvalidOperation:
        raise ValueError(f"amount {amount} is too large to round to {currency}") from None
    return rounded.copy_abs() if rounded.is_zero() else rounded


def prorate(amount: Decimal, used_days: int, period_days: int, currency: str) -> Decimal:
    """``amount x used_days / period_days``, rounded once, ROUND_HALF_UP, to ``currency``'s minor unit.

    ``0 <= used_days <= period_days`` and ``period_days > 0``. ``amount`` may be negative (a credit):
    ``prorate(-x, ...) == -prorate(x, ...)``.
    """
    _check_amount(amount, "amount")
    _check_days(used_days, "used_days")
    _check_days(period_days, "period_days")
    if period_days <= 0:
        raise ValueError(f"period_days must be at least 1, got {period_days}")
    if not 0 <= used_days <= period_days:
        raise ValueError(f"used_days must be between 0 and period_days ({period_days}), got {used_days}")
    exponent = minor_units(currency)
    try:
        with localcontext(_EXACT):
            # In minor units the result is numerator / period_days. Integer division plus its remainder decides the
            # rounding exactly: a quotient rounded to any number of digits first could turn a value just below a
            # tie into a tie and round it the wrong way.
            numerator = amount.scaleb(exponent) * used_days
            units, remainder = divmod(numerator, period_days)  # truncated towards zero; remainder has the sign
            if 2 * abs(remainder) >= period_days:
                units += 1 if numerator > 0 else -1
    except DecimalException:
        raise ValueError(f"amount {amount} has too many digits to prorate exactly") from None
    return quantize(units.scaleb(-exponent), currency)


def prorate_piece(amount: Decimal, piece: Period, cycle_period: Period, currency: str) -> Decimal:
    """The share of ``amount`` (the price of the whole ``cycle_period``) for the days of ``piece``, which must lie
    within ``cycle_period``."""
    _check_period(piece, "piece")
    _check_period(cycle_period, "cycle_period")
    if not (cycle_period.start <= piece.start and piece.end <= cycle_period.end):
        raise ValueError(f"piece {piece} must lie within cycle_period {cycle_period}")
    return prorate(amount, piece.days, cycle_period.days, currency)


def split(amount: Decimal, cycle_period: Period, cuts: Iterable[date], currency: str) -> list[tuple[Period, Decimal]]:
    """``cycle_period`` cut at each date of ``cuts``, each piece with its prorated share of ``amount``.

    A cut is the first day of a new piece and must fall strictly inside the period (after its start, before its
    end); order and repeats do not matter. No cuts gives the whole period at ``quantize(amount)``. Each share is
    rounded on its own, so the shares may differ from ``amount`` by up to half a minor unit per piece.
    """
    _check_amount(amount, "amount")
    _check_period(cycle_period, "cycle_period")
    try:
        days = tuple(cuts)
    except TypeError:
        raise ValueError(f"cuts must be a list of dates, got {cuts!r}") from None
    for index, cut in enumerate(days):
        _check_date(cut, f"cuts[{index}]")
        if not cycle_period.start < cut < cycle_period.end:
            raise ValueError(f"cuts[{index}] ({cut}) must fall strictly inside the period {cycle_period}")
    bounds = [cycle_period.start, *sorted(set(days)), cycle_period.end]
    return [
        (Period(begin, end), prorate(amount, (end - begin).days, cycle_period.days, currency))
        for begin, end in pairwise(bounds)
    ]


def change_adjustment(
    old_amount: Decimal, new_amount: Decimal, change_day: date, cycle_period: Period, currency: str
) -> Decimal:
    """The charge (positive) or credit (negative) for changing a line's per-period amount from ``old_amount`` to
    ``new_amount`` with effect from ``change_day`` (inclusive) to the end of ``cycle_period``.

    The caller has already multiplied out quantity and price; a change on the period's first day adjusts by the whole
    difference. A change and its reversal on the same day cancel exactly.
    """
    _check_amount(old_amount, "old_amount")
    _check_amount(new_amount, "new_amount")
    _check_period(cycle_period, "cycle_period")
    _check_date(change_day, "change_day")
    if change_day not in cycle_period:
        raise ValueError(f"change_day ({change_day}) must fall within the period {cycle_period} (end exclusive)")
    try:
        with localcontext(_EXACT):
            difference = new_amount - old_amount
    except DecimalException:
        raise ValueError("old_amount and new_amount have too many digits to subtract exactly") from None
    return prorate(difference, (cycle_period.end - change_day).days, cycle_period.days, currency)
