"""Pricing one contract line for one full billing period. Pure: standard library only, plain values in, plain values
out.

Models
------
- ``FLAT``: ``amount`` per period.
- ``PER_UNIT``: ``quantity`` (seats, devices) at ``unit_price`` each.
- ``TIERED_GRADUATED``: each unit at the price of the tier it falls in (units 1-10 at one price, 11-50 at another),
  one charge per tier that has units, so the invoice shows the steps.
- ``TIERED_VOLUME``: every unit at the price of the one tier the whole quantity falls in.
- ``USAGE``: the period's measured ``usage`` at ``unit_price``, or graduated through ``tiers``.
- ``HOURS_BLOCK``: a block fee (``amount``) covering ``included_quantity`` hours, plus an overage charge for the
  hours beyond at ``overage_rate``.

``included_quantity`` units are free and come off first: PER_UNIT, tiered and USAGE lines bill
``max(0, quantity - included_quantity)`` (or usage), and tiers count from the first billable unit.

Tiers
-----
A :class:`Tier` covers the units above the previous tier's ``up_to`` up to and including its own (the first tier
starts at zero); the last tier has ``up_to`` None and covers everything above. With tiers up to 10 and 50, a
quantity of exactly 10 is all in the first tier, and 10.5 puts half a unit in the second. A tier's ``flat_fee`` is
charged once when the tier has units (graduated) or when the quantity falls in it (volume); zero billable units cost
nothing, flat fees included.

Rounding
--------
Each charge's ``amount`` is rounded on its own, ROUND_HALF_UP, to the currency's minor unit, and an invoice total is
the sum of its rounded charges. ``unit_price`` is shown as agreed, unrounded: a usage price may have fractions of a
cent. Lines are returned even when they cost nothing, so an invoice shows every line of the contract.

Bad input raises ValueError naming the field (``tiers[1]: ...`` for a tier).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from enum import StrEnum
from types import MappingProxyType

from billing.proration import minor_units, quantize

__all__ = [
    "USES",
    "Charge",
    "Kind",
    "LineTerms",
    "Model",
    "Tier",
    "rate",
    "validate_tiers",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)
# Products and sums of prices and quantities are exact; only quantize() rounds.
_EXACT = Context(prec=60, rounding=ROUND_HALF_UP, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])


class Model(StrEnum):
    """How a line is priced (rules in the module docstring)."""

    FLAT = "FLAT"
    PER_UNIT = "PER_UNIT"
    TIERED_GRADUATED = "TIERED_GRADUATED"
    TIERED_VOLUME = "TIERED_VOLUME"
    USAGE = "USAGE"
    HOURS_BLOCK = "HOURS_BLOCK"


class Kind(StrEnum):
    """The kind of invoice line a charge becomes (invoices also have proration, time and adjustment lines)."""

    RECURRING = "recurring"
    USAGE = "usage"
    OVERAGE = "overage"


def _check_decimal(value: object, name: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise ValueError(f"{name} must be a Decimal (never a float), got {value!r}")
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def _check_non_negative(value: object, name: str) -> Decimal:
    number = _check_decimal(value, name)
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {number}")
    return number


def _number(value: Decimal) -> str:
    """``value`` for a description: no exponent, no trailing zeros (10, 2.5)."""
    return format(value.normalize(_EXACT), "f")


@dataclass(frozen=True)
class Tier:
    """Units above the previous tier's ``up_to``, up to and including this ``up_to`` (None: no upper limit), at
    ``unit_price`` each, plus ``flat_fee`` once when the tier applies."""

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.up_to is not None and _check_decimal(self.up_to, "up_to") <= 0:
            raise ValueError(f"up_to must be greater than 0 (or None for no upper limit), got {self.up_to}")
        _check_non_negative(self.unit_price, "unit_price")
        _check_non_negative(self.flat_fee, "flat_fee")


def validate_tiers(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    """``tiers`` as a tuple, checked: at least one, ``up_to`` strictly increasing, only the last one (and always
    the last one) without an upper limit, so every quantity has exactly one price."""
    if not isinstance(tiers, tuple | list):
        raise ValueError(f"tiers must be a tuple of Tier, got {tiers!r}")
    if not tiers:
        raise ValueError("tiers: at least one tier is needed")
    last = len(tiers) - 1
    previous: Decimal | None = None
    for index, tier in enumerate(tiers):
        if not isinstance(tier, Tier):
            raise ValueError(f"tiers[{index}] must be a Tier, got {tier!r}")
        if tier.up_to is None and index != last:
            raise ValueError(f"tiers[{index}]: only the last tier may have no upper limit (up_to None)")
        if tier.up_to is not None and previous is not None and tier.up_to <= previous:
            raise ValueError(
                f"tiers[{index}]: up_to must be greater than the previous tier's ({previous}), got {tier.up_to}"
            )
        previous = tier.up_to
    if tiers[last].up_to is not None:
        raise ValueError(
            f"tiers[{last}]: the last tier must have no upper limit (up_to None), so every quantity has a price"
        )
    return tuple(tiers)


@dataclass(frozen=True)
class Charge:
    """One priced invoice line: ``quantity`` at ``unit_price``; ``amount`` is rounded to the currency's minor unit
    (and includes any tier flat fee, so it can differ from quantity x unit_price)."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    kind: Kind

    def __post_init__(self) -> None:
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"description must be a non-empty string, got {self.description!r}")
        _check_decimal(self.quantity, "quantity")
        _check_decimal(self.unit_price, "unit_price")
        _check_decimal(self.amount, "amount")
        try:
            object.__setattr__(self, "kind", Kind(self.kind))
        except ValueError:
            raise ValueError(f"kind must be one of {', '.join(Kind)}, got {self.kind!r}") from None


