"""SLA business time and clocks (pure: no database).

Expected instants are written out by hand, in local time with the UTC instant alongside where DST makes it matter.
The property tests check the arithmetic against a deliberately naive reference that walks minute by minute.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.sla import (
    DEFAULT_POLICIES,
    EVERY_DAY,
    PRIORITY_WEIGHTS,
    WEEKDAYS,
    Calendar,
    ClockState,
    Pause,
    Priority,
    Target,
    Tier,
    add_business_time,
    business_time_between,
    calendar_for,
    clock_due,
    clock_elapsed,
    clock_evaluate,
    is_business_time,
    next_business_start,
    raise_priority,
)

SYDNEY = ZoneInfo("Australia/Sydney")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)
H = timedelta(hours=1)
US = timedelta(microseconds=1)

SYDNEY_HOURS = Calendar.business("Australia/Sydney")  # Monday to Friday, 08:00-18:00
NEW_YORK_HOURS = Calendar.business("America/New_York", start=time(9), end=time(17))


def at(
    zone: tzinfo,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone, fold=fold)


def syd(*args: int, fold: int = 0) -> datetime:
    return at(SYDNEY, *args, fold=fold)


def nyc(*args: int) -> datetime:
    return at(NEW_YORK, *args)


def utc(*args: int) -> datetime:
    return at(UTC, *args)


def same_instant(a: datetime, b: datetime) -> bool:
    # Aware datetimes sharing a tzinfo compare by wall clock (fold ignored); compare the UTC instants instead.
    return a.astimezone(UTC) == b.astimezone(UTC)


# -- business time: examples -------------------------------------------------------------------------------------------


def test_friday_afternoon_rolls_over_the_weekend_to_monday_morning():
    start = syd(2025, 3, 14, 17)
    assert start.strftime("%A") == "Friday"
    due = add_business_time(SYDNEY_HOURS, start, 2 * H)
    assert same_instant(due, syd(2025, 3, 17, 9))
    assert due.tzinfo is SYDNEY  # results come back in the start's zone


def test_a_utc_start_gets_a_utc_result():
    due = add_business_time(SYDNEY_HOURS, utc(2025, 3, 14, 6), 2 * H)  # Friday 17:00 AEDT
    assert due == utc(2025, 3, 16, 22)  # Monday 09:00 AEDT
    assert due.tzinfo is UTC


def test_sydney_april_dst_end_keeps_the_wall_clock_hours():
    # Clocks go back on Sunday 6 April 2025 (03:00 AEDT -> 02:00 AEST).
    start = syd(2025, 4, 4, 17)
    due = add_business_time(SYDNEY_HOURS, start, 2 * H)
    assert same_instant(due, syd(2025, 4, 7, 9))
    assert due == utc(2025, 4, 6, 23)
    assert due.astimezone(UTC) - start.astimezone(UTC) == 65 * H  # real time: the weekend had an extra hour
    assert business_time_between(SYDNEY_HOURS, start, due) == 2 * H


def test_sydney_october_dst_start_and_the_labour_day_holiday():
    # Clocks go forward on Sunday 5 October 2025 (02:00 AEST -> 03:00 AEDT); Monday 6 October is Labour Day in NSW.
    start = syd(2025, 10, 3, 17)
    assert add_business_time(SYDNEY_HOURS, start, 2 * H) == utc(2025, 10, 5, 22)  # Monday 09:00 AEDT
    with_holiday = Calendar.business("Australia/Sydney", holidays={date(2025, 10, 6)})
    due = add_business_time(with_holiday, start, 2 * H)
    assert same_instant(due, syd(2025, 10, 7, 9))  # Tuesday 09:00
    assert business_time_between(with_holiday, syd(2025, 10, 6, 0), syd(2025, 10, 7, 0)) == timedelta(0)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (nyc(2025, 3, 7, 16), utc(2025, 3, 10, 14)),  # Fri 16:00 EST -> Mon 10:00 EDT, over the March change
        (nyc(2025, 10, 31, 16), utc(2025, 11, 3, 15)),  # Fri 16:00 EDT -> Mon 10:00 EST, over the November change
    ],
)
def test_new_york_dst_changes(start, expected):
    assert add_business_time(NEW_YORK_HOURS, start, 2 * H) == expected


def test_a_fortnight_across_a_dst_change_is_still_eighty_hours():
    assert business_time_between(NEW_YORK_HOURS, nyc(2025, 3, 3), nyc(2025, 3, 17)) == 80 * H
    assert business_time_between(NEW_YORK_HOURS, nyc(2025, 10, 27), nyc(2025, 11, 10)) == 80 * H


def test_twenty_four_seven_counts_real_time_across_dst():
    always = Calendar.always("Australia/Sydney")
    due = add_business_time(always, syd(2025, 4, 5, 23), 6 * H)
    assert due == utc(2025, 4, 5, 18)
    assert same_instant(due, syd(2025, 4, 6, 4))  # the wall clock moved 5 hours
    spring = add_business_time(Calendar.always("America/New_York"), nyc(2025, 3, 8, 23), 6 * H)
    assert same_instant(spring, nyc(2025, 3, 9, 6))  # the wall clock moved 7 hours


def test_enterprise_p1_is_due_fifteen_minutes_later_even_at_three_on_a_sunday():
    target = DEFAULT_POLICIES[Tier.ENTERPRISE][Priority.P1]
    calendar = calendar_for(target, SYDNEY_HOURS)
    start = syd(2025, 6, 1, 2, 45)
    assert start.strftime("%A") == "Sunday"
    due = add_business_time(calendar, start, target.first_response)
    assert same_instant(due, syd(2025, 6, 1, 3))
    # On business hours the same ticket would wait for Monday.
    assert same_instant(add_business_time(SYDNEY_HOURS, start, target.first_response), syd(2025, 6, 2, 8, 15))


def test_the_repeated_hour_counts_twice_and_the_skipped_hour_not_at_all():
    small_hours = Calendar("Australia/Sydney", tuple((day, 0, 360) for day in EVERY_DAY))
    assert business_time_between(small_hours, syd(2025, 4, 6, 0), syd(2025, 4, 6, 6)) == 7 * H
    assert business_time_between(small_hours, syd(2025, 10, 5, 0), syd(2025, 10, 5, 6)) == 5 * H
    assert business_time_between(small_hours, syd(2025, 10, 12, 0), syd(2025, 10, 12, 6)) == 6 * H


def test_a_window_inside_the_skipped_hour_waits_a_week():
    two_to_three_on_sunday = Calendar("Australia/Sydney", ((6, 120, 180),))
    due = add_business_time(two_to_three_on_sunday, syd(2025, 10, 4, 12), H)
    assert same_instant(due, syd(2025, 10, 12, 3))  # 5 October had no 02:00-03:00


def test_a_window_inside_the_repeated_hour_is_worked_twice():
    two_to_three_on_sunday = Calendar("Australia/Sydney", ((6, 120, 180),))
    start = syd(2025, 4, 6, 0)
    assert business_time_between(two_to_three_on_sunday, start, syd(2025, 4, 6, 4)) == 2 * H
    due = add_business_time(two_to_three_on_sunday, start, 90 * MINUTE)
    assert same_instant(due, utc(2025, 4, 5, 16, 30))  # 02:30 the second time round (AEST)
    assert (due.hour, due.minute, due.fold) == (2, 30, 1)
    # 02:00 AEDT to 03:00 AEDT, which is 02:00 AEST, to 03:00 AEST: two hours in a row.
    assert not is_business_time(two_to_three_on_sunday, utc(2025, 4, 5, 15) - US)
    assert is_business_time(two_to_three_on_sunday, syd(2025, 4, 6, 2, 15))
    assert is_business_time(two_to_three_on_sunday, syd(2025, 4, 6, 2, 15, fold=1))
    assert is_business_time(two_to_three_on_sunday, utc(2025, 4, 5, 17) - US)
    assert not is_business_time(two_to_three_on_sunday, utc(2025, 4, 5, 17))


NIGHTS = Calendar("UTC", tuple((day, 1320, 1440) for day in EVERY_DAY) + tuple((day, 0, 360) for day in EVERY_DAY))


def test_midnight_spanning_windows():
    assert add_business_time(NIGHTS, utc(2025, 5, 5, 23), 2 * H) == utc(2025, 5, 6, 1)
    assert add_business_time(NIGHTS, utc(2025, 5, 5, 5), 2 * H) == utc(2025, 5, 5, 23)
    assert next_business_start(NIGHTS, utc(2025, 5, 5, 6)) == utc(2025, 5, 5, 22)
    assert business_time_between(NIGHTS, utc(2025, 5, 5), utc(2025, 5, 12)) == 7 * 8 * H


def test_an_overnight_business_calendar_is_split_at_midnight():
    assert Calendar.business("UTC", start=time(22), end=time(6), days=EVERY_DAY) == NIGHTS
    weeknights = Calendar.business("UTC", start=time(22), end=time(6), days=WEEKDAYS)
    assert (0, 0, 360) not in weeknights.hours  # Sunday night is off, so Monday's small hours are too
    assert (5, 0, 360) in weeknights.hours  # Friday night runs into Saturday morning
    saturday = utc(2025, 5, 10, 5)
    assert add_business_time(weeknights, saturday, 2 * H) == utc(2025, 5, 12, 23)  # Sat 05-06, then Mon 22-23
    assert not is_business_time(weeknights, utc(2025, 5, 12, 3))


def test_a_holiday_stops_the_tail_of_an_overnight_shift():
    calendar = Calendar.business("UTC", start=time(22), end=time(6), days=EVERY_DAY, holidays={date(2025, 5, 6)})
    assert business_time_between(calendar, utc(2025, 5, 5, 22), utc(2025, 5, 6, 6)) == 2 * H
    assert business_time_between(calendar, utc(2025, 5, 6), utc(2025, 5, 7)) == timedelta(0)


def test_working_intervals_are_half_open():
    monday = (2025, 3, 17)
    assert is_business_time(SYDNEY_HOURS, syd(*monday, 8))
    assert is_business_time(SYDNEY_HOURS, syd(*monday, 18) - US)
    assert not is_business_time(SYDNEY_HOURS, syd(*monday, 18))
    assert not is_business_time(SYDNEY_HOURS, syd(*monday, 8) - US)
    assert not is_business_time(SYDNEY_HOURS, syd(2025, 3, 15, 12))  # Saturday


def test_next_business_start():
    inside = syd(2025, 3, 17, 9, 30)
    assert next_business_start(SYDNEY_HOURS, inside) is inside
    assert same_instant(next_business_start(SYDNEY_HOURS, syd(2025, 3, 14, 18)), syd(2025, 3, 17, 8))
    assert same_instant(next_business_start(SYDNEY_HOURS, syd(2025, 3, 15, 12)), syd(2025, 3, 17, 8))
    easter = Calendar.business("Australia/Sydney", holidays={date(2025, 4, 18), date(2025, 4, 21)})
    found = next_business_start(easter, utc(2025, 4, 17, 8))  # Thursday 18:00 AEST
    assert found == utc(2025, 4, 21, 22)  # Tuesday 08:00 AEST
    assert found.tzinfo is UTC


def test_zero_duration_returns_start_unchanged_even_outside_business_hours():
    saturday = syd(2025, 3, 15, 12)
    assert add_business_time(SYDNEY_HOURS, saturday, timedelta(0)) is saturday


def test_a_duration_ending_with_a_working_interval_ends_there():
    assert same_instant(add_business_time(SYDNEY_HOURS, syd(2025, 3, 14, 17), H), syd(2025, 3, 14, 18))


def test_business_time_between_is_zero_unless_end_is_after_start():
    monday = syd(2025, 3, 17, 9)
    assert business_time_between(SYDNEY_HOURS, monday, monday) == timedelta(0)
    assert business_time_between(SYDNEY_HOURS, monday + H, monday) == timedelta(0)
    assert business_time_between(SYDNEY_HOURS, monday, monday + H) == H
    assert business_time_between(SYDNEY_HOURS, syd(2025, 3, 17), syd(2025, 3, 24)) == 50 * H


def test_long_targets_skip_whole_days():
    # 1,000 business hours of 10-hour weekdays are exactly 20 weeks, across the April DST change.
    due = add_business_time(SYDNEY_HOURS, syd(2025, 3, 3, 8), 1000 * H)
    assert same_instant(due, syd(2025, 7, 18, 18))
    always = Calendar.always("Europe/London")
    assert add_business_time(always, utc(2025, 1, 1), 100_000 * H) == utc(2025, 1, 1) + 100_000 * H


def test_running_off_the_end_of_the_calendar_is_an_error_not_a_hang():
    mondays = Calendar("UTC", ((0, 540, 600),))
    with pytest.raises(ValueError, match="last representable date"):
        add_business_time(mondays, utc(9999, 12, 27, 9), 2 * H)  # the last Monday has only one working hour
    with pytest.raises(ValueError, match="last representable date"):
        next_business_start(mondays, utc(9999, 12, 28))


def test_microseconds_are_kept():
    start = syd(2025, 3, 17, 9, 0, 0, 123)
    assert add_business_time(SYDNEY_HOURS, start, 2 * H + 5 * US) == syd(2025, 3, 17, 11, 0, 0, 128)


NAIVE = datetime(2025, 3, 17, 9)  # noqa: DTZ001


@pytest.mark.parametrize(
    "call",
    [
        lambda: add_business_time(SYDNEY_HOURS, NAIVE, H),
        lambda: add_business_time(SYDNEY_HOURS, NAIVE, timedelta(0)),
        lambda: business_time_between(SYDNEY_HOURS, syd(2025, 3, 17), NAIVE),
        lambda: is_business_time(SYDNEY_HOURS, NAIVE),
        lambda: next_business_start(SYDNEY_HOURS, NAIVE),
        lambda: add_business_time(SYDNEY_HOURS, syd(2025, 3, 17), -MINUTE),
        lambda: clock_due(SYDNEY_HOURS, syd(2025, 3, 17), -MINUTE),
        lambda: clock_evaluate(SYDNEY_HOURS, syd(2025, 3, 17), H, [], NAIVE, stopped_at=syd(2025, 3, 17, 9)),
        lambda: clock_elapsed(SYDNEY_HOURS, syd(2025, 3, 17), [(NAIVE, None)], syd(2025, 3, 18)),
    ],
)
def test_naive_datetimes_and_negative_durations_are_refused(call):
    with pytest.raises(ValueError, match=r"timezone-aware|negative"):
        call()


# -- calendars ---------------------------------------------------------------------------------------------------------


def test_standard_calendars():
    assert SYDNEY_HOURS.hours == tuple((day, 480, 1080) for day in range(5))
    assert SYDNEY_HOURS.holidays == frozenset()
    assert SYDNEY_HOURS.zone is SYDNEY
    assert Calendar.always("UTC").hours == tuple((day, 0, 1440) for day in range(7))
    assert Calendar.business("UTC", start=time(0), end=time(0), days=[6]).hours == ((6, 0, 1440),)


def test_calendars_are_normalised_values():
    a = Calendar("UTC", ((1, 600, 700), (0, 60, 120)), frozenset({date(2025, 1, 1)}))
    b = Calendar("UTC", ((0, 60, 120), (1, 600, 700)), {date(2025, 1, 1)})  # type: ignore[arg-type]
    assert a == b
    assert hash(a) == hash(b)
    assert a.hours == ((0, 60, 120), (1, 600, 700))


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ((), "at least one working interval"),
        (((7, 0, 60),), "weekday must be 0"),
        (((-1, 0, 60),), "weekday must be 0"),
        (((0, 60, 60),), "start < end"),
        (((0, 120, 60),), "start < end"),
        (((0, -10, 60),), "start < end"),
        (((0, 0, 1441),), "start < end"),
        (((0, 480, 720), (0, 700, 1080)), r"overlap on Monday: 08:00-12:00 and 11:40-18:00"),
        (((0, 0, 600), (0, 100, 200), (0, 300, 400)), "overlap on Monday"),
        (((0, 8.5, 60),), "whole numbers"),
        (((0, True, 60),), "whole numbers"),
        (((0, 60),), "must be"),
        ("Mon 9-5", "hours must be a tuple"),
    ],
)
def test_bad_hours_are_refused(hours, message):
    with pytest.raises(ValueError, match=message):
        Calendar("UTC", hours)


def test_touching_intervals_are_fine():
    assert Calendar("UTC", ((0, 480, 720), (0, 720, 1080))).hours == ((0, 480, 720), (0, 720, 1080))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Calendar("Mars/Olympus_Mons", ((0, 0, 60),)), "unknown time zone"),
        (lambda: Calendar("", ((0, 0, 60),)), "IANA"),
        (lambda: Calendar("UTC", ((0, 0, 60),), frozenset({datetime(2025, 1, 1, tzinfo=UTC)})), "give dates"),
        (lambda: Calendar.business("UTC", start=time(9), end=time(9)), "must differ"),
        (lambda: Calendar.business("UTC", start=time(9, 0, 30)), "whole minute"),
        (lambda: Calendar.business("UTC", start=time(9, tzinfo=UTC)), "without tzinfo"),
        (lambda: Calendar.business("UTC", days=[0, 7]), "days must be weekdays"),
    ],
)
def test_bad_calendars_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# -- SLA clocks --------------------------------------------------------------------------------------------------------

MONDAY_9 = syd(2025, 3, 17, 9)  # Monday, inside business hours


def test_a_clock_without_pauses_is_due_after_the_target():
    assert clock_due(SYDNEY_HOURS, MONDAY_9, 4 * H, []) == syd(2025, 3, 17, 13)
    assert clock_due(SYDNEY_HOURS, MONDAY_9, timedelta(0)) == MONDAY_9


def test_a_pause_extends_the_due_time_by_exactly_the_business_time_paused():
    # PENDING_CUSTOMER from 10:00 to 11:30: due 13:00 becomes 14:30.
    pauses: list[Pause] = [(syd(2025, 3, 17, 10), syd(2025, 3, 17, 11, 30))]
    assert clock_due(SYDNEY_HOURS, MONDAY_9, 4 * H, pauses) == syd(2025, 3, 17, 14, 30)
    assert clock_elapsed(SYDNEY_HOURS, MONDAY_9, pauses, syd(2025, 3, 17, 12)) == 90 * MINUTE


def test_an_overnight_pause_extends_by_its_business_hours_only():
    paused, resumed = syd(2025, 3, 17, 17), syd(2025, 3, 18, 9)  # Monday 17:00 to Tuesday 09:00
    assert business_time_between(SYDNEY_HOURS, paused, resumed) == 2 * H
    assert clock_due(SYDNEY_HOURS, MONDAY_9, 10 * H, []) == syd(2025, 3, 18, 9)
    assert clock_due(SYDNEY_HOURS, MONDAY_9, 10 * H, [(paused, resumed)]) == syd(2025, 3, 18, 11)


def test_a_pause_outside_business_hours_extends_nothing():
    pauses: list[Pause] = [(syd(2025, 3, 17, 18, 30), syd(2025, 3, 18, 7, 30))]
    assert clock_due(SYDNEY_HOURS, MONDAY_9, 10 * H, pauses) == syd(2025, 3, 18, 9)


def test_overlapping_pauses_count_once_and_are_clipped_to_the_clock():
    overlapping: list[Pause] = [
        (syd(2025, 3, 17, 10, 30), syd(2025, 3, 17, 11, 30)),
        (syd(2025, 3, 17, 10), syd(2025, 3, 17, 11)),
        (syd(2025, 3, 17, 10, 15), syd(2025, 3, 17, 10, 45)),
    ]
    assert clock_due(SYDNEY_HOURS, MONDAY_9, 4 * H, overlapping) == syd(2025, 3, 17, 14, 30)
    before_start: list[Pause] = [(syd(2025, 3, 17, 8), syd(2025, 3, 17, 9, 30)), (syd(2025, 3, 17, 7), MONDAY_9)]
    assert clock_due(SYDNEY_HOURS, MONDAY_9, 4 * H, before_start) == syd(2025, 3, 17, 13, 30)


def test_a_pause_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match=r"pauses\[0\] ends before it starts"):
        clock_due(SYDNEY_HOURS, MONDAY_9, H, [(syd(2025, 3, 17, 11), syd(2025, 3, 17, 10))])


def test_an_open_pause_freezes_the_clock():
    pauses: list[Pause] = [(syd(2025, 3, 17, 10), None)]
    assert clock_due(SYDNEY_HOURS, MONDAY_9, 4 * H, pauses) is None
    for now in (syd(2025, 3, 17, 11), syd(2025, 3, 19, 16)):
        reading = clock_evaluate(SYDNEY_HOURS, MONDAY_9, 4 * H, pauses, now)
        assert reading.state == ClockState.PAUSED
        assert reading.due is None
        assert reading.elapsed == H
        assert reading.remaining == 3 * H


def test_a_pause_is_running_at_now_even_if_it_is_recorded_to_end_later():
    pauses: list[Pause] = [(syd(2025, 3, 17, 10), syd(2025, 3, 17, 15))]
    assert clock_evaluate(SYDNEY_HOURS, MONDAY_9, 4 * H, pauses, syd(2025, 3, 17, 12)).state == ClockState.PAUSED
    resumed = clock_evaluate(SYDNEY_HOURS, MONDAY_9, 4 * H, pauses, syd(2025, 3, 17, 16))
    assert (resumed.state, resumed.due, resumed.elapsed) == (ClockState.OK, syd(2025, 3, 17, 18), 2 * H)


def test_a_breach_before_the_pause_stays_breached():
    pauses: list[Pause] = [(syd(2025, 3, 17, 11), None)]
    assert clock_due(SYDNEY_HOURS, MONDAY_9, H, pauses) == syd(2025, 3, 17, 10)
    reading = clock_evaluate(SYDNEY_HOURS, MONDAY_9, H, pauses, syd(2025, 3, 17, 15))
    assert reading.state == ClockState.BREACHED
    assert reading.due == syd(2025, 3, 17, 10)
    assert reading.elapsed == 2 * H
    assert reading.remaining == -H


def test_a_pause_starting_at_the_breach_instant_is_too_late():
    pauses: list[Pause] = [(syd(2025, 3, 17, 10), None)]
    reading = clock_evaluate(SYDNEY_HOURS, MONDAY_9, H, pauses, syd(2025, 3, 17, 12))
    assert (reading.state, reading.due, reading.remaining) == (ClockState.BREACHED, syd(2025, 3, 17, 10), timedelta(0))


@pytest.mark.parametrize(
    ("now", "state", "remaining"),
    [
        (syd(2025, 3, 17, 9), ClockState.OK, 2 * H),
        (syd(2025, 3, 17, 10, 36) - US, ClockState.OK, 24 * MINUTE + US),
        (syd(2025, 3, 17, 10, 36), ClockState.AT_RISK, 24 * MINUTE),  # exactly 80 % of 2 h
        (syd(2025, 3, 17, 11) - US, ClockState.AT_RISK, US),
        (syd(2025, 3, 17, 11), ClockState.BREACHED, timedelta(0)),
        (syd(2025, 3, 17, 20), ClockState.BREACHED, -7 * H),  # 18:00-20:00 is not business time
        (syd(2025, 3, 17, 8), ClockState.OK, 2 * H),  # before the clock starts
    ],
)
def test_clock_states(now, state, remaining):
    reading = clock_evaluate(SYDNEY_HOURS, MONDAY_9, 2 * H, [], now)
    assert reading.state == state
    assert reading.remaining == remaining
    assert reading.elapsed == 2 * H - remaining
    assert reading.due == syd(2025, 3, 17, 11)


def test_the_at_risk_ratio_is_configurable_and_checked():
    now = syd(2025, 3, 17, 10)
    assert clock_evaluate(SYDNEY_HOURS, MONDAY_9, 2 * H, [], now, at_risk_ratio=0.5).state == ClockState.AT_RISK
    assert clock_evaluate(SYDNEY_HOURS, MONDAY_9, 2 * H, [], now, at_risk_ratio=0.51).state == ClockState.OK
    for bad in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="at_risk_ratio"):
            clock_evaluate(SYDNEY_HOURS, MONDAY_9, 2 * H, [], now, at_risk_ratio=bad)


@pytest.mark.parametrize(
    ("stopped_at", "state"),
    [
        (syd(2025, 3, 17, 10), ClockState.MET),
        (syd(2025, 3, 17, 11), ClockState.MET),  # on the due instant
        (syd(2025, 3, 17, 11) + US, ClockState.BREACHED),
        (syd(2025, 3, 17, 19), ClockState.BREACHED),  # after due, though no more business time passed
    ],
)
def test_a_stopped_clock_is_met_or_breached(stopped_at, state):
    reading = clock_evaluate(SYDNEY_HOURS, MONDAY_9, 2 * H, [], syd(2025, 3, 20, 12), stopped_at=stopped_at)
    assert reading.state == state
    assert reading.due == syd(2025, 3, 17, 11)
    assert reading.elapsed == business_time_between(SYDNEY_HOURS, MONDAY_9, stopped_at)


def test_a_clock_stopped_during_a_pause():
    pauses: list[Pause] = [(syd(2025, 3, 17, 10), None)]
    met = clock_evaluate(SYDNEY_HOURS, MONDAY_9, 2 * H, pauses, syd(2025, 3, 18, 9), stopped_at=syd(2025, 3, 17, 12))
    assert (met.state, met.elapsed, met.remaining) == (ClockState.MET, H, H)
    assert met.due == syd(2025, 3, 17, 13)  # the pause ended when the clock stopped
    late: list[Pause] = [(syd(2025, 3, 17, 12), None)]
    breached = clock_evaluate(SYDNEY_HOURS, MONDAY_9, 2 * H, late, syd(2025, 3, 18), stopped_at=syd(2025, 3, 17, 13))
    assert (breached.state, breached.due) == (ClockState.BREACHED, syd(2025, 3, 17, 11))


def test_pauses_after_the_clock_stopped_do_not_count():
    pauses: list[Pause] = [(syd(2025, 3, 17, 12), None)]
    reading = clock_evaluate(SYDNEY_HOURS, MONDAY_9, 2 * H, pauses, syd(2025, 3, 18), stopped_at=syd(2025, 3, 17, 10))
    assert (reading.state, reading.due, reading.elapsed) == (ClockState.MET, syd(2025, 3, 17, 11), H)


# -- policies ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "priority", "first_response", "resolution", "always_on"),
    [
        ("CORE_PLUS", "P1", 2 * H, 8 * H, False),
        ("CORE_PLUS", "P2", 4 * H, 16 * H, False),
        ("CORE_PLUS", "P3", 8 * H, 40 * H, False),
        ("CORE_PLUS", "P4", 16 * H, 80 * H, False),
        ("PREMIUM", "P1", 1 * H, 4 * H, False),
        ("PREMIUM", "P2", 2 * H, 8 * H, False),
        ("PREMIUM", "P3", 4 * H, 24 * H, False),
        ("PREMIUM", "P4", 8 * H, 40 * H, False),
        ("ENTERPRISE", "P1", 15 * MINUTE, 4 * H, True),
        ("ENTERPRISE", "P2", 1 * H, 8 * H, False),
        ("ENTERPRISE", "P3", 4 * H, 16 * H, False),
        ("ENTERPRISE", "P4", 8 * H, 40 * H, False),
    ],
)
def test_default_policies(tier, priority, first_response, resolution, always_on):
    assert DEFAULT_POLICIES[tier][priority] == Target(first_response, resolution, always_on)


def test_the_policy_table_has_exactly_three_tiers_of_four_priorities():
    assert set(DEFAULT_POLICIES) == {Tier.CORE_PLUS, Tier.PREMIUM, Tier.ENTERPRISE}
    assert all(set(row) == set(Priority) for row in DEFAULT_POLICIES.values())
    with pytest.raises(TypeError):
        DEFAULT_POLICIES["PREMIUM"]["P1"] = Target(H, H)  # type: ignore[index]


def test_calendar_for_a_target():
    assert calendar_for(DEFAULT_POLICIES["PREMIUM"]["P1"], SYDNEY_HOURS) is SYDNEY_HOURS
    assert calendar_for(DEFAULT_POLICIES["ENTERPRISE"]["P1"], SYDNEY_HOURS) == Calendar.always("Australia/Sydney")


@pytest.mark.parametrize(("priority", "raised"), [("P4", "P3"), ("P3", "P2"), ("P2", "P1"), ("P1", "P1")])
def test_raise_priority(priority, raised):
    assert raise_priority(priority) == raised
    assert raise_priority(Priority(priority)) is Priority(raised)


def test_raise_priority_refuses_unknown_priorities():
    with pytest.raises(ValueError, match="P5"):
        raise_priority("P5")


def test_priority_weights():
    assert dict(PRIORITY_WEIGHTS) == {"P1": Decimal(4), "P2": Decimal(2), "P3": Decimal(1), "P4": Decimal("0.5")}
    assert all(isinstance(weight, Decimal) for weight in PRIORITY_WEIGHTS.values())


# -- properties against a minute-by-minute reference -------------------------------------------------------------------

ZONES = ("Australia/Sydney", "America/New_York", "Europe/London", "UTC")
FIRST = datetime(2025, 1, 1, tzinfo=UTC)
LAST = datetime(2027, 12, 31, tzinfo=UTC)
# Some DST changes of 2025-2027, as UTC instants (checked below); UTC gets year boundaries instead.
CHANGES = {
    "Australia/Sydney": [utc(2025, 4, 5, 16), utc(2025, 10, 4, 16), utc(2026, 4, 4, 16), utc(2026, 10, 3, 16)],
    "America/New_York": [utc(2025, 3, 9, 7), utc(2025, 11, 2, 6), utc(2026, 3, 8, 7), utc(2027, 11, 7, 6)],
    "Europe/London": [utc(2025, 3, 30, 1), utc(2025, 10, 26, 1), utc(2026, 3, 29, 1), utc(2027, 10, 31, 1)],
    "UTC": [utc(2025, 1, 1), utc(2026, 1, 1), utc(2027, 1, 1), utc(2027, 12, 31)],
}
PROPERTY = settings(max_examples=150, deadline=None)


@functools.lru_cache(maxsize=8)
def working_minutes(calendar: Calendar) -> frozenset[tuple[int, int]]:
    return frozenset((day, minute) for day, begin, end in calendar.hours for minute in range(begin, end))


def reference_is_working(calendar: Calendar, moment: datetime) -> bool:
    local = moment.astimezone(calendar.zone)
    minute = local.hour * 60 + local.minute
    return local.date() not in calendar.holidays and (local.weekday(), minute) in working_minutes(calendar)


def reference_add(calendar: Calendar, start: datetime, duration: timedelta) -> datetime:
    moment, minutes = start.astimezone(UTC), duration // MINUTE
    while minutes:
        if reference_is_working(calendar, moment):
            minutes -= 1
        moment += MINUTE
    return moment


def reference_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    moment, end, total = start.astimezone(UTC), end.astimezone(UTC), timedelta(0)
    while moment < end:
        if reference_is_working(calendar, moment):
            total += MINUTE
        moment += MINUTE
    return total


def reference_next_start(calendar: Calendar, at: datetime) -> datetime:
    moment = at.astimezone(UTC).replace(second=0, microsecond=0)
    while not reference_is_working(calendar, moment):
        moment += MINUTE
    return moment


# Window edges on the half hour (where DST changes happen) most of the time, on any minute sometimes.
edges = st.one_of(st.integers(0, 48).map(lambda half_hours: half_hours * 30), st.integers(0, 1440))


def test_the_dst_changes_used_below_are_real():
    for zone, changes in CHANGES.items():
        offsets = {
            (change - US).astimezone(ZoneInfo(zone)).utcoffset() != change.astimezone(ZoneInfo(zone)).utcoffset()
            for change in changes
        }
        assert offsets == ({False} if zone == "UTC" else {True})


@st.composite
def day_windows(draw: st.DrawFn, day: int) -> list[tuple[int, int, int]]:
    cuts = sorted(draw(st.lists(edges, max_size=4, unique=True)))
    return [(day, begin, end) for begin, end in zip(cuts[::2], cuts[1::2], strict=False)]


@st.composite
def instants(draw: st.DrawFn, zone: str) -> datetime:
    """A minute-aligned instant in 2025-2027, mostly within hours or days of one of the zone's DST changes."""
    change = draw(st.sampled_from(CHANGES[zone]))
    hours_away = change + draw(st.integers(-180, 180)) * MINUTE
    days_away = change + draw(st.integers(-3 * 1440, 3 * 1440)) * MINUTE
    anywhere = FIRST + draw(st.integers(0, (LAST - FIRST) // MINUTE)) * MINUTE
    return draw(st.sampled_from([hours_away, days_away, anywhere]))


@st.composite
def situations(draw: st.DrawFn) -> tuple[Calendar, datetime]:
    """A random calendar and an instant, with the calendar's holidays around that instant so that they matter."""
    zone = draw(st.sampled_from(ZONES))
    moment = draw(instants(zone))
    hours = [window for day in range(7) for window in draw(day_windows(day))]
    if not hours:
        hours = [(draw(st.integers(0, 6)), 540, 1020)]
    local_day = moment.astimezone(ZoneInfo(zone)).date()
    holidays = {local_day + timedelta(days=offset) for offset in draw(st.sets(st.integers(-1, 16), max_size=4))}
    return Calendar(zone, tuple(hours), frozenset(holidays)), moment


def weekly(calendar: Calendar) -> timedelta:
    return sum(((end - begin) * MINUTE for _, begin, end in calendar.hours), timedelta(0))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Calendar, datetime, timedelta]:
    """A calendar, a start (in UTC or the calendar's zone) and a whole-minute duration of up to 60 business hours
    (and at most two weeks' worth, so the reference walk stays short)."""
    calendar, start = draw(situations())
    limit = min(60 * H, 2 * weekly(calendar)) // MINUTE
    duration = draw(st.integers(0, limit)) * MINUTE
    return calendar, start.astimezone(draw(st.sampled_from([UTC, calendar.zone]))), duration


@PROPERTY
@given(scenarios())
def test_add_business_time_agrees_with_the_reference(scenario):
    calendar, start, duration = scenario
    due = add_business_time(calendar, start, duration)
    assert due.astimezone(UTC) == reference_add(calendar, start, duration)
    assert due.tzinfo is start.tzinfo


@PROPERTY
@given(scenarios())
def test_business_time_between_undoes_add_business_time(scenario):
    calendar, start, duration = scenario
    assert business_time_between(calendar, start, add_business_time(calendar, start, duration)) == duration


@PROPERTY
@given(st.data())
def test_business_time_between_agrees_with_the_reference(data):
    calendar, start = data.draw(situations())
    end = shift(start, data.draw(st.integers(-60, 10 * 1440)) * MINUTE)
    assert business_time_between(calendar, start, end) == reference_between(calendar, start, end)


@PROPERTY
@given(st.data())
def test_is_business_time_and_next_business_start_agree_with_the_reference(data):
    calendar, at = data.draw(situations())
    at = shift(at, data.draw(st.integers(0, 59_999_999)) * US)  # anywhere inside the minute
    assert is_business_time(calendar, at) == reference_is_working(calendar, at)
    found = next_business_start(calendar, at)
    expected = at if reference_is_working(calendar, at) else reference_next_start(calendar, at)
    assert found == expected


def shift(moment: datetime, delta: timedelta) -> datetime:
    """``moment`` moved by ``delta`` of real time, in its own zone (``+`` on a zoned datetime moves the wall clock)."""
    return (moment.astimezone(UTC) + delta).astimezone(moment.tzinfo)


def instant(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@PROPERTY
@given(st.data())
def test_adding_the_business_time_up_to_an_instant_stops_at_or_before_it(data):
    calendar, start = data.draw(situations())
    end = shift(start, data.draw(st.integers(0, 4 * 1440)) * MINUTE)
    due = add_business_time(calendar, start, business_time_between(calendar, start, end))
    assert instant(due) <= instant(end)
    assert business_time_between(calendar, due, end) == timedelta(0)
    assert due is start or is_business_time(calendar, shift(due, -US))  # stops where the work stopped, not later


@PROPERTY
@given(st.data())
def test_add_business_time_is_monotonic(data):
    calendar, start, duration = data.draw(scenarios())
    later_start = shift(start, data.draw(st.integers(0, 3 * 1440 * 60_000_000)) * US)
    longer = duration + data.draw(st.integers(0, 10 * 60 * 60_000_000)) * US
    due = instant(add_business_time(calendar, start, duration))
    assert due <= instant(add_business_time(calendar, start, longer))
    assert due <= instant(add_business_time(calendar, later_start, duration))


@PROPERTY
@given(st.data())
def test_business_time_adds_up_and_round_trips_at_any_microsecond(data):
    calendar, start, _ = data.draw(scenarios())
    start = shift(start, data.draw(st.integers(0, 59_999_999)) * US)
    middle = shift(start, data.draw(st.integers(0, 5 * 1440 * 60_000_000)) * US)
    end = shift(middle, data.draw(st.integers(0, 5 * 1440 * 60_000_000)) * US)
    between = business_time_between
    assert between(calendar, start, middle) + between(calendar, middle, end) == between(calendar, start, end)
    duration = data.draw(st.integers(0, 60 * 60 * 60_000_000)) * US
    due = add_business_time(calendar, start, duration)
    assert between(calendar, start, due) == duration
    assert duration == timedelta(0) or is_business_time(calendar, shift(due, -US))  # the last microsecond was worked


@PROPERTY
@given(st.data())
def test_a_clock_accrues_exactly_the_business_time_outside_its_pauses(data):
    calendar, start, target = data.draw(scenarios())
    pause_start = shift(start, data.draw(st.integers(0, 3 * 1440)) * MINUTE)
    pause_end = shift(pause_start, data.draw(st.integers(0, 3 * 1440)) * MINUTE)
    pauses: list[Pause] = [(pause_start, pause_end)]
    due = clock_due(calendar, start, target, pauses)
    assert due is not None
    assert clock_elapsed(calendar, start, pauses, due) == target
    assert target == timedelta(0) or clock_elapsed(calendar, start, pauses, shift(due, -US)) < target
    unpaused = add_business_time(calendar, start, target)
    if instant(unpaused) <= instant(pause_start):
        assert instant(due) == instant(unpaused)  # reached before the pause
    else:  # pushed back by exactly the business time paused
        assert business_time_between(calendar, start, due) == target + business_time_between(
            calendar, pause_start, pause_end
        )


@PROPERTY
@given(st.data())
def test_round_the_clock_calendars_count_elapsed_time_like_any_other_calendar(data):
    # Calendar.always takes a shortcut (business time is elapsed time); a calendar with the same cover in two halves
    # a day goes the long way through the week. They must agree, across DST changes and in every zone.
    zone = data.draw(st.sampled_from(ZONES))
    start = data.draw(instants(zone))
    halves = Calendar(zone, tuple(half for day in EVERY_DAY for half in ((day, 0, 720), (day, 720, 1440))))
    always = Calendar.always(zone)
    duration = data.draw(st.integers(0, 30 * 1440)) * MINUTE
    assert add_business_time(always, start, duration) == add_business_time(halves, start, duration)
    assert add_business_time(always, start, duration).astimezone(UTC) == start.astimezone(UTC) + duration
    end = shift(start, data.draw(st.integers(-60, 30 * 1440)) * MINUTE)
    assert business_time_between(always, start, end) == business_time_between(halves, start, end)
    pauses = [(shift(start, H), shift(start, 3 * H))]
    now = shift(start, 10 * H)
    assert clock_evaluate(always, start, 8 * H, pauses, now) == clock_evaluate(halves, start, 8 * H, pauses, now)
