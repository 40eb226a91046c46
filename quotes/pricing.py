"""Quote pricing. Pure: plain values in, plain values out (no Django, no I/O).

``price_quote`` turns a plan's prices, the add-on catalogue and a prospect's configuration into priced lines:
the plan's base fee, users and devices beyond those included, then each chosen add-on. ``price_lines`` prices
lines written by staff (custom Enterprise quotes). Every line amount is quantity x unit price rounded to cents
half-up, and the total is the sum of the rounded lines, so the lines a customer reads always add up.

Bad configurations raise :class:`PricingError` naming every bad field at once (``users``, ``devices``,
``add_ons`` — relative to the configuration object).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
MAX_USERS = 10_000
MAX_DEVICES = 10_000
DEFAULT_MAX_ADD_ON_QUANTITY = 100
MAX_LINES = 50
MAX_ADD_ONS = 20
MAX_UNIT_PRICE = Decimal("1000000")

BASE_CODE = "base"
EXTRA_USERS_CODE = "extra_users"
EXTRA_DEVICES_CODE = "extra_devices"
CONFIGURATION_FIELDS = frozenset({"users", "devices", "add_ons"})


class PricingError(ValueError):
    """Bad configuration, by field: ``{"users": ["..."]}``."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class PlanPrice:
    tier: str
    name: str
    base_monthly: Decimal
    per_user: Decimal
    per_device: Decimal
    included_users: int
    included_devices: int
    currency: str


@dataclass(frozen=True)
class AddOnPrice:
    code: str
    name: str
    unit_price: Decimal
    unit_label: str
    allowed_tiers: frozenset[str]
    currency: str
    max_quantity: int = DEFAULT_MAX_ADD_ON_QUANTITY


@dataclass(frozen=True)
class AddOnChoice:
    code: str
    quantity: int


@dataclass(frozen=True)
class Configuration:
    users: int
    devices: int
    add_ons: tuple[AddOnChoice, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "devices": self.devices,
            "add_ons": [{"code": choice.code, "quantity": choice.quantity} for choice in self.add_ons],
        }


@dataclass(frozen=True)
class Line:
    code: str
    description: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Priced:
    lines: tuple[Line, ...]
    total: Decimal
    currency: str


@dataclass(frozen=True)
class CustomLine:
    """A line written by staff: ``code`` is optional (``custom`` when blank)."""

    description: str
    quantity: int
    unit_price: Decimal
    code: str = ""


