"""Rounding and proration by the day (pure: no database).

Expected amounts are worked out by hand: amount x used days / period days, then rounded half up to the minor unit.
The property tests check the promises an invoice relies on (shares add up, credits mirror charges) and compare
``prorate`` against exact rational arithmetic.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.periods import Period
from billing.proration import change_adjustment, minor_units, prorate, prorate_piece, quantize, split

PROPERTY = settings(max_examples=300, deadline=None)

JANUARY = Period(date(2025, 1, 1), date(2025, 2, 1))  # 31 days
FEBRUARY = Period(date(2025, 2, 1), date(2025, 3, 1))  # 28 days


def D(text: str) -> Decimal:  # noqa: N802 - reads like the literal it stands for
    return Decimal(text)


# -- currencies and rounding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "places"),
    [("AUD", 2), ("USD", 2), ("EUR", 2), ("nzd", 2), ("JPY", 0), ("KRW", 0), ("VND", 0), ("CLP", 0), ("ISK", 0),
     ("UGX", 0), ("XAF", 0), ("XOF", 0), ("XPF", 0), ("BHD", 3), ("KWD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3),
     ("IQD", 3), ("LYD", 3), ("CLF", 4)],
)  # fmt: skip
def test_minor_units(currency, places):
    assert minor_units(currency) == places


@pytest.mark.parametrize("currency", ["", "AU", "AUDD", "A1D", "\u00c5UD", 36, None])
def test_a_currency_must_be_a_three_letter_code(currency):
    with pytest.raises(ValueError, match="currency must be a three-letter ISO 4217 code"):
        minor_units(currency)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1.005", "AUD", "1.01"),
        ("1.004999", "AUD", "1.00"),
        ("-1.005", "AUD", "-1.01"),  # ties away from zero
        ("2.5", "JPY", "3"),
        ("-2.5", "JPY", "-3"),
        ("1.2345", "KWD", "1.235"),
        ("7", "AUD", "7.00"),
        ("-0.004", "AUD", "0.00"),
        ("12345678901234567890.125", "USD", "12345678901234567890.13"),
    ],
)
def test_quantize(amount, currency, expected):
    result = quantize(D(amount), currency)
    assert str(result) == expected  # the exponent too: 7.00, not 7


def test_quantize_never_returns_negative_zero():
    assert not quantize(D("-0.001"), "AUD").is_signed()
    assert not prorate(D("-0.01"), 1, 31, "AUD").is_signed()


@pytest.mark.parametrize("amount", [0.1, 1, "1.00", None, Decimal("NaN"), Decimal("Infinity")])
def test_money_must_be_a_finite_decimal(amount):
    with pytest.raises(ValueError, match="amount must be a"):
        quantize(amount, "AUD")
    with pytest.raises(ValueError, match="amount must be a"):
        prorate(amount, 1, 2, "AUD")


# -- prorate: examples ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "used", "period", "currency", "expected"),
    [
        ("100.00", 10, 30, "AUD", "33.33"),
        ("100.00", 20, 30, "AUD", "66.67"),
        ("100.00", 15, 31, "AUD", "48.39"),  # 48.387...
        ("99.99", 1, 29, "AUD", "3.45"),  # 3.4479...
        ("0.01", 1, 2, "AUD", "0.01"),  # exactly half a cent rounds up
        ("-0.01", 1, 2, "AUD", "-0.01"),  # and away from zero for a credit
        ("0.03", 1, 6, "AUD", "0.01"),  # 0.005 exactly
        ("0.03", 1, 7, "AUD", "0.00"),  # 0.00428...
        ("1000", 1, 3, "JPY", "333"),
        ("1000", 2, 3, "JPY", "667"),
        ("12.345", 10, 31, "KWD", "3.982"),  # 3.98225...
        ("12.345", 1, 2, "KWD", "6.173"),  # 6.1725 exactly: half up
        ("49.95", 28, 28, "AUD", "49.95"),
        ("49.955", 28, 28, "AUD", "49.96"),  # the full period is the quantized amount
        ("49.95", 0, 28, "AUD", "0.00"),
        ("1E+3", 1, 3, "AUD", "333.33"),  # any exponent
        ("0.005", 1, 1, "AUD", "0.01"),  # more places than the currency
    ],
)
def test_prorate_examples(amount, used, period, currency, expected):
    assert str(prorate(D(amount), used, period, currency)) == expected


def test_prorate_rounds_once_from_the_exact_fraction():
    # A third of 0.045 is 0.015 exactly: a tie in cents, so up (away from zero).
    assert prorate(D("0.045"), 1, 3, "AUD") == D("0.02")
    assert prorate(D("-0.045"), 1, 3, "AUD") == D("-0.02")
    # Just below the tie stays below it, however many places the amount has.
    assert prorate(D("0.0449999999999999999999999999999999999999999999"), 1, 3, "AUD") == D("0.01")
    # Rounding the amount to cents first (0.05) would have given 0.02 here.
    assert prorate(D("0.045"), 1, 4, "AUD") == D("0.01")


@pytest.mark.parametrize(
    ("used", "period", "message"),
    [
        (-1, 30, r"used_days must be between 0 and period_days \(30\), got -1"),
        (31, 30, r"used_days must be between 0 and period_days \(30\), got 31"),
        (0, 0, "period_days must be at least 1, got 0"),
        (1, -30, "period_days must be at least 1"),
        (1.5, 30, "used_days must be a whole number of days"),
        (True, 30, "used_days must be a whole number of days"),
        (1, 30.0, "period_days must be a whole number of days"),
    ],
)
def test_prorate_refuses_impossible_days(used, period, message):
    with pytest.raises(ValueError, match=message):
        prorate(D("100.00"), used, period, "AUD")


def test_an_amount_too_long_to_prorate_exactly_is_a_value_error():
    with pytest.raises(ValueError, match="too many digits to prorate exactly"):
        prorate(Decimal("1" * 70), 1, 3, "AUD")


# -- pieces, splits and changes: examples --------------------------------------------------------------------------


def test_prorate_piece_uses_the_days_of_the_piece_and_of_its_cycle_period():
    piece = Period(date(2025, 1, 20), date(2025, 2, 1))  # 12 of January's 31 days
    assert prorate_piece(D("310.00"), piece, JANUARY, "AUD") == D("120.00")
    assert prorate_piece(D("310.00"), JANUARY, JANUARY, "AUD") == D("310.00")
    with pytest.raises(ValueError, match="must lie within cycle_period"):
        prorate_piece(D("310.00"), Period(date(2025, 1, 20), date(2025, 2, 2)), JANUARY, "AUD")
    with pytest.raises(ValueError, match="piece must be a Period"):
        prorate_piece(D("310.00"), (date(2025, 1, 20), date(2025, 2, 1)), JANUARY, "AUD")  # type: ignore[arg-type]


def test_split_prorates_each_piece_and_may_miss_the_total_by_rounding():
    pieces = split(D("100.00"), FEBRUARY, [date(2025, 2, 11), date(2025, 2, 21)], "AUD")
    assert pieces == [
        (Period(date(2025, 2, 1), date(2025, 2, 11)), D("35.71")),  # 10/28 = 35.714...
        (Period(date(2025, 2, 11), date(2025, 2, 21)), D("35.71")),
        (Period(date(2025, 2, 21), date(2025, 3, 1)), D("28.57")),  # 8/28 = 28.571...
    ]
    assert sum(amount for _, amount in pieces) == D("99.99")  # each line is rounded on its own


def test_split_sorts_and_merges_cuts_and_without_cuts_is_the_whole_period():
    unordered = split(D("31.00"), JANUARY, [date(2025, 1, 21), date(2025, 1, 11), date(2025, 1, 21)], "AUD")
    assert [(piece.start.day, piece.days, amount) for piece, amount in unordered] == [
        (1, 10, D("10.00")),
        (11, 10, D("10.00")),
        (21, 11, D("11.00")),
    ]
    assert split(D("31.005"), JANUARY, [], "AUD") == [(JANUARY, D("31.01"))]


@pytest.mark.parametrize(
    ("cuts", "message"),
    [
        ([date(2025, 1, 1)], r"cuts\[0\] \(2025-01-01\) must fall strictly inside the period 2025-01-01..2025-02-01"),
        ([date(2025, 1, 5), date(2025, 2, 1)], r"cuts\[1\] \(2025-02-01\) must fall strictly inside"),
        ([date(2024, 12, 31)], r"cuts\[0\]"),
        ([datetime(2025, 1, 5)], r"cuts\[0\] must be a date \(not a datetime\)"),  # noqa: DTZ001
        (["2025-01-05"], r"cuts\[0\] must be a date"),
        (None, "cuts must be a list of dates"),
    ],
)
def test_split_refuses_cuts_outside_the_period(cuts, message):
    with pytest.raises(ValueError, match=message):
        split(D("31.00"), JANUARY, cuts, "AUD")


def test_an_upgrade_mid_month_charges_the_difference_for_the_remaining_days():
    # 10 -> 15 seats at 12.00 on 22 January: 5 x 12.00 for 10 of 31 days.
    assert change_adjustment(D("120.00"), D("180.00"), date(2025, 1, 22), JANUARY, "AUD") == D("19.35")
    # The reverse is a credit of the same size.
    assert change_adjustment(D("180.00"), D("120.00"), date(2025, 1, 22), JANUARY, "AUD") == D("-19.35")


def test_a_change_on_the_first_day_adjusts_by_the_whole_difference_and_on_the_last_by_one_day():
    assert change_adjustment(D("100.00"), D("128.00"), date(2025, 2, 1), FEBRUARY, "AUD") == D("28.00")
    assert change_adjustment(D("100.00"), D("128.00"), date(2025, 2, 28), FEBRUARY, "AUD") == D("1.00")
    assert change_adjustment(D("100.00"), D("100.00"), date(2025, 2, 14), FEBRUARY, "AUD") == D("0.00")


def test_a_change_must_fall_within_the_period():
    with pytest.raises(ValueError, match=r"change_day \(2025-03-01\) must fall within the period"):
        change_adjustment(D("100.00"), D("128.00"), date(2025, 3, 1), FEBRUARY, "AUD")
    with pytest.raises(ValueError, match=r"change_day \(2025-01-31\) must fall within the period"):
        change_adjustment(D("100.00"), D("128.00"), date(2025, 1, 31), FEBRUARY, "AUD")
    with pytest.raises(ValueError, match="change_day must be a date"):
        change_adjustment(D("100.00"), D("128.00"), datetime(2025, 2, 3), FEBRUARY, "AUD")  # noqa: DTZ001
    with pytest.raises(ValueError, match="new_amount must be a Decimal"):
        change_adjustment(D("100.00"), 128.0, date(2025, 2, 3), FEBRUARY, "AUD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cycle_period must be a Period"):
        change_adjustment(D("100.00"), D("128.00"), date(2025, 2, 3), None, "AUD")  # type: ignore[arg-type]


# -- properties ----------------------------------------------------------------------------------------------------

currencies = st.sampled_from(["AUD", "USD", "JPY", "KWD", "CLF"])


@st.composite
def amounts(draw: st.DrawFn, currency: str) -> Decimal:
    """Amounts up to a million, negative ones included, with up to two more places than the currency has."""
    places = minor_units(currency) + 2
    return draw(st.decimals(min_value=-1_000_000, max_value=1_000_000, places=places))


@st.composite
def periods_and_cuts(draw: st.DrawFn) -> tuple[Period, list[date]]:
    start = draw(st.dates(min_value=date(1999, 1, 1), max_value=date(2100, 12, 31)))
    length = draw(st.integers(1, 366))
    period = Period(start, start + timedelta(days=length))
    offsets = draw(st.lists(st.integers(1, length - 1), max_size=6)) if length > 1 else []
    return period, [start + timedelta(days=offset) for offset in offsets]


def reference(amount: Decimal, used: int, period: int, currency: str) -> Decimal:
    """The exact fraction, rounded half away from zero, using Fraction instead of the module's Decimal tricks."""
    exact = Fraction(amount) * used / period
    unit = Fraction(1, 10 ** minor_units(currency))
    units, remainder = divmod(abs(exact), unit)
    if remainder * 2 >= unit:
        units += 1
    result = Decimal(int(units)).scaleb(-minor_units(currency))
    return -result if exact < 0 else result