_FIELDS = ("amount", "unit_price", "overage_rate", "quantity", "included_quantity", "tiers")
USES: Mapping[Model, frozenset[str]] = MappingProxyType(
    {
        Model.FLAT: frozenset({"amount"}),
        Model.PER_UNIT: frozenset({"unit_price", "quantity", "included_quantity"}),
        Model.TIERED_GRADUATED: frozenset({"tiers", "quantity", "included_quantity"}),
        Model.TIERED_VOLUME: frozenset({"tiers", "quantity", "included_quantity"}),
        Model.USAGE: frozenset({"unit_price", "tiers", "included_quantity"}),
        Model.HOURS_BLOCK: frozenset({"amount", "included_quantity", "overage_rate"}),
    }
)
"""The optional :class:`LineTerms` fields each model reads. Any other field must be left unset: a value the price
would silently ignore is a mistake in the contract, better reported than billed."""
# USAGE needs exactly one of unit_price and tiers, checked on its own.
_REQUIRED: Mapping[Model, tuple[str, ...]] = MappingProxyType(
    {
        Model.FLAT: ("amount",),
        Model.PER_UNIT: ("unit_price",),
        Model.TIERED_GRADUATED: ("tiers",),
        Model.TIERED_VOLUME: ("tiers",),
        Model.HOURS_BLOCK: ("amount", "overage_rate"),
    }
)


