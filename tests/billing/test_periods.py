"""Billing cycle arithmetic (pure: no database).

The examples spell out the boundaries a person would write on a calendar; the property tests check the invariants
for every cycle and anchor over two centuries, leap years and month ends included.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.periods import (
    MONTHS,
    Cycle,
    Period,
    PeriodPiece,
    Schedule,
    boundary_after,
    boundary_on_or_before,
    next_period,
    period_containing,
    periods,
)

PROPERTY = settings(max_examples=300, deadline=None)


def d(text: str) -> date:
    return date.fromisoformat(text)


def chain(schedule: Schedule, first: date, count: int) -> list[date]:
    """The first ``count`` boundaries from the boundary ``first``, walking with next_period."""
    period = period_containing(schedule, first)
    assert period.start == first
    found = [period.start]
    for _ in range(count - 1):
        period = next_period(schedule, period)
        found.append(period.start)
    return found


# -- examples ------------------------------------------------------------------------------------------------------


def test_monthly_anchor_31_follows_the_month_ends():
    schedule = Schedule(Cycle.MONTHLY, 31)
    pieces = periods(schedule, d("2024-01-31"), d("2024-05-31"))
    assert [(piece.period.start, piece.period.end) for piece in pieces] == [
        (d("2024-01-31"), d("2024-02-29")),
        (d("2024-02-29"), d("2024-03-31")),
        (d("2024-03-31"), d("2024-04-30")),
        (d("2024-04-30"), d("2024-05-31")),
    ]
    assert not any(piece.is_partial for piece in pieces)
    assert [piece.period.days for piece in pieces] == [29, 31, 30, 31]


def test_monthly_anchor_29_clips_to_february_28_in_a_common_year_only():
    schedule = Schedule(Cycle.MONTHLY, 29)
    assert chain(schedule, d("2023-01-29"), 3) == [d("2023-01-29"), d("2023-02-28"), d("2023-03-29")]
    assert chain(schedule, d("2024-01-29"), 3) == [d("2024-01-29"), d("2024-02-29"), d("2024-03-29")]


def test_annual_leap_day_anchor():
    schedule = Schedule(Cycle.ANNUAL, 29, anchor_month=2)
    assert chain(schedule, d("2024-02-29"), 5) == [
        d("2024-02-29"),
        d("2025-02-28"),
        d("2026-02-28"),
        d("2027-02-28"),
        d("2028-02-29"),
    ]


def test_quarterly_from_february_the_fifteenth():
    schedule = Schedule(Cycle.QUARTERLY, 15, anchor_month=2)
    assert chain(schedule, d("2025-02-15"), 5) == [
        d("2025-02-15"),
        d("2025-05-15"),
        d("2025-08-15"),
        d("2025-11-15"),
        d("2026-02-15"),
    ]
    # anchor_month only picks the phase: 11 (or 5 or 8) gives the same boundaries.
    assert chain(Schedule(Cycle.QUARTERLY, 15, anchor_month=11), d("2025-02-15"), 5) == chain(
        schedule, d("2025-02-15"), 5
    )


def test_quarterly_anchor_31_in_months_of_30_days():
    schedule = Schedule(Cycle.QUARTERLY, 31, anchor_month=3)
    assert chain(schedule, d("2025-03-31"), 5) == [
        d("2025-03-31"),
        d("2025-06-30"),
        d("2025-09-30"),
        d("2025-12-31"),
        d("2026-03-31"),
    ]


def test_weekly_monday_periods_run_monday_to_monday():
    schedule = Schedule(Cycle.WEEKLY, 1)
    wednesday = d("2025-06-04")
    assert wednesday.isoweekday() == 3
    period = period_containing(schedule, wednesday)
    assert period == Period(d("2025-06-02"), d("2025-06-09"))
    assert period.start.isoweekday() == 1
    assert next_period(schedule, period) == Period(d("2025-06-09"), d("2025-06-16"))


def test_weekly_sunday_anchor():
    schedule = Schedule(Cycle.WEEKLY, 7)
    assert boundary_on_or_before(schedule, d("2025-06-08")) == d("2025-06-08")  # a Sunday
    assert boundary_on_or_before(schedule, d("2025-06-07")) == d("2025-06-01")
    assert boundary_after(schedule, d("2025-06-08")) == d("2025-06-15")


def test_a_boundary_is_its_own_on_or_before_and_not_its_own_after():
    schedule = Schedule(Cycle.MONTHLY, 15)
    assert boundary_on_or_before(schedule, d("2025-03-15")) == d("2025-03-15")
    assert boundary_after(schedule, d("2025-03-15")) == d("2025-04-15")
    assert boundary_on_or_before(schedule, d("2025-03-14")) == d("2025-02-15")
    assert boundary_after(schedule, d("2025-03-14")) == d("2025-03-15")


def test_boundaries_across_the_turn_of_the_year():
    schedule = Schedule(Cycle.MONTHLY, 20)
    assert period_containing(schedule, d("2025-01-05")) == Period(d("2024-12-20"), d("2025-01-20"))
    annual = Schedule(Cycle.ANNUAL, 1, anchor_month=7)
    assert period_containing(annual, d("2025-03-01")) == Period(d("2024-07-01"), d("2025-07-01"))
    assert period_containing(annual, d("2025-07-01")) == Period(d("2025-07-01"), d("2026-07-01"))


def test_a_contract_starting_and_ending_mid_period_gets_short_first_and_last_pieces():
    schedule = Schedule(Cycle.MONTHLY, 1)
    pieces = periods(schedule, d("2025-01-20"), d("2025-04-10"))
    assert pieces == [
        PeriodPiece(Period(d("2025-01-20"), d("2025-02-01")), Period(d("2025-01-01"), d("2025-02-01"))),
        PeriodPiece(Period(d("2025-02-01"), d("2025-03-01")), Period(d("2025-02-01"), d("2025-03-01"))),
        PeriodPiece(Period(d("2025-03-01"), d("2025-04-01")), Period(d("2025-03-01"), d("2025-04-01"))),
        PeriodPiece(Period(d("2025-04-01"), d("2025-04-10")), Period(d("2025-04-01"), d("2025-05-01"))),
    ]
    assert [piece.is_partial for piece in pieces] == [True, False, False, True]
    assert pieces[0].period.days == 12 and pieces[0].cycle_period.days == 31


def test_a_contract_inside_one_period_is_one_piece_cut_at_both_ends():
    schedule = Schedule(Cycle.QUARTERLY, 1)
    (piece,) = periods(schedule, d("2025-02-10"), d("2025-03-05"))
    assert piece.period == Period(d("2025-02-10"), d("2025-03-05"))
    assert piece.cycle_period == Period(d("2025-01-01"), d("2025-04-01"))
    assert piece.is_partial


def test_an_empty_range_has_no_pieces():
    assert periods(Schedule(Cycle.MONTHLY, 1), d("2025-02-10"), d("2025-02-10")) == []


def test_next_period_after_a_piece_cut_short_is_the_rest_of_its_cycle_period():
    schedule = Schedule(Cycle.MONTHLY, 1)
    assert next_period(schedule, Period(d("2025-04-01"), d("2025-04-10"))) == Period(d("2025-04-10"), d("2025-05-01"))


def test_anchored_at_puts_a_boundary_on_the_given_day():
    assert Schedule.anchored_at(Cycle.MONTHLY, d("2025-03-17")) == Schedule(Cycle.MONTHLY, 17, 3)
    assert Schedule.anchored_at(Cycle.WEEKLY, d("2025-06-04")) == Schedule(Cycle.WEEKLY, 3)
    for cycle in Cycle:
        schedule = Schedule.anchored_at(cycle, d("2024-02-29"))
        assert boundary_on_or_before(schedule, d("2024-02-29")) == d("2024-02-29")


def test_period_days_membership_and_text():
    period = Period(d("2025-02-01"), d("2025-03-01"))
    assert period.days == 28
    assert d("2025-02-01") in period
    assert d("2025-02-28") in period
    assert d("2025-03-01") not in period  # the end is the next period's start
    assert datetime(2025, 2, 10, 12) not in period  # noqa: DTZ001 - a naive datetime is refused, not compared
    assert str(period) == "2025-02-01..2025-03-01"


def test_cycle_values_and_months():
    assert [cycle.value for cycle in Cycle] == ["WEEKLY", "MONTHLY", "QUARTERLY", "ANNUAL"]
    assert dict(MONTHS) == {Cycle.MONTHLY: 1, Cycle.QUARTERLY: 3, Cycle.ANNUAL: 12}
    assert Schedule("MONTHLY", 1).cycle is Cycle.MONTHLY  # type: ignore[arg-type]  # a model field's value


# -- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cycle": Cycle.WEEKLY, "anchor_day": 0}, "anchor_day must be an ISO weekday"),
        ({"cycle": Cycle.WEEKLY, "anchor_day": 8}, "anchor_day must be an ISO weekday"),
        ({"cycle": Cycle.MONTHLY, "anchor_day": 0}, "anchor_day must be a day of the month"),
        ({"cycle": Cycle.MONTHLY, "anchor_day": 32}, "anchor_day must be a day of the month"),
        ({"cycle": Cycle.MONTHLY, "anchor_day": True}, "anchor_day"),
        ({"cycle": Cycle.MONTHLY, "anchor_day": 1.0}, "anchor_day"),
        ({"cycle": Cycle.ANNUAL, "anchor_day": 1, "anchor_month": 13}, "anchor_month must be a month"),
        ({"cycle": Cycle.QUARTERLY, "anchor_day": 1, "anchor_month": 0}, "anchor_month must be a month"),
        ({"cycle": "FORTNIGHTLY", "anchor_day": 1}, "cycle must be one of WEEKLY, MONTHLY, QUARTERLY, ANNUAL"),
    ],
)
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Schedule(**kwargs)


def test_bad_periods_are_refused():
    with pytest.raises(ValueError, match="a period must end after it starts"):
        Period(d("2025-02-01"), d("2025-02-01"))
    with pytest.raises(ValueError, match="a period must end after it starts"):
        Period(d("2025-02-02"), d("2025-02-01"))
    with pytest.raises(ValueError, match="start must be a date"):
        Period(datetime(2025, 2, 1), d("2025-03-01"))  # noqa: DTZ001
    with pytest.raises(ValueError, match="end must be a date"):
        Period(d("2025-02-01"), "2025-03-01")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must lie within cycle_period"):
        PeriodPiece(Period(d("2025-01-20"), d("2025-02-02")), Period(d("2025-01-01"), d("2025-02-01")))


def test_bad_arguments_to_the_functions_are_refused():
    schedule = Schedule(Cycle.MONTHLY, 1)
    with pytest.raises(ValueError, match="day must be a date"):
        boundary_on_or_before(schedule, datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="day must be a date"):
        boundary_after(schedule, "2025-01-01")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schedule must be a Schedule"):
        period_containing("MONTHLY", d("2025-01-01"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"until \(2025-01-01\) must not be before start \(2025-02-01\)"):
        periods(schedule, d("2025-02-01"), d("2025-01-01"))
    with pytest.raises(ValueError, match="period must be a Period"):
        next_period(schedule, d("2025-01-01"))  # type: ignore[arg-type]


def test_boundaries_beyond_the_supported_years_are_a_value_error():
    with pytest.raises(ValueError, match=r"outside the years 1\.\.9999"):
        boundary_after(Schedule(Cycle.ANNUAL, 1), date(9999, 6, 1))
    with pytest.raises(ValueError, match=r"outside the years 1\.\.9999"):
        boundary_on_or_before(Schedule(Cycle.WEEKLY, 7), date(1, 1, 1))  # a Monday


# -- properties ----------------------------------------------------------------------------------------------------

days = st.dates(min_value=date(1999, 1, 1), max_value=date(2101, 12, 31))


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    cycle = draw(st.sampled_from(Cycle))
    if cycle is Cycle.WEEKLY:
        return Schedule(cycle, draw(st.integers(1, 7)))
    return Schedule(cycle, draw(st.integers(1, 31)), draw(st.integers(1, 12)))


FULL_LENGTHS = {Cycle.WEEKLY: {7}, Cycle.MONTHLY: {28, 29, 30, 31}, Cycle.QUARTERLY: set(range(89, 93))}
FULL_LENGTHS[Cycle.ANNUAL] = {365, 366}


def is_boundary(schedule: Schedule, day: date) -> bool:
    """The definition, checked directly."""
    if schedule.cycle is Cycle.WEEKLY:
        return day.isoweekday() == schedule.anchor_day
    if (day.month - schedule.anchor_month) % MONTHS[schedule.cycle]:
        return False
    return day.day == min(schedule.anchor_day, monthrange(day.year, day.month)[1])


@PROPERTY
@given(schedules(), days)
def test_the_period_containing_a_day_contains_it_and_has_a_full_length(schedule, day):
    period = period_containing(schedule, day)
    assert period.start <= day < period.end
    assert day in period
    assert period.days in FULL_LENGTHS[schedule.cycle]
    assert is_boundary(schedule, period.start)
    assert is_boundary(schedule, period.end)


@PROPERTY
@given(schedules(), days)
def test_boundaries_bracket_the_day_with_no_boundary_in_between(schedule, day):
    before = boundary_on_or_before(schedule, day)
    after = boundary_after(schedule, day)
    assert before <= day < after
    assert boundary_after(schedule, before) == after
    assert boundary_after(schedule, boundary_on_or_before(schedule, day)) > day
    assert boundary_on_or_before(schedule, after) == after
    # No boundary strictly between the two (checked day by day against the definition).
    assert not any(is_boundary(schedule, before + timedelta(days=n)) for n in range(1, (after - before).days))


@PROPERTY
@given(schedules(), days, st.integers(1, 12))
def test_consecutive_periods_are_contiguous(schedule, day, count):
    period = period_containing(schedule, day)
    for _ in range(count):
        following = next_period(schedule, period)
        assert following.start == period.end
        assert following.start < following.end
        assert following.days in FULL_LENGTHS[schedule.cycle]
        assert period_containing(schedule, following.start) == following
        period = following


@PROPERTY
@given(schedules(), days, st.integers(0, 1200))
def test_periods_cover_exactly_the_contract_days(schedule, start, length):
    until = start + timedelta(days=length)
    pieces = periods(schedule, start, until)
    if not length:
        assert pieces == []
        return
    assert pieces[0].period.start == start
    assert pieces[-1].period.end == until
    for piece, following in pairwise(pieces):
        assert piece.period.end == following.period.start  # no gap, no overlap
        assert following.cycle_period == next_period(schedule, piece.cycle_period)
    assert sum(piece.period.days for piece in pieces) == length
    for piece in pieces:
        assert piece.period.start < piece.period.end
        assert piece.cycle_period.start <= piece.period.start and piece.period.end <= piece.cycle_period.end
        assert piece.cycle_period == period_containing(schedule, piece.period.start)
        assert piece.is_partial == (piece.period != piece.cycle_period)
    # Only the first and last pieces can be partial.
    assert not any(piece.is_partial for piece in pieces[1:-1])
