"""quotes.pricing, to the cent: included quantities, extras, add-ons, rounding half-up, and every input error."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotes.pricing import (
    AddOnPrice,
    Configuration,
    CustomLine,
    PlanPrice,
    PricingError,
    parse_configuration,
    price_lines,
    price_quote,
)

ALL = frozenset({"core_plus", "premium", "enterprise"})
CORE = PlanPrice("core_plus", "Core+", Decimal("499.00"), Decimal("45.00"), Decimal("15.00"), 10, 15, "AUD")
PREMIUM = PlanPrice("premium", "Premium", Decimal("1299.00"), Decimal("39.00"), Decimal("12.00"), 25, 40, "AUD")
ADD_ONS = {
    "backup_tb": AddOnPrice("backup_tb", "Cloud backup", Decimal("79.00"), "TB", ALL, "AUD"),
    "sms_pack_250": AddOnPrice("sms_pack_250", "SMS pack (250)", Decimal("25.00"), "pack", ALL, "AUD", 20),
    "sms_pack_1000": AddOnPrice("sms_pack_1000", "SMS pack (1,000)", Decimal("89.00"), "pack", ALL, "AUD", 20),
    "after_hours": AddOnPrice(
        "after_hours", "After-hours support", Decimal("349.00"), "", frozenset({"premium", "enterprise"}), "AUD", 1
    ),
    "usd_only": AddOnPrice("usd_only", "Priced in USD", Decimal("10.00"), "", ALL, "USD"),
}


def summary(priced):
    return [(line.code, line.quantity, str(line.unit_price), str(line.amount)) for line in priced.lines]


def errors_of(configuration, plan=CORE):
    with pytest.raises(PricingError) as caught:
        price_quote(plan, ADD_ONS, configuration)
    return caught.value.errors


# -- the table --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("users", "devices", "add_ons", "total"),
    [
        (0, 0, [], "499.00"),  # nothing beyond the base fee
        (10, 15, [], "499.00"),  # exactly the included quantities
        (11, 15, [], "544.00"),  # one user beyond: + 45.00
        (10, 16, [], "514.00"),  # one device beyond: + 15.00
        (11, 16, [], "559.00"),
        (25, 40, [], "1549.00"),  # 499 + 15 x 45 + 25 x 15
        (10, 15, ["backup_tb"], "578.00"),  # a bare code means quantity 1
        (10, 15, [{"code": "backup_tb", "quantity": 3}], "736.00"),  # 499 + 3 x 79
        (10, 15, [{"code": "sms_pack_250"}, {"code": "sms_pack_1000", "quantity": 2}], "702.00"),  # 499 + 25 + 178
        (12, 20, [{"code": "backup_tb", "quantity": 2}, "sms_pack_250"], "847.00"),  # 499 + 90 + 75 + 158 + 25
        (10_000, 10_000, [], "599824.00"),  # 499 + 9990 x 45 + 9985 x 15
    ],
)
def test_core_plus_totals(users, devices, add_ons, total):
    priced = price_quote(CORE, ADD_ONS, {"users": users, "devices": devices, "add_ons": add_ons})
    assert str(priced.total) == total
    assert priced.currency == "AUD"


def test_lines_name_each_charge_in_order():
    priced = price_quote(
        CORE, ADD_ONS, {"users": 12, "devices": 20, "add_ons": [{"code": "backup_tb", "quantity": 2}, "sms_pack_250"]}
    )
    assert summary(priced) == [
        ("base", 1, "499.00", "499.00"),
        ("extra_users", 2, "45.00", "90.00"),
        ("extra_devices", 5, "15.00", "75.00"),
        ("backup_tb", 2, "79.00", "158.00"),
        ("sms_pack_250", 1, "25.00", "25.00"),
    ]
    assert priced.lines[0].description == "Core+ plan (includes 10 users and 15 devices)"
    assert priced.lines[3].description == "Cloud backup (per TB)"


def test_included_quantities_add_no_zero_lines():
    priced = price_quote(CORE, ADD_ONS, {"users": 10, "devices": 15})
    assert [line.code for line in priced.lines] == ["base"]


def test_premium_may_add_what_core_plus_may_not():
    priced = price_quote(PREMIUM, ADD_ONS, {"users": 26, "devices": 40, "add_ons": ["after_hours"]})
    assert str(priced.total) == "1687.00"  # 1299 + 39 + 349


def test_each_line_rounds_half_up_and_the_total_is_the_sum_of_rounded_lines():
    plan = PlanPrice("core_plus", "Odd", Decimal("0.00"), Decimal("0.005"), Decimal("2.345"), 0, 0, "AUD")
    priced = price_quote(plan, {}, {"users": 1, "devices": 1})
    # 0.005 → 0.01 and 2.345 → 2.35 (half-up; banker's rounding would give 0.00 and 2.34).
    assert Decimal("2.345").quantize(Decimal("0.01"), ROUND_HALF_EVEN) == Decimal("2.34")
    assert summary(priced)[1:] == [("extra_users", 1, "0.005", "0.01"), ("extra_devices", 1, "2.345", "2.35")]
    assert priced.total == Decimal("2.36")  # not round(0.005 + 2.345) = 2.35


def test_rounding_of_a_quantity_times_a_fractional_price():
    plan = PlanPrice("core_plus", "Odd", Decimal("10.00"), Decimal("0.125"), Decimal("0"), 0, 0, "AUD")
    priced = price_quote(plan, {}, {"users": 3, "devices": 4})
    # Devices beyond the included ones are free on this plan: no zero line for them.
    assert summary(priced) == [("base", 1, "10.00", "10.00"), ("extra_users", 3, "0.125", "0.38")]
    assert str(priced.total) == "10.38"


def test_configuration_is_normalised():
    config = parse_configuration({"users": 3, "devices": 4, "add_ons": ["backup_tb", {"code": "sms_pack_250"}]})
    assert config.as_dict() == {
        "users": 3,
        "devices": 4,
        "add_ons": [{"code": "backup_tb", "quantity": 1}, {"code": "sms_pack_250", "quantity": 1}],
    }
    assert parse_configuration({"users": 0, "devices": 0}) == Configuration(0, 0, ())


# -- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 10_001, "5", 5.0, True, None, [3]])
@pytest.mark.parametrize("field", ["users", "devices"])
def test_users_and_devices_must_be_whole_numbers_in_range(field, value):
    configuration = {"users": 1, "devices": 1, field: value}
    errors = errors_of(configuration)
    assert list(errors) == [field]


def test_every_bad_field_is_reported_at_once():
    errors = errors_of({"users": -1, "devices": "many", "add_ons": "backup_tb", "colour": "blue"})
    assert set(errors) == {"users", "devices", "add_ons", "colour"}
    assert errors["colour"] == ["Unknown field."]


def test_configuration_must_be_an_object():
    assert list(errors_of(["users", 3])) == ["configuration"]


@pytest.mark.parametrize(
    ("add_ons", "message"),
    [
        (["nope"], "'nope' is not an add-on we offer."),
        (["usd_only"], "'usd_only' is not an add-on we offer."),  # another currency than the plan's
        (["after_hours"], "After-hours support is not available on the Core+ plan."),
        (["backup_tb", {"code": "backup_tb", "quantity": 2}], "'backup_tb' is listed more than once"),
        ([{"code": "backup_tb", "quantity": 0}], "Cloud backup: the quantity must be between 1 and 100."),
        ([{"code": "backup_tb", "quantity": -2}], "Cloud backup: the quantity must be between 1 and 100."),
        ([{"code": "sms_pack_250", "quantity": 21}], "SMS pack (250): the quantity must be between 1 and 20."),
        ([{"code": "backup_tb", "quantity": "2"}], "backup_tb: the quantity must be a whole number."),
        ([{"code": "backup_tb", "quantity": 1.5}], "backup_tb: the quantity must be a whole number."),
        ([{"code": "backup_tb", "qty": 2}], "Item 0: unknown field(s) qty."),
        ([7], "Item 0: expected an add-on code"),
        ([{"quantity": 2}], "Item 0: expected an add-on code"),
        (["backup_tb"] * 21, "At most 20 add-ons"),
    ],
)
def test_add_on_errors(add_ons, message):
    errors = errors_of({"users": 1, "devices": 1, "add_ons": add_ons})
    assert list(errors) == ["add_ons"]
    assert any(text.startswith(message) for text in errors["add_ons"]), errors


# -- custom lines (staff) ---------------------------------------------------------------------------------------------


def test_custom_lines_are_rounded_and_summed():
    priced = price_lines(
        [
            CustomLine("Managed service, 400 seats", 1, Decimal("14500.00"), "base"),
            {"description": "Onsite engineer days", "quantity": 3, "unit_price": "1250.005"},
        ],
        "AUD",
    )
    assert summary(priced) == [
        ("base", 1, "14500.00", "14500.00"),
        ("custom", 3, "1250.005", "3750.02"),  # 3750.015 rounds half-up
    ]
    assert priced.total == Decimal("18250.02")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"description": "", "quantity": 1, "unit_price": "1"}, "a description is required"),
        ({"description": "X", "quantity": 0, "unit_price": "1"}, "the quantity must be a whole number"),
        ({"description": "X", "quantity": "2", "unit_price": "1"}, "the quantity must be a whole number"),
        ({"description": "X", "quantity": 1, "unit_price": "-1"}, "the unit price must be"),
        ({"description": "X", "quantity": 1, "unit_price": 1.1}, "the unit price must be"),
        ({"description": "X", "quantity": 1, "unit_price": "1.00001"}, "the unit price must be"),
        ({"description": "X", "quantity": 1, "unit_price": "NaN"}, "the unit price must be"),
        ({"description": "X", "quantity": 1, "unit_price": "ten"}, "the unit price must be"),
    ],
)
def test_custom_line_errors_name_the_line(line, message):
    with pytest.raises(PricingError) as caught:
        price_lines([{"description": "Fine", "quantity": 1, "unit_price": "1"}, line], "AUD")
    [error] = caught.value.errors["lines"]
    assert error.startswith("Line 2: ") and message in error


def test_a_custom_quote_needs_a_line():
    with pytest.raises(PricingError) as caught:
        price_lines([], "AUD")
    assert caught.value.errors == {"lines": ["Add at least one line."]}


# -- properties -------------------------------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=100_000, places=4, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=10_000)


@st.composite
def plans(draw: st.DrawFn) -> PlanPrice:
    return PlanPrice("core_plus", "Any", draw(prices), draw(prices), draw(prices), draw(counts), draw(counts), "AUD")


@st.composite
def add_on_choices(draw: st.DrawFn) -> list[dict[str, object]]:
    codes = draw(st.lists(st.sampled_from(["backup_tb", "sms_pack_250", "sms_pack_1000"]), unique=True))
    return [{"code": code, "quantity": draw(st.integers(min_value=1, max_value=20))} for code in codes]


@given(plan=plans(), users=counts, devices=counts, add_ons=add_on_choices())
def test_total_is_the_sum_of_lines_and_every_amount_has_two_decimals(plan, users, devices, add_ons):
    priced = price_quote(plan, ADD_ONS, {"users": users, "devices": devices, "add_ons": add_ons})
    assert priced.total == sum(line.amount for line in priced.lines)
    for amount in [priced.total, *(line.amount for line in priced.lines)]:
        assert amount.as_tuple().exponent == -2
        assert amount >= 0
    extra_users = users > plan.included_users and plan.per_user > 0
    extra_devices = devices > plan.included_devices and plan.per_device > 0
    assert len(priced.lines) == 1 + extra_users + extra_devices + len(add_ons)


@given(plan=plans(), users=st.integers(min_value=0, max_value=9_999), devices=counts)
def test_price_never_falls_as_users_grow(plan, users, devices):
    fewer = price_quote(plan, {}, {"users": users, "devices": devices}).total
    more = price_quote(plan, {}, {"users": users + 1, "devices": devices}).total
    assert more >= fewer
    if users >= plan.included_users and plan.per_user >= Decimal("0.01"):
        assert more > fewer


@given(lines=st.lists(st.tuples(st.integers(min_value=1, max_value=10_000), prices), min_size=1, max_size=50))
def test_custom_total_is_the_sum_of_rounded_lines(lines):
    priced = price_lines([CustomLine(f"Line {n}", qty, price) for n, (qty, price) in enumerate(lines)], "AUD")
    assert priced.total == sum(line.amount for line in priced.lines)
    assert all(line.amount.as_tuple().exponent == -2 for line in priced.lines)