@dataclass(frozen=True)
class LineTerms:
    """What a contract line says about its price for one period (which fields each model reads: module docstring).

    - ``amount``: the FLAT price per period, or the HOURS_BLOCK block fee.
    - ``unit_price``: the PER_UNIT price, or the USAGE price per unit when the line has no tiers.
    - ``overage_rate``: the HOURS_BLOCK price per hour beyond the block.
    - ``quantity``: seats or devices of PER_UNIT and tiered lines (usage and hours are given to :func:`rate`).
    - ``included_quantity``: units included free (PER_UNIT, tiered, USAGE), or the hours in the block.
    - ``tiers``: TIERED_* lines, and USAGE lines priced in tiers.

    Required: FLAT ``amount``; PER_UNIT ``unit_price``; TIERED_* ``tiers``; USAGE ``unit_price`` or ``tiers`` (one);
    HOURS_BLOCK ``amount`` and ``overage_rate``. Every number is a non-negative Decimal.
    """

    model: Model
    description: str
    currency: str
    amount: Decimal | None = None
    unit_price: Decimal | None = None
    overage_rate: Decimal | None = None
    quantity: Decimal = _ZERO
    included_quantity: Decimal = _ZERO
    tiers: tuple[Tier, ...] = ()

    def __post_init__(self) -> None:
        try:
            model = Model(self.model)
        except ValueError:
            raise ValueError(f"model must be one of {', '.join(Model)}, got {self.model!r}") from None
        object.__setattr__(self, "model", model)
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"description must be a non-empty string, got {self.description!r}")
        minor_units(self.currency)
        object.__setattr__(self, "currency", self.currency.upper())
        for name in ("amount", "unit_price", "overage_rate"):
            if getattr(self, name) is not None:
                _check_non_negative(getattr(self, name), name)
        _check_non_negative(self.quantity, "quantity")
        _check_non_negative(self.included_quantity, "included_quantity")
        if not isinstance(self.tiers, tuple | list):
            raise ValueError(f"tiers must be a tuple of Tier, got {self.tiers!r}")
        object.__setattr__(self, "tiers", validate_tiers(self.tiers) if self.tiers else ())

        for name in _FIELDS:
            if name not in USES[model] and self._given(name):
                raise ValueError(f"{name}: a {model} line does not use it, leave it unset")
        for name in _REQUIRED.get(model, ()):
            if not self._given(name):
                raise ValueError(f"{name}: a {model} line needs it")
        if model is Model.USAGE and self._given("unit_price") == self._given("tiers"):
            raise ValueError("unit_price: a USAGE line is priced either by unit_price or by tiers (exactly one)")

    def _given(self, name: str) -> bool:
        value = getattr(self, name)
        if name in ("quantity", "included_quantity"):
            return bool(value)
        if name == "tiers":
            return len(value) > 0
        return value is not None


def _required(value: Decimal | None, name: str) -> Decimal:
    # LineTerms has checked that the model's required fields are set; this only tells the type checker.
    if value is None:
        raise ValueError(f"{name} is required")
    return value


def _range(lower: Decimal, up_to: Decimal | None) -> str:
    """A tier's units for a description: "1-10", "11+" for whole bounds; "over 2.5 up to 10" otherwise."""
    if lower == lower.to_integral_value() and (up_to is None or up_to == up_to.to_integral_value()):
        first = _number(lower + 1)
        if up_to is None:
            return f"{first}+"
        return first if up_to == lower + 1 else f"{first}-{_number(up_to)}"
    if up_to is None:
        return f"over {_number(lower)}"
    return f"over {_number(lower)} up to {_number(up_to)}" if lower else f"up to {_number(up_to)}"


def _describe(terms: LineTerms, name: str, *notes: str) -> str:
    """``name`` followed by its notes in brackets, with the included units first: "Devices 11-50 (beyond 5
    included, incl. 20 flat fee)"."""
    if terms.included_quantity:
        notes = (f"beyond {_number(terms.included_quantity)} included", *notes)
    notes = tuple(note for note in notes if note)
    return f"{name} ({', '.join(notes)})" if notes else name


def _fee_note(tier: Tier) -> str:
    return f"incl. {_number(tier.flat_fee)} flat fee" if tier.flat_fee else ""


def _billable(quantity: Decimal, terms: LineTerms) -> Decimal:
    return max(_ZERO, quantity - terms.included_quantity)


def _graduated(terms: LineTerms, quantity: Decimal, kind: Kind) -> list[Charge]:
    """One charge per tier that ``quantity`` reaches; a single zero charge when it reaches none."""
    charges: list[Charge] = []
    lower = _ZERO
    for tier in terms.tiers:
        if quantity <= lower:
            break
        units = (quantity if tier.up_to is None else min(quantity, tier.up_to)) - lower
        charges.append(
            Charge(
                description=_describe(terms, f"{terms.description} {_range(lower, tier.up_to)}", _fee_note(tier)),
                quantity=units,
                unit_price=tier.unit_price,
                amount=quantize(units * tier.unit_price + tier.flat_fee, terms.currency),
                kind=kind,
            )
        )
        if tier.up_to is None:
            break
        lower = tier.up_to
    if not charges:
        first = terms.tiers[0]
        description = _describe(terms, f"{terms.description} {_range(_ZERO, first.up_to)}")
        charges.append(Charge(description, _ZERO, first.unit_price, quantize(_ZERO, terms.currency), kind))
    return charges


