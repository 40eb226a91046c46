"""Pricing a contract line for one period (pure: no database).

Every example's amount is worked out by hand in AUD. The property tests price random tier tables against a
tier-by-tier reference.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.proration import minor_units, quantize
from billing.rating import USES, Charge, Kind, LineTerms, Model, Tier, rate, validate_tiers

PROPERTY = settings(max_examples=300, deadline=None)


def D(text: str | int) -> Decimal:  # noqa: N802 - reads like the literal it stands for
    return Decimal(text)


DEVICE_TIERS = (
    Tier(D(10), D("5.00")),  # devices 1-10 at 5.00
    Tier(D(50), D("4.00"), flat_fee=D("20.00")),  # 11-50 at 4.00, plus 20.00 once the tier is reached
    Tier(None, D("3.50")),  # 51 and up at 3.50
)


def devices(model: Model, quantity: int, included: int = 0) -> LineTerms:
    return LineTerms(model, "Devices", "AUD", quantity=D(quantity), included_quantity=D(included), tiers=DEVICE_TIERS)


def support_block(included_hours: str = "10") -> LineTerms:
    return LineTerms(
        Model.HOURS_BLOCK,
        "Support",
        "AUD",
        amount=D("1500.00"),
        included_quantity=D(included_hours),
        overage_rate=D("165.00"),
    )


def summary(charges: list[Charge]) -> list[tuple[str, str, str, str, str]]:
    return [
        (charge.description, str(charge.quantity), str(charge.unit_price), str(charge.amount), charge.kind)
        for charge in charges
    ]


# -- FLAT ----------------------------------------------------------------------------------------------------------


def test_flat_is_one_recurring_charge_of_the_amount():
    terms = LineTerms(Model.FLAT, "Managed services", "AUD", amount=D("1499.00"))
    assert rate(terms) == [Charge("Managed services", D(1), D("1499.00"), D("1499.00"), Kind.RECURRING)]


def test_a_flat_amount_with_fractions_of_a_cent_is_rounded_on_the_charge():
    terms = LineTerms(Model.FLAT, "Backup", "AUD", amount=D("99.995"))
    (charge,) = rate(terms)
    assert charge.unit_price == D("99.995")
    assert str(charge.amount) == "100.00"


def test_flat_in_a_zero_decimal_currency():
    (charge,) = rate(LineTerms(Model.FLAT, "Managed services", "JPY", amount=D("150000.4")))
    assert str(charge.amount) == "150000"


# -- PER_UNIT ------------------------------------------------------------------------------------------------------


def test_per_unit_bills_the_units_beyond_those_included():
    terms = LineTerms(Model.PER_UNIT, "Users", "AUD", unit_price=D("12.50"), quantity=D(25), included_quantity=D(5))
    assert summary(rate(terms)) == [("Users (beyond 5 included)", "20", "12.50", "250.00", "recurring")]


def test_per_unit_with_more_included_than_used_is_a_zero_line_still_shown():
    terms = LineTerms(Model.PER_UNIT, "Users", "AUD", unit_price=D("12.50"), quantity=D(3), included_quantity=D(5))
    assert summary(rate(terms)) == [("Users (beyond 5 included)", "0", "12.50", "0.00", "recurring")]


def test_per_unit_rounds_the_line_half_up():
    terms = LineTerms(Model.PER_UNIT, "Licences", "AUD", unit_price=D("0.335"), quantity=D(3))
    assert summary(rate(terms)) == [("Licences", "3", "0.335", "1.01", "recurring")]  # 1.005 -> 1.01


# -- TIERED_GRADUATED ----------------------------------------------------------------------------------------------


def test_graduated_tiers_charge_each_tier_its_own_price():
    assert summary(rate(devices(Model.TIERED_GRADUATED, 60))) == [
        ("Devices 1-10", "10", "5.00", "50.00", "recurring"),
        ("Devices 11-50 (incl. 20 flat fee)", "40", "4.00", "180.00", "recurring"),  # 40 x 4.00 + 20.00
        ("Devices 51+", "10", "3.50", "35.00", "recurring"),
    ]


def test_graduated_quantity_exactly_at_a_tier_boundary_stays_in_that_tier():
    assert summary(rate(devices(Model.TIERED_GRADUATED, 10))) == [("Devices 1-10", "10", "5.00", "50.00", "recurring")]
    assert summary(rate(devices(Model.TIERED_GRADUATED, 11))) == [
        ("Devices 1-10", "10", "5.00", "50.00", "recurring"),
        ("Devices 11-50 (incl. 20 flat fee)", "1", "4.00", "24.00", "recurring"),
    ]


def test_graduated_tiers_count_from_the_first_billable_unit():
    assert summary(rate(devices(Model.TIERED_GRADUATED, 15, included=5))) == [
        ("Devices 1-10 (beyond 5 included)", "10", "5.00", "50.00", "recurring")
    ]


def test_graduated_with_nothing_to_bill_is_one_zero_line():
    assert summary(rate(devices(Model.TIERED_GRADUATED, 0))) == [("Devices 1-10", "0", "5.00", "0.00", "recurring")]
    assert summary(rate(devices(Model.TIERED_GRADUATED, 4, included=5))) == [
        ("Devices 1-10 (beyond 5 included)", "0", "5.00", "0.00", "recurring")
    ]


def test_graduated_tiers_round_each_line_on_its_own():
    tiers = (Tier(D(1), D("0.005")), Tier(None, D("0.005")))
    terms = LineTerms(Model.TIERED_GRADUATED, "Checks", "AUD", quantity=D(2), tiers=tiers)
    assert [charge.amount for charge in rate(terms)] == [D("0.01"), D("0.01")]  # not 0.01 for both units together


def test_graduated_labels_for_single_unit_and_fractional_tiers():
    tiers = (Tier(D(1), D("9.00")), Tier(D("2.5"), D("8.00")), Tier(None, D("7.00")))
    terms = LineTerms(Model.TIERED_GRADUATED, "Storage", "AUD", quantity=D("4"), tiers=tiers)
    assert summary(rate(terms)) == [
        ("Storage 1", "1", "9.00", "9.00", "recurring"),
        ("Storage over 1 up to 2.5", "1.5", "8.00", "12.00", "recurring"),
        ("Storage over 2.5", "1.5", "7.00", "10.50", "recurring"),
    ]


# -- TIERED_VOLUME -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (1, ("Devices (tier 1-10)", "1", "5.00", "5.00", "recurring")),
        (10, ("Devices (tier 1-10)", "10", "5.00", "50.00", "recurring")),  # the boundary belongs to the lower tier
        (11, ("Devices (tier 11-50, incl. 20 flat fee)", "11", "4.00", "64.00", "recurring")),  # 11 x 4.00 + 20.00
        (50, ("Devices (tier 11-50, incl. 20 flat fee)", "50", "4.00", "220.00", "recurring")),
        (60, ("Devices (tier 51+)", "60", "3.50", "210.00", "recurring")),
        (0, ("Devices (tier 1-10)", "0", "5.00", "0.00", "recurring")),  # nothing billed, no flat fee
    ],
)
def test_volume_tiers_price_every_unit_at_the_tier_of_the_whole_quantity(quantity, expected):
    assert summary(rate(devices(Model.TIERED_VOLUME, quantity))) == [expected]


def test_volume_tiers_apply_to_the_billable_quantity():
    assert summary(rate(devices(Model.TIERED_VOLUME, 13, included=2))) == [
        ("Devices (beyond 2 included, tier 11-50, incl. 20 flat fee)", "11", "4.00", "64.00", "recurring")
    ]


# -- USAGE ---------------------------------------------------------------------------------------------------------


def test_usage_at_a_unit_price_beyond_the_included_allowance():
    terms = LineTerms(Model.USAGE, "Backup storage (GB)", "AUD", unit_price=D("0.125"), included_quantity=D(100))
    assert summary(rate(terms, usage=D("250.5"))) == [
        ("Backup storage (GB) (beyond 100 included)", "150.5", "0.125", "18.81", "usage")  # 18.8125
    ]


def test_zero_usage_is_a_zero_usage_line():
    terms = LineTerms(Model.USAGE, "SMS", "AUD", unit_price=D("0.05"))
    assert summary(rate(terms)) == [("SMS", "0", "0.05", "0.00", "usage")]
    assert summary(rate(terms, usage=D(0))) == [("SMS", "0", "0.05", "0.00", "usage")]


def test_usage_priced_in_graduated_tiers():
    tiers = (Tier(D(1000), D("0.05")), Tier(D(10000), D("0.04")), Tier(None, D("0.03")))
    terms = LineTerms(Model.USAGE, "SMS", "AUD", tiers=tiers)
    assert summary(rate(terms, usage=D(12000))) == [
        ("SMS 1-1000", "1000", "0.05", "50.00", "usage"),
        ("SMS 1001-10000", "9000", "0.04", "360.00", "usage"),
        ("SMS 10001+", "2000", "0.03", "60.00", "usage"),
    ]
    assert summary(rate(terms)) == [("SMS 1-1000", "0", "0.05", "0.00", "usage")]


# -- HOURS_BLOCK ---------------------------------------------------------------------------------------------------


def test_hours_beyond_the_block_are_overage():
    assert summary(rate(support_block(), hours=D("12.5"))) == [
        ("Support (10 hours included)", "1", "1500.00", "1500.00", "recurring"),
        ("Support overage (2.5 hours beyond the 10 hours included)", "2.5", "165.00", "412.50", "overage"),
    ]


@pytest.mark.parametrize("hours", ["0", "9.75", "10", "10.00"])
def test_hours_within_the_block_cost_the_block_fee_only(hours):
    assert summary(rate(support_block(), hours=D(hours))) == [
        ("Support (10 hours included)", "1", "1500.00", "1500.00", "recurring")
    ]


def test_one_hour_of_overage_on_a_one_hour_block():
    charges = rate(support_block("1"), hours=D(2))
    assert [charge.description for charge in charges] == [
        "Support (1 hour included)",
        "Support overage (1 hour beyond the 1 hour included)",
    ]
    assert charges[1].amount == D("165.00")


def test_overage_is_rounded_half_up():
    charges = rate(support_block(), hours=D("10.003"))  # 0.003 x 165.00 = 0.495
    assert charges[1].amount == D("0.50")


# -- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"up_to": D(0), "unit_price": D(1)}, "up_to must be greater than 0"),
        ({"up_to": D(-5), "unit_price": D(1)}, "up_to must be greater than 0"),
        ({"up_to": 10, "unit_price": D(1)}, "up_to must be a Decimal"),
        ({"up_to": None, "unit_price": D("-0.01")}, "unit_price must not be negative"),
        ({"up_to": None, "unit_price": 1.5}, "unit_price must be a Decimal"),
        ({"up_to": None, "unit_price": D(1), "flat_fee": D(-1)}, "flat_fee must not be negative"),
        ({"up_to": None, "unit_price": D("NaN")}, "unit_price must be a finite number"),
    ],
)
def test_bad_tiers_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Tier(**kwargs)


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ((), "tiers: at least one tier is needed"),
        (
            (Tier(D(10), D(1)), Tier(D(10), D(1)), Tier(None, D(1))),
            r"tiers\[1\]: up_to must be greater than the previous tier's \(10\), got 10",
        ),
        (
            (Tier(D(10), D(1)), Tier(D(5), D(1)), Tier(None, D(1))),
            r"tiers\[1\]: up_to must be greater than the previous",
        ),
        ((Tier(None, D(1)), Tier(None, D(1))), r"tiers\[0\]: only the last tier may have no upper limit"),
        ((Tier(D(10), D(1)), Tier(D(20), D(1))), r"tiers\[1\]: the last tier must have no upper limit"),
        ((Tier(D(10), D(1)), "tier"), r"tiers\[1\] must be a Tier"),
        ({Tier(None, D(1))}, "tiers must be a tuple of Tier"),
    ],
)
def test_validate_tiers_names_the_bad_tier(tiers, message):
    with pytest.raises(ValueError, match=message):
        validate_tiers(tiers)


def test_validate_tiers_returns_a_tuple():
    assert validate_tiers(list(DEVICE_TIERS)) == DEVICE_TIERS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": Model.FLAT}, "amount: a FLAT line needs it"),
        ({"model": Model.FLAT, "amount": D(1), "unit_price": D(1)}, "unit_price: a FLAT line does not use it"),
        ({"model": Model.FLAT, "amount": D(1), "quantity": D(3)}, "quantity: a FLAT line does not use it"),
        ({"model": Model.FLAT, "amount": D(-1)}, "amount must not be negative"),
        ({"model": Model.FLAT, "amount": 10.0}, "amount must be a Decimal"),
        ({"model": Model.PER_UNIT, "quantity": D(3)}, "unit_price: a PER_UNIT line needs it"),
        ({"model": Model.PER_UNIT, "unit_price": D(1), "quantity": D(-3)}, "quantity must not be negative"),
        ({"model": Model.PER_UNIT, "unit_price": D(1), "included_quantity": D(-1)}, "included_quantity must not be"),
        ({"model": Model.PER_UNIT, "unit_price": D(1), "tiers": DEVICE_TIERS}, "tiers: a PER_UNIT line does not use"),
        ({"model": Model.TIERED_VOLUME, "quantity": D(3)}, "tiers: a TIERED_VOLUME line needs it"),
        ({"model": Model.TIERED_GRADUATED, "tiers": (Tier(D(5), D(1)),)}, r"tiers\[0\]: the last tier must have"),
        ({"model": Model.TIERED_GRADUATED, "tiers": DEVICE_TIERS, "amount": D(1)}, "amount: a TIERED_GRADUATED line"),
        ({"model": Model.USAGE}, "a USAGE line is priced either by unit_price or by tiers"),
        ({"model": Model.USAGE, "unit_price": D(1), "tiers": DEVICE_TIERS}, "either by unit_price or by tiers"),
        ({"model": Model.USAGE, "unit_price": D(1), "quantity": D(1)}, "quantity: a USAGE line does not use it"),
        ({"model": Model.HOURS_BLOCK, "amount": D(1)}, "overage_rate: a HOURS_BLOCK line needs it"),
        ({"model": Model.HOURS_BLOCK, "overage_rate": D(1)}, "amount: a HOURS_BLOCK line needs it"),
        ({"model": Model.FLAT, "amount": D(1), "overage_rate": D(1)}, "overage_rate: a FLAT line does not use it"),
        ({"model": "SUBSCRIPTION", "amount": D(1)}, "model must be one of FLAT, PER_UNIT"),
        ({"model": Model.FLAT, "amount": D(1), "currency": "dollars"}, "currency must be a three-letter ISO 4217"),
        ({"model": Model.FLAT, "amount": D(1), "description": "  "}, "description must be a non-empty string"),
    ],
)
def test_bad_line_terms_name_the_field(kwargs, message):
    arguments = {"description": "Line", "currency": "AUD", **kwargs}
    with pytest.raises(ValueError, match=message):
        LineTerms(**arguments)


def test_uses_lists_the_fields_each_model_reads():
    assert set(USES) == set(Model)
    assert USES[Model.FLAT] == {"amount"}
    assert USES[Model.HOURS_BLOCK] == {"amount", "included_quantity", "overage_rate"}
    assert USES[Model.USAGE] == {"unit_price", "tiers", "included_quantity"}
    assert USES[Model.TIERED_GRADUATED] == USES[Model.TIERED_VOLUME] == {"tiers", "quantity", "included_quantity"}


def test_line_terms_normalise_the_model_currency_and_tiers():
    terms = LineTerms("PER_UNIT", "Users", "aud", unit_price=D(1))  # type: ignore[arg-type]  # a model field's value
    assert terms.model is Model.PER_UNIT
    assert terms.currency == "AUD"
    listed = LineTerms(Model.TIERED_VOLUME, "Devices", "AUD", tiers=list(DEVICE_TIERS))  # type: ignore[arg-type]
    assert listed.tiers == DEVICE_TIERS


def test_rate_refuses_usage_and_hours_on_lines_that_do_not_use_them():
    flat = LineTerms(Model.FLAT, "Managed services", "AUD", amount=D(100))
    with pytest.raises(ValueError, match="usage: only USAGE lines are rated on usage, this is a FLAT line"):
        rate(flat, usage=D(5))
    with pytest.raises(ValueError, match="hours: only HOURS_BLOCK lines are rated on hours"):
        rate(flat, hours=D(1))
    usage = LineTerms(Model.USAGE, "SMS", "AUD", unit_price=D("0.05"))
    with pytest.raises(ValueError, match="usage must not be negative"):
        rate(usage, usage=D(-1))
    with pytest.raises(ValueError, match="usage must be a Decimal"):
        rate(usage, usage=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hours must not be negative"):
        rate(support_block(), hours=D(-1))
    with pytest.raises(ValueError, match="terms must be LineTerms"):
        rate({"model": "FLAT"})  # type: ignore[arg-type]


def test_numbers_too_long_to_multiply_exactly_are_a_value_error():
    terms = LineTerms(Model.PER_UNIT, "Users", "AUD", unit_price=D("1." + "1" * 40), quantity=D("1." + "1" * 40))
    with pytest.raises(ValueError, match="too many digits to price exactly"):
        rate(terms)


def test_a_charge_kind_must_be_an_invoice_line_kind():
    assert Charge("x", D(1), D(1), D(1), "usage").kind is Kind.USAGE  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind must be one of recurring, usage, overage"):
        Charge("x", D(1), D(1), D(1), "proration")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="amount must be a Decimal"):
        Charge("x", D(1), D(1), 1.0, Kind.RECURRING)  # type: ignore[arg-type]


# -- properties ----------------------------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=50, places=3)
fees = st.one_of(st.just(Decimal(0)), st.decimals(min_value=0, max_value=100, places=2))
quantities = st.decimals(min_value=0, max_value=300, places=2)
currencies = st.sampled_from(["AUD", "JPY", "KWD"])


@st.composite
def tier_tables(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.sets(st.decimals(min_value=1, max_value=200, places=1), max_size=4)))
    tiers = [Tier(bound, draw(prices), draw(fees)) for bound in bounds]
    return (*tiers, Tier(None, draw(prices), draw(fees)))


def ranges(tiers: tuple[Tier, ...]) -> list[tuple[Decimal, Decimal | None, Tier]]:
    """Each tier with the bounds of the units it covers, (lower, up_to]."""
    lowers = [Decimal(0), *(tier.up_to for tier in tiers[:-1] if tier.up_to is not None)]
    return [(lower, tier.up_to, tier) for lower, tier in zip(lowers, tiers, strict=True)]


def tier_part(lower: Decimal, up_to: Decimal | None, tier: Tier, quantity: Decimal, currency: str) -> Decimal:
    """What one tier charges for ``quantity`` graduated units: its own units at its price, plus its fee if any."""
    ceiling = quantity if up_to is None else min(quantity, up_to)
    units = max(Decimal(0), ceiling - lower)
    return quantize(units * tier.unit_price + tier.flat_fee, currency) if units else Decimal(0)


def check_amounts(charges: list[Charge], currency: str) -> None:
    for charge in charges:
        assert charge.amount >= 0
        assert charge.amount.as_tuple().exponent == -minor_units(currency)


@PROPERTY
@given(tier_tables(), quantities, quantities, currencies)
def test_graduated_pricing_is_the_sum_of_each_tiers_part(tiers, quantity, included, currency):
    terms = LineTerms(
        Model.TIERED_GRADUATED, "Devices", currency, quantity=quantity, included_quantity=included, tiers=tiers
    )
    charges = rate(terms)
    billable = max(Decimal(0), quantity - included)
    expected = sum(tier_part(lower, up_to, tier, billable, currency) for lower, up_to, tier in ranges(tiers))
    assert sum(charge.amount for charge in charges) == expected
    assert sum(charge.quantity for charge in charges) == billable
    assert all(charge.kind is Kind.RECURRING for charge in charges)
    check_amounts(charges, currency)


@PROPERTY
@given(tier_tables(), quantities, quantities, currencies)
def test_graduated_pricing_never_falls_as_the_quantity_grows(tiers, quantity, more, currency):
    def total(units: Decimal) -> Decimal:
        terms = LineTerms(Model.TIERED_GRADUATED, "Devices", currency, quantity=units, tiers=tiers)
        return sum((charge.amount for charge in rate(terms)), Decimal(0))

    assert total(quantity + more) >= total(quantity)


@PROPERTY
@given(tier_tables(), quantities, currencies)
def test_volume_pricing_is_the_quantity_at_the_price_of_the_tier_containing_it(tiers, quantity, currency):
    (charge,) = rate(LineTerms(Model.TIERED_VOLUME, "Devices", currency, quantity=quantity, tiers=tiers))
    if quantity:
        (tier,) = [
            tier for lower, up_to, tier in ranges(tiers) if lower < quantity and (up_to is None or quantity <= up_to)
        ]
        assert charge.amount == quantize(quantity * tier.unit_price + tier.flat_fee, currency)
        assert charge.unit_price == tier.unit_price
    else:
        assert charge.amount == 0
    assert charge.quantity == quantity
    check_amounts([charge], currency)


@PROPERTY
@given(tier_tables(), quantities, quantities, currencies)
def test_tiered_usage_is_graduated_pricing_of_the_usage(tiers, usage, included, currency):
    usage_terms = LineTerms(Model.USAGE, "SMS", currency, included_quantity=included, tiers=tiers)
    seat_terms = LineTerms(
        Model.TIERED_GRADUATED, "SMS", currency, quantity=usage, included_quantity=included, tiers=tiers
    )
    usage_charges = rate(usage_terms, usage=usage)
    assert [charge.kind for charge in usage_charges] == [Kind.USAGE] * len(usage_charges)
    assert [(c.quantity, c.amount) for c in usage_charges] == [(c.quantity, c.amount) for c in rate(seat_terms)]


@PROPERTY
@given(prices, quantities, quantities, currencies)
def test_per_unit_and_untiered_usage_bill_the_units_beyond_the_allowance(price, quantity, included, currency):
    billable = max(Decimal(0), quantity - included)
    per_unit = LineTerms(
        Model.PER_UNIT, "Users", currency, unit_price=price, quantity=quantity, included_quantity=included
    )
    usage = LineTerms(Model.USAGE, "Storage", currency, unit_price=price, included_quantity=included)
    for charges, kind in ((rate(per_unit), Kind.RECURRING), (rate(usage, usage=quantity), Kind.USAGE)):
        (charge,) = charges
        assert (charge.quantity, charge.amount, charge.kind) == (billable, quantize(billable * price, currency), kind)
        check_amounts(charges, currency)


@PROPERTY
@given(prices, quantities, quantities, currencies)
def test_an_hours_block_charges_overage_only_beyond_its_hours(rate_per_hour, included, hours, currency):
    terms = LineTerms(
        Model.HOURS_BLOCK,
        "Support",
        currency,
        amount=D("990.00"),
        included_quantity=included,
        overage_rate=rate_per_hour,
    )
    charges = rate(terms, hours=hours)
    assert charges[0].amount == quantize(D("990.00"), currency)
    if hours > included:
        assert (charges[1].quantity, charges[1].kind) == (hours - included, Kind.OVERAGE)
        assert charges[1].amount == quantize((hours - included) * rate_per_hour, currency)
    else:
        assert len(charges) == 1
    check_amounts(charges, currency)