@PROPERTY
@given(st.data())
def test_prorate_agrees_with_exact_rational_arithmetic(data):
    currency = data.draw(currencies)
    amount = data.draw(amounts(currency))
    period = data.draw(st.integers(1, 400))
    used = data.draw(st.integers(0, period))
    result = prorate(amount, used, period, currency)
    assert result == reference(amount, used, period, currency)
    assert result.as_tuple().exponent == -minor_units(currency)


@PROPERTY
@given(st.data())
def test_the_pieces_of_a_period_add_up_within_one_minor_unit_each(data):
    currency = data.draw(currencies)
    amount = data.draw(amounts(currency))
    period, cuts = data.draw(periods_and_cuts())
    pieces = split(amount, period, cuts, currency)
    unit = Decimal(1).scaleb(-minor_units(currency))
    assert abs(sum(share for _, share in pieces) - amount) <= len(pieces) * unit
    assert [piece.start for piece, _ in pieces] == [period.start, *sorted(set(cuts))]
    assert pieces[-1][0].end == period.end
    assert sum(piece.days for piece, _ in pieces) == period.days


@PROPERTY
@given(st.data())
def test_a_change_and_its_reversal_on_the_same_day_cancel_exactly(data):
    currency = data.draw(currencies)
    old, new = data.draw(amounts(currency)), data.draw(amounts(currency))
    period, _ = data.draw(periods_and_cuts())
    change_day = period.start + timedelta(days=data.draw(st.integers(0, period.days - 1)))
    there = change_adjustment(old, new, change_day, period, currency)
    back = change_adjustment(new, old, change_day, period, currency)
    assert there + back == 0
    assert (there > 0) <= (new > old)  # a charge only for an increase, a credit only for a decrease
    assert (there < 0) <= (new < old)