def _volume(terms: LineTerms, quantity: Decimal) -> Charge:
    """Every unit at the price of the tier that ``quantity`` falls in (the first tier for zero)."""
    lower = _ZERO
    for tier in terms.tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            break
        lower = tier.up_to
    amount = quantity * tier.unit_price + tier.flat_fee if quantity else _ZERO
    return Charge(
        description=_describe(
            terms, terms.description, f"tier {_range(lower, tier.up_to)}", _fee_note(tier) if quantity else ""
        ),
        quantity=quantity,
        unit_price=tier.unit_price,
        amount=quantize(amount, terms.currency),
        kind=Kind.RECURRING,
    )


def _hours(value: Decimal) -> str:
    return f"{_number(value)} hour{'' if value == 1 else 's'}"


def _charges(terms: LineTerms, usage: Decimal, hours: Decimal) -> list[Charge]:
    currency = terms.currency
    if terms.model is Model.FLAT:
        amount = _required(terms.amount, "amount")
        return [Charge(terms.description, _ONE, amount, quantize(amount, currency), Kind.RECURRING)]
    if terms.model is Model.PER_UNIT:
        price = _required(terms.unit_price, "unit_price")
        billable = _billable(terms.quantity, terms)
        description = _describe(terms, terms.description)
        return [Charge(description, billable, price, quantize(billable * price, currency), Kind.RECURRING)]
    if terms.model is Model.TIERED_GRADUATED:
        return _graduated(terms, _billable(terms.quantity, terms), Kind.RECURRING)
    if terms.model is Model.TIERED_VOLUME:
        return [_volume(terms, _billable(terms.quantity, terms))]
    if terms.model is Model.USAGE:
        billable = _billable(usage, terms)
        if terms.tiers:
            return _graduated(terms, billable, Kind.USAGE)
        price = _required(terms.unit_price, "unit_price")
        description = _describe(terms, terms.description)
        return [Charge(description, billable, price, quantize(billable * price, currency), Kind.USAGE)]
    # HOURS_BLOCK
    fee = _required(terms.amount, "amount")
    included = terms.included_quantity
    charges = [
        Charge(f"{terms.description} ({_hours(included)} included)", _ONE, fee, quantize(fee, currency), Kind.RECURRING)
    ]
    if hours > included:
        extra = hours - included
        overage_rate = _required(terms.overage_rate, "overage_rate")
        charges.append(
            Charge(
                description=f"{terms.description} overage ({_hours(extra)} beyond the {_hours(included)} included)",
                quantity=extra,
                unit_price=overage_rate,
                amount=quantize(extra * overage_rate, currency),
                kind=Kind.OVERAGE,
            )
        )
    return charges


def rate(terms: LineTerms, *, usage: Decimal = _ZERO, hours: Decimal = _ZERO) -> list[Charge]:
    """The charges of one full period of the line ``terms``: ``usage`` is the period's measured usage (USAGE lines
    only) and ``hours`` the hours worked against the block (HOURS_BLOCK lines only). Never negative amounts.

    Proration of partial periods is a separate step (``billing.proration``), applied to these charges.
    """
    if not isinstance(terms, LineTerms):
        raise ValueError(f"terms must be LineTerms, got {terms!r}")
    _check_non_negative(usage, "usage")
    _check_non_negative(hours, "hours")
    if usage and terms.model is not Model.USAGE:
        raise ValueError(f"usage: only USAGE lines are rated on usage, this is a {terms.model} line")
    if hours and terms.model is not Model.HOURS_BLOCK:
        raise ValueError(f"hours: only HOURS_BLOCK lines are rated on hours, this is a {terms.model} line")
    try:
        with localcontext(_EXACT):
            return _charges(terms, usage, hours)
    except DecimalException:
        raise ValueError(f"{terms.description}: the line's numbers have too many digits to price exactly") from None
