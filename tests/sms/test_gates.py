"""The send pipeline's pure rules: each gate alone, their order, local time across DST, budgets, warm-up."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.gates import (
    ORDER,
    WARMUP_CURVE,
    Action,
    Check,
    Gate,
    Verdict,
    decide,
    next_local_day,
    next_local_month,
    over_budget,
    parse_curve,
    quiet_until,
    sending_day,
    warmup_cap,
)

NEW_YORK = "America/New_York"
SYDNEY = "Australia/Sydney"
LONDON = "Europe/London"


def local(
    zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, *, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone), fold=fold)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# Monday 2026-06-15 12:00 in New York (EDT, UTC-4): inside the sending window.
NOON_NY = local(NEW_YORK, 2026, 6, 15, 12)


def check(**changes: object) -> Check:
    """A job that passes every gate, with ``changes`` applied."""
    base = Check(
        now=NOON_NY,
        organization_zone=NEW_YORK,
        contact_zone=None,
        kill_switch=False,
        paused=False,
        cost=Decimal("0.0079"),
        spent_today=Decimal("0"),
        spent_this_month=Decimal("0"),
        daily_cap=None,
        monthly_cap=None,
        on_dnc=False,
        has_consent=True,
        last_campaign_message_at=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_clean_job_is_sent() -> None:
    assert decide(check()) == Verdict(Action.SEND)
    assert decide(check()).gate is None
    assert decide(check()).until is None


def test_order_lists_every_reason_code_once() -> None:
    assert tuple(Gate) == ORDER
    assert ORDER.index(Gate.DNC) + 1 == ORDER.index(Gate.NO_CONSENT)
    assert [str(gate) for gate in ORDER] == [
        "kill_switch",
        "budget_cap",
        "dnc",
        "no_consent",
        "suppression",
        "quiet_hours",
        "rate_limit",
        "warmup",
    ]


# --- 1. kill switch -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [{"kill_switch": True}, {"paused": True}, {"kill_switch": True, "paused": True}])
def test_kill_switch_or_pause_waits_without_a_time(changes: dict[str, object]) -> None:
    assert decide(check(**changes)) == Verdict(Action.WAIT, Gate.KILL_SWITCH, None)


# --- 2. budget cap --------------------------------------------------------------------------------------------------


def test_reaching_a_cap_exactly_is_allowed() -> None:
    at_cap = check(
        cost=Decimal("0.01"),
        spent_today=Decimal("9.99"),
        daily_cap=Decimal("10.00"),
        spent_this_month=Decimal("99.99"),
        monthly_cap=Decimal("100"),
    )
    assert decide(at_cap) == Verdict(Action.SEND)
    assert over_budget(Decimal("0.01"), Decimal("9.99"), Decimal("99.99"), Decimal("10"), Decimal("100")) == (
        False,
        False,
    )


def test_going_past_the_daily_cap_waits_for_the_next_local_day() -> None:
    # Past the cap by a tenth of a cent. New York's next midnight (EDT) is 04:00 UTC.
    verdict = decide(check(cost=Decimal("0.011"), spent_today=Decimal("9.99"), daily_cap=Decimal("10.00")))
    assert verdict == Verdict(Action.WAIT, Gate.BUDGET_CAP, utc(2026, 6, 16, 4))
    assert verdict.until is not None
    assert verdict.until.tzinfo is UTC


def test_going_past_the_monthly_cap_waits_for_the_first_of_next_month() -> None:
    verdict = decide(check(spent_this_month=Decimal("100"), monthly_cap=Decimal("100")))
    assert verdict == Verdict(Action.WAIT, Gate.BUDGET_CAP, utc(2026, 7, 1, 4))


def test_both_caps_past_waits_for_the_later_renewal() -> None:
    verdict = decide(
        check(
            spent_today=Decimal("5"), daily_cap=Decimal("5"), spent_this_month=Decimal("50"), monthly_cap=Decimal("50")
        )
    )
    assert verdict == Verdict(Action.WAIT, Gate.BUDGET_CAP, utc(2026, 7, 1, 4))


def test_budget_renews_in_the_organization_zone_not_the_contact_zone() -> None:
    verdict = decide(check(contact_zone=SYDNEY, spent_today=Decimal("1"), daily_cap=Decimal("1")))
    assert verdict.until == utc(2026, 6, 16, 4)


def test_no_caps_means_no_budget_limit() -> None:
    assert decide(check(spent_today=Decimal("1000000"), spent_this_month=Decimal("1000000"))) == Verdict(Action.SEND)


def test_a_zero_cap_stops_any_paid_message() -> None:
    assert over_budget(Decimal("0.01"), Decimal("0"), Decimal("0"), Decimal("0"), None) == (True, False)
    assert over_budget(Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0")) == (False, False)


@pytest.mark.parametrize(
    ("spent_today", "spent_month", "expected"),
    [("9.98", "99.98", (False, False)), ("9.99", "99.98", (True, False)), ("9.98", "99.99", (False, True))],
)
def test_over_budget_reports_each_cap(spent_today: str, spent_month: str, expected: tuple[bool, bool]) -> None:
    assert over_budget(Decimal("0.02"), Decimal(spent_today), Decimal(spent_month), Decimal("10"), Decimal("100")) == (
        expected
    )


# --- 3. do-not-contact and consent ----------------------------------------------------------------------------------


def test_dnc_skips() -> None:
    assert decide(check(on_dnc=True)) == Verdict(Action.SKIP, Gate.DNC)


def test_missing_consent_skips() -> None:
    assert decide(check(has_consent=False)) == Verdict(Action.SKIP, Gate.NO_CONSENT)


def test_dnc_beats_missing_consent() -> None:
    assert decide(check(on_dnc=True, has_consent=False)) == Verdict(Action.SKIP, Gate.DNC)


# --- 4. suppression -------------------------------------------------------------------------------------------------


def test_a_recent_campaign_message_suppresses() -> None:
    assert decide(check(last_campaign_message_at=NOON_NY - timedelta(days=3))) == Verdict(Action.SKIP, Gate.SUPPRESSION)


def test_suppression_ends_exactly_n_days_later() -> None:
    # Strictly less than 90 days ago suppresses; exactly 90 days (of elapsed time) ago no longer does.
    assert decide(check(last_campaign_message_at=NOON_NY - timedelta(days=90))) == Verdict(Action.SEND)
    just_inside = NOON_NY - timedelta(days=90) + timedelta(microseconds=1)
    assert decide(check(last_campaign_message_at=just_inside)).gate is Gate.SUPPRESSION


def test_suppression_days_are_elapsed_time_across_dst() -> None:
    # From 2026-05-30 12:00 EDT, 90 * 24 hours back is 2026-03-01 11:00 EST (New York changed clocks on March 8):
    # noon on March 1 is 90 calendar days ago but an hour short of 90 days of elapsed time, so it still suppresses.
    now = local(NEW_YORK, 2026, 5, 30, 12)
    assert decide(check(now=now, last_campaign_message_at=local(NEW_YORK, 2026, 3, 1, 11))) == Verdict(Action.SEND)
    assert decide(check(now=now, last_campaign_message_at=local(NEW_YORK, 2026, 3, 1, 12))).gate is Gate.SUPPRESSION
    # The same instants written in UTC: the comparison is between instants, whatever their zone.
    assert decide(check(now=now, last_campaign_message_at=utc(2026, 3, 1, 16))) == Verdict(Action.SEND)
    assert decide(check(now=now, last_campaign_message_at=utc(2026, 3, 1, 16, 0, 1))).gate is Gate.SUPPRESSION


def test_suppression_window_is_configurable() -> None:
    ten_days_ago = NOON_NY - timedelta(days=10)
    assert decide(check(last_campaign_message_at=ten_days_ago, suppression_days=7)) == Verdict(Action.SEND)
    assert decide(check(last_campaign_message_at=ten_days_ago, suppression_days=11)).gate is Gate.SUPPRESSION
    assert decide(check(last_campaign_message_at=NOON_NY, suppression_days=0)) == Verdict(Action.SEND)


# --- 5. quiet hours -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (local(NEW_YORK, 2026, 6, 15, 9), None),  # start is inclusive
        (local(NEW_YORK, 2026, 6, 15, 20, 59, 59), None),
        (local(NEW_YORK, 2026, 6, 15, 21), utc(2026, 6, 16, 13)),  # end is exclusive: tomorrow 09:00 EDT
        (local(NEW_YORK, 2026, 6, 15, 23, 59), utc(2026, 6, 16, 13)),
        (local(NEW_YORK, 2026, 6, 15, 0), utc(2026, 6, 15, 13)),  # early: today's 09:00
        (local(NEW_YORK, 2026, 6, 15, 8, 59, 59), utc(2026, 6, 15, 13)),
    ],
)
def test_quiet_hours_window_edges(now: datetime, until: datetime | None) -> None:
    assert quiet_until(now, NEW_YORK) == until


@pytest.mark.parametrize(
    ("zone", "now", "until", "hours"),
    [
        # Sydney leaves DST on 2026-04-05 (03:00 AEDT becomes 02:00 AEST): the night is an hour longer.
        (SYDNEY, local(SYDNEY, 2026, 4, 4, 21, 30), utc(2026, 4, 4, 23), 12.5),
        (SYDNEY, local(SYDNEY, 2026, 4, 5, 2, 30, fold=0), utc(2026, 4, 4, 23), 7.5),
        (SYDNEY, local(SYDNEY, 2026, 4, 5, 2, 30, fold=1), utc(2026, 4, 4, 23), 6.5),
        # Sydney enters DST on 2026-10-04 (02:00 AEST becomes 03:00 AEDT): the night is an hour shorter.
        (SYDNEY, local(SYDNEY, 2026, 10, 3, 21, 30), utc(2026, 10, 3, 22), 10.5),
        (SYDNEY, local(SYDNEY, 2026, 10, 4, 3, 30), utc(2026, 10, 3, 22), 5.5),
        # New York enters DST on 2026-03-08 and leaves it on 2026-11-01.
        (NEW_YORK, local(NEW_YORK, 2026, 3, 7, 21, 30), utc(2026, 3, 8, 13), 10.5),
        (NEW_YORK, local(NEW_YORK, 2026, 3, 8, 3, 30), utc(2026, 3, 8, 13), 5.5),
        (NEW_YORK, local(NEW_YORK, 2026, 10, 31, 21, 30), utc(2026, 11, 1, 14), 12.5),
        (NEW_YORK, local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1), utc(2026, 11, 1, 14), 7.5),
        # London enters BST on 2026-03-29 and leaves it on 2026-10-25.
        (LONDON, local(LONDON, 2026, 3, 28, 21, 30), utc(2026, 3, 29, 8), 10.5),
        (LONDON, local(LONDON, 2026, 3, 29, 0, 30), utc(2026, 3, 29, 8), 7.5),
        (LONDON, local(LONDON, 2026, 10, 24, 21, 30), utc(2026, 10, 25, 9), 12.5),
    ],
)
def test_quiet_hours_defer_to_nine_local_across_dst(zone: str, now: datetime, until: datetime, hours: float) -> None:
    result = quiet_until(now, zone)
    assert result == until
    assert result is not None
    assert result.tzinfo is UTC
    assert result.astimezone(ZoneInfo(zone)).time() == time(9)
    assert result - now == timedelta(hours=hours)


def test_quiet_hours_use_the_contact_zone_over_the_organization_zone() -> None:
    # 2026-06-15 02:00 UTC: 22:00 the day before in New York, 12:00 in Sydney.
    now = utc(2026, 6, 15, 2)
    assert decide(check(now=now, contact_zone=SYDNEY)) == Verdict(Action.SEND)
    assert decide(check(now=now)) == Verdict(Action.DEFER, Gate.QUIET_HOURS, utc(2026, 6, 15, 13))
    # And the other way round: noon in New York is 02:00 in Sydney, so a Sydney contact waits for 09:00 AEST.
    assert decide(check(contact_zone=SYDNEY)) == Verdict(Action.DEFER, Gate.QUIET_HOURS, utc(2026, 6, 15, 23))


def test_an_empty_contact_zone_falls_back_like_none() -> None:
    assert decide(check(now=utc(2026, 6, 15, 2), contact_zone="")).until == utc(2026, 6, 15, 13)


def test_quiet_hours_window_is_configurable() -> None:
    assert decide(check(quiet_start=time(8), quiet_end=time(12, 30))) == Verdict(Action.SEND)
    assert decide(check(quiet_start=time(8), quiet_end=time(12))) == Verdict(
        Action.DEFER, Gate.QUIET_HOURS, utc(2026, 6, 16, 12)
    )


def test_a_window_that_does_not_open_before_it_closes_is_refused() -> None:
    with pytest.raises(ValueError, match="must start before it ends"):
        quiet_until(NOON_NY, NEW_YORK, time(21), time(9))
    with pytest.raises(ValueError, match="must start before it ends"):
        quiet_until(NOON_NY, NEW_YORK, time(9), time(9))


def test_a_skipped_local_day_defers_to_the_next_existing_nine() -> None:
    # Samoa skipped 2011-12-30 entirely: from the evening of the 29th the next 09:00 is on the 31st.
    apia = "Pacific/Apia"
    result = quiet_until(local(apia, 2011, 12, 29, 21, 30), apia)
    assert result is not None
    assert result.astimezone(ZoneInfo(apia)) == local(apia, 2011, 12, 31, 9)


def test_naive_datetimes_are_refused() -> None:
    naive = NOON_NY.replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        quiet_until(naive, NEW_YORK)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_local_day(naive, NEW_YORK)
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(check(now=naive))
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(check(last_campaign_message_at=naive))


# --- 6. rate limit --------------------------------------------------------------------------------------------------


def test_rate_limit_defers_by_the_computed_wait() -> None:
    verdict = decide(check(rate_wait=timedelta(seconds=7, milliseconds=250)))
    assert verdict == Verdict(Action.DEFER, Gate.RATE_LIMIT, utc(2026, 6, 15, 16, 0, 7, 250000))
    assert verdict.until is not None
    assert verdict.until.tzinfo is UTC


def test_rate_limit_wait_is_real_time_across_a_dst_change() -> None:
    # Two seconds before New York springs forward (the Sydney contact is at 18:00): 7 seconds later is 03:00:05 EDT,
    # not a wall-clock 02:00:05.
    now = local(NEW_YORK, 2026, 3, 8, 1, 59, 58)
    verdict = decide(check(now=now, contact_zone=SYDNEY, rate_wait=timedelta(seconds=7)))
    assert verdict == Verdict(Action.DEFER, Gate.RATE_LIMIT, utc(2026, 3, 8, 7, 0, 5))


@pytest.mark.parametrize("wait", [None, timedelta(0), timedelta(seconds=-1)])
def test_no_wait_means_room(wait: timedelta | None) -> None:
    assert decide(check(rate_wait=wait)) == Verdict(Action.SEND)


# --- 7. warm-up -----------------------------------------------------------------------------------------------------


def test_warmup_full_defers_to_the_organization_next_day() -> None:
    # The contact is in London (17:00, inside the window); the caps renew at New York's midnight.
    verdict = decide(check(warmup_full=True, contact_zone=LONDON))
    assert verdict == Verdict(Action.DEFER, Gate.WARMUP, utc(2026, 6, 16, 4))


@pytest.mark.parametrize(("day", "cap"), [(-3, 0), (0, 0), (1, 50), (2, 100), (3, 200), (4, 300), (5, 300), (6, 300)])
def test_warmup_curve(day: int, cap: int) -> None:
    start = date(2026, 6, 15)
    today = start + timedelta(days=day - 1)
    assert sending_day(start, today) == day
    assert warmup_cap(sending_day(start, today)) == cap


def test_warmup_curve_default_and_custom() -> None:
    assert WARMUP_CURVE == (50, 100, 200, 300)
    assert sending_day(date(2026, 6, 15), date(2026, 6, 15)) == 1
    assert sending_day(date(2026, 6, 15), date(2026, 6, 14)) == 0
    assert [warmup_cap(day, (10, 5)) for day in range(4)] == [0, 10, 5, 5]
    assert warmup_cap(400, [1, 2, 3]) == 3
    with pytest.raises(ValueError, match="empty"):
        warmup_cap(1, ())


@pytest.mark.parametrize(
    ("text", "curve"),
    [
        ("50/100/200/300", (50, 100, 200, 300)),
        ("50,100,200,300", (50, 100, 200, 300)),
        (" 50 / 100 ", (50, 100)),
        ("7", (7,)),
        ("0/10/5", (0, 10, 5)),  # need not increase
    ],
)
def test_parse_curve(text: str, curve: tuple[int, ...]) -> None:
    assert parse_curve(text) == curve


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("50/abc", "step 2 is not a whole number: 'abc'"),
        ("50/-1/200", "step 2 is negative: -1"),
        ("50//100", "step 2 is empty"),
        ("50/100/", "step 3 is empty"),
        ("1.5", "step 1 is not a whole number"),
        ("50 100", "step 1 is not a whole number"),
        ("+5", "step 1 is not a whole number"),
        ("\u0665", "step 1 is not a whole number"),  # an Arabic-Indic five is a digit to str.isdigit(), not to us
    ],
)
def test_parse_curve_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        parse_curve(text)


# --- local calendar boundaries --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        (NEW_YORK, local(NEW_YORK, 2026, 3, 7, 23, 30), utc(2026, 3, 8, 5)),  # midnight before the change is EST
        (NEW_YORK, local(NEW_YORK, 2026, 3, 8, 12), utc(2026, 3, 9, 4)),  # and after it EDT
        (SYDNEY, local(SYDNEY, 2026, 4, 4, 12), utc(2026, 4, 4, 13)),  # AEDT midnight
        (SYDNEY, local(SYDNEY, 2026, 4, 5, 12), utc(2026, 4, 5, 14)),  # AEST midnight
        # Santiago skips 00:00-01:00 on 2026-09-06: the day begins at the change, 04:00 UTC.
        ("America/Santiago", local("America/Santiago", 2026, 9, 5, 12), utc(2026, 9, 6, 4)),
        # Santiago repeats 23:00-24:00 on 2026-04-04: from the first 23:30 the day ends after the second one.
        ("America/Santiago", local("America/Santiago", 2026, 4, 4, 23, 30, fold=0), utc(2026, 4, 5, 4)),
        # Havana repeats 00:00-01:00 on 2026-11-01: the day begins at the first midnight.
        ("America/Havana", local("America/Havana", 2026, 10, 31, 12), utc(2026, 11, 1, 4)),
    ],
)
def test_next_local_day(zone: str, now: datetime, expected: datetime) -> None:
    result = next_local_day(now, zone)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        (NEW_YORK, local(NEW_YORK, 2026, 10, 15, 12), utc(2026, 11, 1, 4)),  # DST ends later that night
        (NEW_YORK, local(NEW_YORK, 2026, 12, 31, 23, 59), utc(2027, 1, 1, 5)),  # year rolls over
        (SYDNEY, local(SYDNEY, 2026, 3, 20, 12), utc(2026, 3, 31, 13)),  # April 1 is still AEDT
        # 20:00 UTC on January 31 is already February 1 in Sydney: the local month decides.
        (SYDNEY, utc(2026, 1, 31, 20), utc(2026, 2, 28, 13)),
        (LONDON, local(LONDON, 2026, 2, 1), utc(2026, 3, 1)),  # from the first instant of a month
    ],
)
def test_next_local_month(zone: str, now: datetime, expected: datetime) -> None:
    result = next_local_month(now, zone)
    assert result == expected
    assert result.tzinfo is UTC


# --- the order ------------------------------------------------------------------------------------------------------


def test_gates_apply_in_order() -> None:
    # 02:00 UTC is 22:00 in New York (quiet) and noon in Sydney. Start with every gate failing, then fix them one
    # by one: each fix reveals the next gate of ORDER.
    job = check(
        now=utc(2026, 6, 15, 2),
        kill_switch=True,
        paused=True,
        daily_cap=Decimal("0"),
        on_dnc=True,
        has_consent=False,
        last_campaign_message_at=utc(2026, 6, 1),
        rate_wait=timedelta(seconds=1),
        warmup_full=True,
    )
    fixes: list[dict[str, object]] = [
        {"kill_switch": False, "paused": False},
        {"daily_cap": None},
        {"on_dnc": False},
        {"has_consent": True},
        {"last_campaign_message_at": None},
        {"contact_zone": SYDNEY},
        {"rate_wait": None},
        {"warmup_full": False},
    ]
    seen = []
    for fix in fixes:
        seen.append(decide(job).gate)
        job = replace(job, **fix)  # type: ignore[arg-type]
    assert tuple(seen) == ORDER
    assert decide(job) == Verdict(Action.SEND)


def test_budget_beats_dnc() -> None:
    assert decide(check(on_dnc=True, daily_cap=Decimal("0"))).gate is Gate.BUDGET_CAP


def test_kill_switch_beats_everything() -> None:
    everything = check(
        now=local(NEW_YORK, 2026, 6, 15, 23),
        kill_switch=True,
        daily_cap=Decimal("0"),
        monthly_cap=Decimal("0"),
        on_dnc=True,
        has_consent=False,
        last_campaign_message_at=NOON_NY,
        rate_wait=timedelta(minutes=1),
        warmup_full=True,
    )
    assert decide(everything) == Verdict(Action.WAIT, Gate.KILL_SWITCH)


def test_skips_come_before_deferrals() -> None:
    # Out of hours and without consent: skip now rather than defer to 09:00 and skip then.
    assert decide(check(now=local(NEW_YORK, 2026, 6, 15, 23), has_consent=False)).gate is Gate.NO_CONSENT


@given(st.lists(st.sampled_from(ORDER), unique=True))
def test_the_first_failing_gate_in_order_decides(failing: list[Gate]) -> None:
    failures: dict[Gate, dict[str, object]] = {
        Gate.KILL_SWITCH: {"paused": True},
        Gate.BUDGET_CAP: {"monthly_cap": Decimal("0")},
        Gate.DNC: {"on_dnc": True},
        Gate.NO_CONSENT: {"has_consent": False},
        Gate.SUPPRESSION: {"last_campaign_message_at": NOON_NY - timedelta(days=1)},
        Gate.QUIET_HOURS: {"contact_zone": SYDNEY},  # 02:00 in Sydney
        Gate.RATE_LIMIT: {"rate_wait": timedelta(seconds=2)},
        Gate.WARMUP: {"warmup_full": True},
    }
    changes: dict[str, object] = {}
    for gate in failing:
        changes.update(failures[gate])
    verdict = decide(check(**changes))
    first = next((gate for gate in ORDER if gate in failing), None)
    assert verdict.gate is first
    expected_action = {
        None: Action.SEND,
        Gate.KILL_SWITCH: Action.WAIT,
        Gate.BUDGET_CAP: Action.WAIT,
        Gate.DNC: Action.SKIP,
        Gate.NO_CONSENT: Action.SKIP,
        Gate.SUPPRESSION: Action.SKIP,
        Gate.QUIET_HOURS: Action.DEFER,
        Gate.RATE_LIMIT: Action.DEFER,
        Gate.WARMUP: Action.DEFER,
    }[first]
    assert verdict.action is expected_action
    # Only a deferral or a budget wait says when to try again, and always in UTC and in the future.
    if first in (Gate.BUDGET_CAP, Gate.QUIET_HOURS, Gate.RATE_LIMIT, Gate.WARMUP):
        assert verdict.until is not None
        assert verdict.until.tzinfo is UTC
        assert verdict.until > NOON_NY
    else:
        assert verdict.until is None


# --- properties of local time ---------------------------------------------------------------------------------------

ZONES = [
    "UTC",
    NEW_YORK,
    SYDNEY,
    LONDON,
    "America/Los_Angeles",
    "America/St_Johns",  # UTC-3:30 with DST
    "America/Santiago",  # DST changes at midnight
    "America/Havana",
    "Asia/Kolkata",
    "Asia/Kathmandu",  # UTC+5:45
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Pacific/Chatham",  # UTC+12:45 with DST
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
]

# Instants spread over 2000-2040, plus instants within two days of the DST changes the tests name.
_DST_CHANGES = [
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 4, 4, 16),
    utc(2026, 10, 3, 16),
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 9, 6, 4),
    utc(2026, 4, 5, 3),
]
_spread = st.integers(min_value=946_684_800, max_value=2_240_611_200).map(lambda s: datetime.fromtimestamp(s, UTC))
_near_changes = st.tuples(st.sampled_from(_DST_CHANGES), st.integers(min_value=-172_800, max_value=172_800)).map(
    lambda pair: pair[0] + timedelta(seconds=pair[1])
)
instants = _spread | _near_changes


@given(instants, st.sampled_from(ZONES))
def test_quiet_until_is_none_exactly_inside_the_window(now: datetime, zone: str) -> None:
    tz = ZoneInfo(zone)
    wall = now.astimezone(tz)
    result = quiet_until(now, zone)
    inside = time(9) <= wall.time() < time(21)
    assert (result is None) == inside
    if result is not None:
        assert result.tzinfo is UTC
        assert result > now
        opens = result.astimezone(tz)
        assert opens.time() == time(9)
        # The next opening, not a later one: today's if it is still early, else tomorrow's.
        expected_day = wall.date() if wall.time() < time(9) else wall.date() + timedelta(days=1)
        assert opens.date() == expected_day


@given(instants, st.sampled_from(ZONES))
def test_next_local_day_is_the_first_instant_of_tomorrow(now: datetime, zone: str) -> None:
    tz = ZoneInfo(zone)
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    result = next_local_day(now, zone)
    assert result.tzinfo is UTC
    assert result > now
    assert result.astimezone(tz).date() == tomorrow
    assert (result - timedelta(microseconds=1)).astimezone(tz).date() == tomorrow - timedelta(days=1)


@given(instants, st.sampled_from(ZONES))
def test_next_local_month_is_the_first_instant_of_next_month(now: datetime, zone: str) -> None:
    tz = ZoneInfo(zone)
    wall = now.astimezone(tz)
    result = next_local_month(now, zone)
    assert result.tzinfo is UTC
    assert result > now
    first = result.astimezone(tz).date()
    assert first.day == 1
    assert (first.year * 12 + first.month) - (wall.year * 12 + wall.month) == 1
    assert (result - timedelta(microseconds=1)).astimezone(tz).date() < first
