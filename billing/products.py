"""How price book lines are named at the payment provider, and read back. Pure.

Every line Keel bills is kept under a stable product id: ``keel-<tier>-<code>`` for a plan's own lines (its base
fee, extra users and devices, staff-written custom lines) and ``keel-addon-<code>`` for add-ons. A subscription item
Stripe reports can therefore be traced back to the plan or add-on it bills, without asking Stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

PREFIX = "keel-"
ADD_ON_TIER = "addon"
BASE_CODE = "base"
EXTRA_USERS_CODE = "extra_users"
EXTRA_DEVICES_CODE = "extra_devices"
CUSTOM_CODE = "custom"
PLAN_CODES = {BASE_CODE: "plan", EXTRA_USERS_CODE: "users", EXTRA_DEVICES_CODE: "devices", CUSTOM_CODE: "custom"}
MINOR_UNITS = Decimal("100")


@dataclass(frozen=True)
class Product:
    kind: str  # plan | users | devices | add_on | custom
    code: str
    tier: str | None  # the plan's tier (qualification spelling: core_plus), None for add-ons


def product_id(*, tier: str, code: str) -> str:
    if code in PLAN_CODES:
        return f"{PREFIX}{tier}-{code}"
    return f"{PREFIX}{ADD_ON_TIER}-{code}"


def parse_product(product: str) -> Product:
    """The plan or add-on a product id bills; an id Keel did not make is a custom line."""
    if not product.startswith(PREFIX) or "-" not in product[len(PREFIX) :]:
        return Product(kind="custom", code=CUSTOM_CODE, tier=None)
    tier, _, code = product[len(PREFIX) :].partition("-")
    if tier == ADD_ON_TIER:
        return Product(kind="add_on", code=code, tier=None)
    return Product(kind=PLAN_CODES.get(code, "custom"), code=code if code in PLAN_CODES else CUSTOM_CODE, tier=tier)


def to_minor(amount: Decimal) -> int | None:
    """Whole cents, or None when ``amount`` has fractions of a cent (such a line is billed as one unit)."""
    cents = amount * MINOR_UNITS
    if cents != cents.to_integral_value():
        return None
    return int(cents)


def from_minor(cents: int) -> Decimal:
    return (Decimal(cents) / MINOR_UNITS).quantize(Decimal("0.01"))


def billed(description: str, quantity: int, unit_price: Decimal, amount: Decimal) -> tuple[str, int, Decimal]:
    """How a priced line is billed monthly: as is, or, when its unit price has fractions of a cent, as one unit
    of its (rounded) amount, so the provider charges exactly the amount the quote showed."""
    if to_minor(unit_price) is None:
        return f"{description} ({quantity} x {unit_price.normalize()})", 1, amount
    return description, quantity, unit_price.quantize(Decimal("0.01"))