def money(value: Decimal) -> Decimal:
    """Round to cents, half away from zero (0.005 → 0.01)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line(code: str, description: str, quantity: int, unit_price: Decimal) -> Line:
    return Line(code, description, quantity, unit_price, money(unit_price * quantity))


def total_of(lines: Iterable[Line]) -> Decimal:
    return sum((item.amount for item in lines), Decimal("0.00"))


# -- reading a configuration ------------------------------------------------------------------------------------------


def _whole_number(errors: dict[str, list[str]], raw: Mapping[str, Any], field: str, high: int) -> int:
    value = raw.get(field)
    if value is None:
        errors[field] = ["This field is required."]
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        errors[field] = ["Must be a whole number."]
        return 0
    if not 0 <= value <= high:
        errors[field] = [f"Must be between 0 and {high}."]
        return 0
    return value


def _add_on_choices(errors: dict[str, list[str]], value: Any) -> tuple[AddOnChoice, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        errors["add_ons"] = ['Must be a list of add-on codes or of {"code", "quantity"} objects.']
        return ()
    if len(value) > MAX_ADD_ONS:
        errors["add_ons"] = [f"At most {MAX_ADD_ONS} add-ons; give each a quantity."]
        return ()
    problems: list[str] = []
    choices: list[AddOnChoice] = []
    for position, item in enumerate(value):
        if isinstance(item, str):
            code, quantity = item, 1
        elif isinstance(item, Mapping) and isinstance(item.get("code"), str):
            unknown = sorted(str(key) for key in item if key not in {"code", "quantity"})
            if unknown:
                problems.append(f"Item {position}: unknown field(s) {', '.join(unknown)}.")
                continue
            code, quantity = item["code"], item.get("quantity", 1)
        else:
            problems.append(f'Item {position}: expected an add-on code or a {{"code", "quantity"}} object.')
            continue
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            problems.append(f"{code}: the quantity must be a whole number.")
            continue
        choices.append(AddOnChoice(code.strip(), quantity))
    if problems:
        errors["add_ons"] = problems
    return tuple(choices)


def parse_configuration(raw: Mapping[str, Any]) -> Configuration:
    """Check the shape and types of a configuration object (not yet the price book's rules)."""
    if not isinstance(raw, Mapping):
        raise PricingError({"configuration": ["Must be an object with users, devices and add_ons."]})
    errors: dict[str, list[str]] = {}
    for field in sorted(str(key) for key in raw if key not in CONFIGURATION_FIELDS):
        errors[field] = ["Unknown field."]
    users = _whole_number(errors, raw, "users", MAX_USERS)
    devices = _whole_number(errors, raw, "devices", MAX_DEVICES)
    add_ons = _add_on_choices(errors, raw.get("add_ons"))
    if errors:
        raise PricingError(errors)
    return Configuration(users, devices, add_ons)


# -- pricing ----------------------------------------------------------------------------------------------------------


def _check_add_ons(
    plan: PlanPrice, catalogue: Mapping[str, AddOnPrice], choices: tuple[AddOnChoice, ...]
) -> list[tuple[AddOnPrice, int]]:
    problems: list[str] = []
    seen: set[str] = set()
    chosen: list[tuple[AddOnPrice, int]] = []
    for choice in choices:
        add_on = catalogue.get(choice.code)
        if choice.code in seen:
            problems.append(f"{choice.code!r} is listed more than once; give it a quantity instead.")
            continue
        seen.add(choice.code)
        if add_on is None or add_on.currency != plan.currency:
            problems.append(f"{choice.code!r} is not an add-on we offer.")
        elif plan.tier not in add_on.allowed_tiers:
            problems.append(f"{add_on.name} is not available on the {plan.name} plan.")
        elif not 1 <= choice.quantity <= add_on.max_quantity:
            problems.append(f"{add_on.name}: the quantity must be between 1 and {add_on.max_quantity}.")
        else:
            chosen.append((add_on, choice.quantity))
    if problems:
        raise PricingError({"add_ons": problems})
    return chosen


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def price_quote(
    plan: PlanPrice, add_ons: Mapping[str, AddOnPrice], configuration: Configuration | Mapping[str, Any]
) -> Priced:
    """The lines and total of ``configuration`` on ``plan``; raises :class:`PricingError` on bad input."""
    config = configuration if isinstance(configuration, Configuration) else parse_configuration(configuration)
    chosen = _check_add_ons(plan, add_ons, config.add_ons)
    included = f"includes {_plural(plan.included_users, 'user')} and {_plural(plan.included_devices, 'device')}"
    lines = [line(BASE_CODE, f"{plan.name} plan ({included})", 1, plan.base_monthly)]
    extra_users = config.users - plan.included_users
    if extra_users > 0 and plan.per_user:  # a free extra is no line
        lines.append(line(EXTRA_USERS_CODE, "Additional users", extra_users, plan.per_user))
    extra_devices = config.devices - plan.included_devices
    if extra_devices > 0 and plan.per_device:
        lines.append(line(EXTRA_DEVICES_CODE, "Additional devices", extra_devices, plan.per_device))
    for add_on, quantity in chosen:
        description = f"{add_on.name} (per {add_on.unit_label})" if add_on.unit_label else add_on.name
        lines.append(line(add_on.code, description, quantity, add_on.unit_price))
    return Priced(tuple(lines), total_of(lines), plan.currency)


def _unit_price(value: Any) -> Decimal | None:
    if isinstance(value, bool | float):  # floats carry binary noise into money; send strings or Decimals
        return None
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not price.is_finite() or price < 0 or price >= MAX_UNIT_PRICE or price.as_tuple().exponent < -4:  # type: ignore[operator]
        return None
    return price


def price_lines(lines: Iterable[CustomLine | Mapping[str, Any]], currency: str) -> Priced:
    """Price lines written by staff. Raises :class:`PricingError` on ``lines`` naming each bad line."""
    problems: list[str] = []
    priced: list[Line] = []
    for position, item in enumerate(lines, start=1):
        raw = asdict(item) if isinstance(item, CustomLine) else item
        description = str(raw.get("description") or "").strip()
        quantity = raw.get("quantity")
        unit_price = _unit_price(raw.get("unit_price"))
        code = str(raw.get("code") or "").strip() or "custom"
        if not description:
            problems.append(f"Line {position}: a description is required.")
        elif isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_USERS:
            problems.append(f"Line {position}: the quantity must be a whole number between 1 and {MAX_USERS}.")
        elif unit_price is None:
            problems.append(f"Line {position}: the unit price must be an amount of at least 0 (up to 4 decimals).")
        else:
            priced.append(line(code[:40], description[:200], quantity, unit_price))
    if not priced and not problems:
        problems.append("Add at least one line.")
    if len(priced) > MAX_LINES:
        problems.append(f"A quote has at most {MAX_LINES} lines.")
    if problems:
        raise PricingError({"lines": problems})
    return Priced(tuple(priced), total_of(priced), currency)