@PROPERTY
@given(st.data())
def test_the_full_period_is_the_quantized_amount_and_no_days_is_zero(data):
    currency = data.draw(currencies)
    amount = data.draw(amounts(currency))
    days = data.draw(st.integers(1, 400))
    assert prorate(amount, days, days, currency) == quantize(amount, currency)
    assert prorate(amount, 0, days, currency) == 0


@PROPERTY
@given(st.data())
def test_proration_and_rounding_are_symmetric_for_credits(data):
    currency = data.draw(currencies)
    amount = data.draw(amounts(currency))
    period = data.draw(st.integers(1, 400))
    used = data.draw(st.integers(0, period))
    assert prorate(-amount, used, period, currency) == -prorate(amount, used, period, currency)
    assert quantize(-amount, currency) == -quantize(amount, currency)


@PROPERTY
@given(st.data())
def test_prorate_never_rounds_further_than_half_a_minor_unit_and_grows_with_the_days(data):
    currency = data.draw(currencies)
    amount = data.draw(amounts(currency))
    period = data.draw(st.integers(1, 400))
    used = data.draw(st.integers(0, period - 1))
    unit = Decimal(1).scaleb(-minor_units(currency))
    result = prorate(amount, used, period, currency)
    assert abs(Fraction(result) - Fraction(amount) * used / period) <= Fraction(unit) / 2
    following = prorate(amount, used + 1, period, currency)
    assert following >= result if amount >= 0 else following <= result


def test_quantize_matches_decimal_half_up_for_two_place_currencies():
    for cents in range(-1000, 1001):
        amount = Decimal(cents).scaleb(-3)
        assert quantize(amount, "AUD") == amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
