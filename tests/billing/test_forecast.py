"""Revenue forecast, recurring-revenue metrics and receivables ageing (pure: no database).

Expected amounts are worked out by hand from a calendar: which invoice dates fall in which month, and for a short
period amount x days / period days rounded half up. The property tests check what the revenue page relies on: the
parts add up, a steady contract is steady, nothing dated before today is counted, ARR is 12 x MRR and the MRR
movements explain every month's change.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from billing.forecast import ContractPlan, MonthForecast, SubscriptionPlan, Timing, UsageHistory, forecast
from billing.metrics import AGEING_BUCKETS, ageing, metrics, monthly_recurring
from billing.periods import Cycle, Schedule, boundary_after, boundary_on_or_before, period_containing
from billing.proration import quantize

PROPERTY = settings(max_examples=200, deadline=None)


def D(text: str) -> Decimal:  # noqa: N802 - reads like the literal it stands for
    return Decimal(text)


def d(text: str) -> date:
    return date.fromisoformat(text)


def contract(**changes: Any) -> ContractPlan:
    """A monthly contract anchored on the 1st, billed in advance, 310.00 a month, open-ended, from 1 Jan 2025."""
    fields: dict[str, Any] = {
        "id": "c1",
        "cycle": Cycle.MONTHLY,
        "anchor_day": 1,
        "anchor_month": 1,
        "start": d("2025-01-01"),
        "end": None,
        "timing": Timing.ADVANCE,
        "recurring": D("310.00"),
        "next_period_start": d("2025-03-01"),
        "auto_renew": False,
        "renewal_term_months": None,
        "currency": "AUD",
    }
    return ContractPlan(**(fields | changes))


def subscription(**changes: Any) -> SubscriptionPlan:
    fields: dict[str, Any] = {
        "id": "sub_1",
        "monthly": D("49.00"),
        "next_billing": d("2025-03-31"),
        "cancel_at_period_end": False,
        "currency": "AUD",
    }
    return SubscriptionPlan(**(fields | changes))


def run(
    today: str,
    months: int,
    contracts: Sequence[ContractPlan] = (),
    subscriptions: Sequence[SubscriptionPlan] = (),
    usage: Sequence[UsageHistory] = (),
    currency: str = "AUD",
) -> list[MonthForecast]:
    return forecast(
        today=d(today),
        months=months,
        contracts=contracts,
        subscriptions=subscriptions,
        usage=usage,
        currency=currency,
    )


def part(result: list[MonthForecast], name: str) -> list[str]:
    """One part of each month, as strings so the exponent is checked too (0.00, never 0)."""
    return [str(getattr(month, name)) for month in result]


# -- forecast: shape -----------------------------------------------------------------------------------------------


def test_the_forecast_starts_with_the_current_month_and_has_one_entry_per_month():
    result = run("2025-11-20", 4, [contract(next_period_start=d("2025-12-01"))])
    assert [month.month for month in result] == [d("2025-11-01"), d("2025-12-01"), d("2026-01-01"), d("2026-02-01")]
    assert part(result, "contracts") == ["0.00", "310.00", "310.00", "310.00"]
    assert part(result, "subscriptions") == ["0.00"] * 4
    assert part(result, "usage") == ["0.00"] * 4
    assert part(result, "total") == ["0.00", "310.00", "310.00", "310.00"]
    assert len(run("2025-11-20", 36)) == 36
    assert len(run("2025-11-20", 1)) == 1


def test_nothing_to_forecast_gives_zero_months():
    assert run("2025-03-10", 2) == [
        MonthForecast(d("2025-03-01"), D("0.00"), D("0.00"), D("0.00"), D("0.00")),
        MonthForecast(d("2025-04-01"), D("0.00"), D("0.00"), D("0.00"), D("0.00")),
    ]


# -- forecast: contracts, each cycle in advance and in arrears ---------------------------------------------------


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        (Timing.ADVANCE, ["100.00", "100.00", "100.00"]),  # invoiced Mar 15, Apr 15, May 15
        (Timing.ARREARS, ["0.00", "100.00", "100.00"]),  # Mar 15 - Apr 14 invoiced Apr 15, then May 15
    ],
)
def test_monthly_in_advance_and_in_arrears(timing, expected):
    plan = contract(anchor_day=15, timing=timing, recurring=D("100.00"), next_period_start=d("2025-03-15"))
    assert part(run("2025-03-01", 3, [plan]), "contracts") == expected


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        # Mondays from 3 Mar: 3, 10, 17, 24, 31 March; 7, 14, 21, 28 April.
        (Timing.ADVANCE, ["350.00", "280.00"]),
        # Each week is invoiced on the Monday after it: 10, 17, 24, 31 March; 7, 14, 21, 28 April.
        (Timing.ARREARS, ["280.00", "280.00"]),
    ],
)
def test_weekly_in_advance_and_in_arrears(timing, expected):
    plan = contract(
        cycle=Cycle.WEEKLY, anchor_day=1, timing=timing, recurring=D("70.00"), next_period_start=d("2025-03-03")
    )
    assert part(run("2025-03-01", 2, [plan]), "contracts") == expected


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        # Quarters Apr-Jun and Jul-Sep invoiced on Apr 1 and Jul 1.
        (Timing.ADVANCE, ["0.00", "300.00", "0.00", "0.00", "300.00", "0.00"]),
        # Apr-Jun invoiced on Jul 1; Jul-Sep on Oct 1, after the horizon.
        (Timing.ARREARS, ["0.00", "0.00", "0.00", "0.00", "300.00", "0.00"]),
    ],
)
def test_quarterly_in_advance_and_in_arrears(timing, expected):
    plan = contract(cycle=Cycle.QUARTERLY, timing=timing, recurring=D("300.00"), next_period_start=d("2025-04-01"))
    assert part(run("2025-03-01", 6, [plan]), "contracts") == expected


def test_quarterly_boundaries_follow_the_anchor_month():
    # Anchor month 2: quarters begin in Feb, May, Aug, Nov.
    plan = contract(cycle=Cycle.QUARTERLY, anchor_month=2, recurring=D("300.00"), next_period_start=d("2025-05-01"))
    assert part(run("2025-03-01", 6, [plan]), "contracts") == ["0.00", "0.00", "300.00", "0.00", "0.00", "300.00"]


@pytest.mark.parametrize(
    ("timing", "next_period_start", "july"),
    [
        (Timing.ADVANCE, "2025-07-01", "1200.00"),  # the year from Jul 2025, invoiced on its first day
        (Timing.ARREARS, "2024-07-01", "1200.00"),  # the year to Jun 2025, invoiced on 1 Jul 2025
        (Timing.ARREARS, "2025-07-01", "0.00"),  # the year from Jul 2025 is invoiced in Jul 2026
    ],
)
def test_annual_in_advance_and_in_arrears(timing, next_period_start, july):
    plan = contract(
        cycle=Cycle.ANNUAL,
        anchor_month=7,
        start=d("2024-07-01"),
        timing=timing,
        recurring=D("1200.00"),
        next_period_start=d(next_period_start),
    )
    result = run("2025-03-01", 12, [plan])  # Mar 2025 .. Feb 2026
    assert [str(month.contracts) for month in result if month.month != d("2025-07-01")] == ["0.00"] * 11
    assert str(result[4].contracts) == july


def test_a_short_first_period_is_prorated():
    # Started on 20 Mar, anchored on the 1st: 20-31 Mar is 12 of 31 days, invoiced in advance on 20 Mar.
    plan = contract(start=d("2025-03-20"), next_period_start=d("2025-03-20"))
    assert part(run("2025-03-10", 2, [plan]), "contracts") == ["120.00", "310.00"]


def test_amounts_are_rounded_to_the_currency():
    # 1000 yen a month ending 11 May: 10 of 31 days = 322.58 yen, rounded to 323.
    plan = contract(recurring=D("1000"), end=d("2025-05-11"), currency="JPY")
    assert part(run("2025-03-01", 3, [plan], currency="JPY"), "contracts") == ["1000", "1000", "323"]


# -- forecast: end dates and renewals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        # Mar 1, Apr 1 full; May 1-15 (15 of 31 days) invoiced on May 1.
        (Timing.ADVANCE, ["310.00", "310.00", "150.00", "0.00"]),
        # March invoiced Apr 1, April on May 1, May 1-15 on its end, May 16.
        (Timing.ARREARS, ["0.00", "310.00", "460.00", "0.00"]),
    ],
)
def test_a_contract_ending_mid_month_is_prorated_and_then_stops(timing, expected):
    plan = contract(timing=timing, end=d("2025-05-16"))
    assert part(run("2025-03-01", 4, [plan]), "contracts") == expected


def test_an_auto_renewing_contract_continues_past_its_end():
    plan = contract(timing=Timing.ARREARS, end=d("2025-05-16"), auto_renew=True, renewal_term_months=12)
    # The renewal does not cut May in two: every month is a full period.
    assert part(run("2025-03-01", 10, [plan]), "contracts") == ["0.00"] + ["310.00"] * 9


def test_short_renewal_terms_follow_one_another_through_the_horizon():
    plan = contract(end=d("2025-04-01"), auto_renew=True, renewal_term_months=1)
    assert part(run("2025-03-01", 36, [plan]), "contracts") == ["310.00"] * 36


def test_renewal_ends_are_whole_terms_from_the_end_clamped_to_short_months():
    plan = contract(end=d("2025-01-31"), auto_renew=True, renewal_term_months=1)
    assert plan.end_within(d("2025-02-15")) == d("2025-02-28")
    assert plan.end_within(d("2025-03-01")) == d("2025-03-31")  # back on the 31st, not drifting to the 28th
    assert plan.end_within(d("2027-01-01")) == d("2027-01-31")
    assert plan.end_within(d("2025-01-31")) == d("2025-01-31")
    assert contract(end=d("2025-01-31")).end_within(d("2030-01-01")) == d("2025-01-31")  # no renewal
    assert contract().end_within(d("2030-01-01")) is None


def test_a_contract_invoiced_to_its_end_renews_from_its_end():
    plan = contract(end=d("2025-04-01"), next_period_start=None, auto_renew=True, renewal_term_months=12)
    assert part(run("2025-03-10", 3, [plan]), "contracts") == ["0.00", "310.00", "310.00"]


def test_a_contract_without_renewal_stops_at_its_end():
    assert part(run("2025-03-10", 3, [contract(end=d("2025-04-01"), next_period_start=None)]), "contracts") == [
        "0.00",
        "0.00",
        "0.00",
    ]
    plan = contract(end=d("2025-04-01"), auto_renew=False, renewal_term_months=12)
    assert part(run("2025-03-01", 3, [plan]), "contracts") == ["310.00", "0.00", "0.00"]


# -- forecast: the current month is cut at today -------------------------------------------------------------------


def test_an_invoice_due_today_counts_and_one_due_yesterday_is_already_out():
    due_today = contract(anchor_day=15, next_period_start=d("2025-03-15"))
    assert part(run("2025-03-15", 2, [due_today]), "contracts") == ["310.00", "310.00"]
    # On the 16th the generator has moved the contract on to April.
    invoiced = contract(anchor_day=15, next_period_start=d("2025-04-15"))
    assert part(run("2025-03-16", 2, [invoiced]), "contracts") == ["0.00", "310.00"]


def test_periods_the_generator_has_not_invoiced_yet_are_counted_today_not_before():
    # next_period_start says Jan, Feb and Mar (from the 15th) are still to invoice: they go out on the next run.
    plan = contract(anchor_day=15, next_period_start=d("2025-01-15"))
    assert part(run("2025-03-20", 2, [plan]), "contracts") == ["930.00", "310.00"]


def test_the_current_month_of_subscriptions_and_usage_is_cut_at_today():
    sub = subscription(next_billing=d("2025-03-16"))
    assert part(run("2025-03-16", 2, subscriptions=[sub]), "subscriptions") == ["49.00", "49.00"]
    assert part(run("2025-03-17", 2, subscriptions=[sub]), "subscriptions") == ["0.00", "49.00"]
    history = UsageHistory("c1", (D("62.00"),))
    # From the 17th: 15 of March's 31 days of 62.00.
    assert part(run("2025-03-17", 2, [contract()], usage=[history]), "usage") == ["30.00", "62.00"]
    assert part(run("2025-03-01", 1, [contract()], usage=[history]), "usage") == ["62.00"]
    assert part(run("2025-03-31", 1, [contract()], usage=[history]), "usage") == ["2.00"]


# -- forecast: subscriptions ---------------------------------------------------------------------------------------


def test_a_subscription_billed_on_the_31st_is_charged_at_each_month_end():
    sub = subscription(next_billing=d("2025-01-31"))
    # Charged 31 Jan, 28 Feb, 31 Mar, 30 Apr: each one is on or after a today on that day.
    for today in ("2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30"):
        assert part(run(today, 1, subscriptions=[sub]), "subscriptions") == ["49.00"], today
    # A leap year's February.
    assert part(run("2024-02-29", 1, subscriptions=[subscription(next_billing=d("2024-01-30"))]), "subscriptions") == [
        "49.00"
    ]
    assert part(run("2025-01-01", 4, subscriptions=[sub]), "subscriptions") == ["49.00"] * 4


def test_a_stale_next_billing_rolls_on_monthly_from_today():
    sub = subscription(next_billing=d("2024-11-30"))  # charged 30 Dec, 30 Jan (past), then 28 Feb, 30 Mar
    assert part(run("2025-02-10", 2, subscriptions=[sub]), "subscriptions") == ["49.00", "49.00"]


def test_a_subscription_cancelling_at_period_end_is_not_charged_again():
    sub = subscription(next_billing=d("2025-03-31"), cancel_at_period_end=True)
    assert part(run("2025-03-10", 3, subscriptions=[sub]), "subscriptions") == ["0.00", "0.00", "0.00"]


def test_subscriptions_add_up_per_month():
    subs = [subscription(), subscription(id="sub_2", monthly=D("10.005"), next_billing=d("2025-04-02"))]
    assert part(run("2025-03-10", 2, subscriptions=subs), "subscriptions") == ["49.00", "59.01"]


# -- forecast: usage -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amounts", "average"),
    [
        (("90.00",), "90.00"),
        (("60.00", "90.00"), "75.00"),
        (("30.00", "60.00", "90.00"), "60.00"),
        (("10", "10", "11"), "10.33"),  # 10.333...
        (("0.01", "0.01", "0.02"), "0.01"),  # 0.01333...
        (("0.005",), "0.01"),  # half a cent rounds up
        ((), "0.00"),  # too new to have a full month of usage
    ],
)
def test_usage_projects_the_average_of_the_trailing_months(amounts, average):
    history = UsageHistory("c1", tuple(D(amount) for amount in amounts))
    assert part(run("2025-04-01", 3, [contract()], usage=[history]), "usage") == [average] * 3


def test_usage_stops_at_the_end_of_a_contract_unless_it_renews():
    history = UsageHistory("c1", (D("62.00"),))
    ending = contract(end=d("2025-05-16"))
    assert part(run("2025-04-01", 3, [ending], usage=[history]), "usage") == ["62.00", "30.00", "0.00"]  # 15/31
    renewing = replace(ending, auto_renew=True, renewal_term_months=1)
    assert part(run("2025-04-01", 3, [renewing], usage=[history]), "usage") == ["62.00"] * 3


def test_usage_runs_while_the_contract_runs_even_when_it_is_fully_invoiced():
    plan = contract(end=d("2025-04-16"), next_period_start=None)  # April was invoiced in advance on Apr 1
    result = run("2025-04-01", 2, [plan], usage=[UsageHistory("c1", (D("30.00"),))])
    assert part(result, "usage") == ["15.00", "0.00"]  # 15 of April's 30 days
    assert part(result, "total") == ["15.00", "0.00"]


def test_the_total_adds_the_three_parts():
    result = run(
        "2025-03-01",
        2,
        [contract()],
        [subscription()],
        [UsageHistory("c1", (D("12.34"),))],
    )
    assert part(result, "total") == ["371.34", "371.34"]  # 310.00 + 49.00 + 12.34


# -- forecast: bad input -------------------------------------------------------------------------------------------


def test_plans_in_another_currency_are_refused():
    with pytest.raises(ValueError, match=r"contracts\[0\] \(c1\) is in EUR, not AUD"):
        run("2025-03-01", 3, [contract(currency="EUR")])
    with pytest.raises(ValueError, match=r"subscriptions\[1\] \(sub_2\) is in USD, not AUD"):
        run("2025-03-01", 3, subscriptions=[subscription(), subscription(id="sub_2", currency="USD")])
    # The case of a code does not matter.
    assert run("2025-03-01", 1, [contract(currency="aud")], currency="Aud")[0].contracts == D("310.00")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"months": 0}, "months must be a whole number from 1 to 36, got 0"),
        ({"months": 37}, "months must be a whole number from 1 to 36, got 37"),
        ({"months": True}, "months must be a whole number from 1 to 36"),
        ({"months": 1.0}, "months must be a whole number from 1 to 36"),
        ({"today": datetime(2025, 3, 1, 12)}, "today must be a date"),  # noqa: DTZ001 - refused either way
        ({"today": "2025-03-01"}, "today must be a date"),
        ({"currency": "AU"}, "currency must be a three-letter ISO 4217 code"),
        ({"contracts": [object()]}, r"contracts\[0\] must be a ContractPlan"),
        ({"contracts": "c1"}, "contracts must be a list of ContractPlan"),
        ({"subscriptions": None}, "subscriptions must be a list of SubscriptionPlan"),
        ({"contracts": [contract(), contract()]}, r"contracts\[1\]: the id 'c1' appears twice"),
        ({"usage": [UsageHistory("c2", ())]}, r"usage\[0\] is for the contract 'c2', which is not in contracts"),
        ({"usage": [UsageHistory("c1", ()), UsageHistory("c1", ())]}, r"usage\[1\]: the contract 'c1' has usage twice"),
    ],
)
def test_bad_forecast_arguments_are_value_errors(arguments, message):
    defaults: dict[str, Any] = {
        "today": d("2025-03-01"),
        "months": 12,
        "contracts": [contract()],
        "subscriptions": [],
        "usage": [],
        "currency": "AUD",
    }
    with pytest.raises(ValueError, match=message):
        forecast(**(defaults | arguments))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": ""}, "id must be a non-empty string"),
        ({"cycle": "DAILY"}, "cycle must be one of WEEKLY, MONTHLY, QUARTERLY, ANNUAL"),
        ({"anchor_day": 32}, "anchor_day must be a day of the month"),
        ({"cycle": Cycle.WEEKLY, "anchor_day": 8}, "anchor_day must be an ISO weekday"),
        ({"anchor_month": 13}, "anchor_month must be a month"),
        ({"timing": "LATER"}, "timing must be one of ADVANCE, ARREARS"),
        ({"start": datetime(2025, 1, 1)}, "start must be a date"),  # noqa: DTZ001 - refused either way
        ({"end": d("2025-01-01")}, r"end \(2025-01-01\) must be after start \(2025-01-01\)"),
        ({"recurring": 310.0}, "recurring must be a Decimal"),
        ({"recurring": D("-1")}, "recurring must be a finite amount of at least zero"),
        ({"recurring": D("NaN")}, "recurring must be a finite amount"),
        ({"next_period_start": d("2024-12-31")}, r"next_period_start \(2024-12-31\) must not be before start"),
        ({"auto_renew": 1}, "auto_renew must be True or False"),
        ({"renewal_term_months": 0}, "renewal_term_months must be a whole number of months from 1 to 1200"),
        ({"end": d("2026-01-01"), "auto_renew": True}, "renewal_term_months is required"),
        ({"currency": "dollars"}, "currency must be a three-letter ISO 4217 code"),
    ],
)
def test_bad_contract_plans_are_value_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        contract(**changes)


def test_plain_strings_are_accepted_for_the_cycle_and_the_timing():
    plan = contract(cycle="QUARTERLY", timing="ARREARS", currency="aud")
    assert plan.cycle is Cycle.QUARTERLY
    assert plan.timing is Timing.ARREARS
    assert plan.currency == "AUD"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: subscription(monthly=49), "monthly must be a Decimal"),
        (lambda: subscription(next_billing=None), "next_billing must be a date"),
        (lambda: subscription(cancel_at_period_end=None), "cancel_at_period_end must be True or False"),
        (lambda: subscription(id=None), "id must be a non-empty string"),
        (lambda: UsageHistory("c1", (D("1"),) * 4), "monthly_amounts must hold at most the last 3 months, got 4"),
        (lambda: UsageHistory("c1", (D("1"), 2.0)), r"monthly_amounts\[1\] must be a Decimal"),  # type: ignore[arg-type]
        (lambda: UsageHistory("c1", D("1")), "monthly_amounts must be a sequence of Decimal"),  # type: ignore[arg-type]
        (lambda: UsageHistory("", ()), "contract_id must be a non-empty string"),
    ],
)
def test_bad_subscription_and_usage_plans_are_value_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_usage_history_accepts_a_list_and_keeps_a_tuple():
    assert UsageHistory("c1", [D("1"), D("2")]).monthly_amounts == (D("1"), D("2"))  # type: ignore[arg-type]


# -- metrics -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cycle", "recurring", "currency", "expected"),
    [
        (Cycle.WEEKLY, "100.00", "AUD", "433.33"),  # x 52 / 12
        (Cycle.WEEKLY, "3.00", "AUD", "13.00"),
        (Cycle.MONTHLY, "99.995", "AUD", "100.00"),
        (Cycle.QUARTERLY, "100.00", "AUD", "33.33"),
        (Cycle.QUARTERLY, "0.05", "AUD", "0.02"),  # 0.01666...
        (Cycle.ANNUAL, "1000.00", "AUD", "83.33"),
        (Cycle.ANNUAL, "1200.00", "AUD", "100.00"),
        (Cycle.ANNUAL, "0.06", "AUD", "0.01"),  # 0.005 exactly: half up
        (Cycle.ANNUAL, "1000", "JPY", "83"),
        ("QUARTERLY", "3", "KWD", "1.000"),
    ],
)
def test_monthly_recurring(cycle, recurring, currency, expected):
    assert str(monthly_recurring(cycle, D(recurring), currency)) == expected


def test_monthly_recurring_refuses_bad_input():
    with pytest.raises(ValueError, match="cycle must be one of"):
        monthly_recurring("DAILY", D("1"), "AUD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="recurring must be a Decimal"):
        monthly_recurring(Cycle.MONTHLY, 1, "AUD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="currency must be a three-letter"):
        monthly_recurring(Cycle.MONTHLY, D("1"), "")


def months(*values: str) -> list[Decimal]:
    assert len(values) == 13
    return [D(value) for value in values]


# Thirteen month-ends, oldest first: index 0 is 12 months ago, index 12 is now.
HISTORY = {
    "steady": months(*["100"] * 13),
    "grows": months(*["100"] * 6, *["150"] * 4, *["120"] * 3),  # +50 at month-end 6, -30 at month-end 10
    "churns": months(*["200"] * 4, *["0"] * 9),  # leaves at month-end 4
    "returns": months(*["50"] * 2, *["0"] * 6, *["80"] * 5),  # leaves at month-end 2, back at 8 paying 80
    "new": months(*["0"] * 9, *["40"] * 4),  # starts at month-end 9
}


def test_metrics_worked_example():
    result = metrics(history=HISTORY, currency="AUD")
    assert str(result.mrr) == "340.00"  # 100 + 120 + 0 + 80 + 40
    assert str(result.arr) == "4080.00"
    assert str(result.churned_mrr) == "250.00"  # 50 (returns, month 2) + 200 (churns, month 4)
    # Had MRR 12 months ago: steady, grows, churns, returns; 450 then, 100 + 120 + 0 + 80 = 300 now: 66.666...%
    assert str(result.net_revenue_retention) == "66.7"
    rows = {
        month.month: (
            str(month.mrr),
            str(month.new_mrr),
            str(month.expansion_mrr),
            str(month.contraction_mrr),
            str(month.churned_mrr),
        )
        for month in result.by_month
    }
    assert list(rows) == list(range(1, 13))
    quiet = ("0.00", "0.00", "0.00", "0.00")
    assert rows == {
        1: ("450.00", *quiet),
        2: ("400.00", "0.00", "0.00", "0.00", "50.00"),  # returns churns
        3: ("400.00", *quiet),
        4: ("200.00", "0.00", "0.00", "0.00", "200.00"),  # churns churns
        5: ("200.00", *quiet),
        6: ("250.00", "0.00", "50.00", "0.00", "0.00"),  # grows expands
        7: ("250.00", *quiet),
        8: ("330.00", "80.00", "0.00", "0.00", "0.00"),  # returns comes back: new again
        9: ("370.00", "40.00", "0.00", "0.00", "0.00"),  # new starts
        10: ("340.00", "0.00", "0.00", "30.00", "0.00"),  # grows contracts
        11: ("340.00", *quiet),
        12: ("340.00", *quiet),
    }


def test_net_revenue_retention_above_100_percent_and_rounding_half_up():
    grew = {"a": months("100", *["0"] * 11, "150"), "b": months("100", *["100"] * 12)}
    assert metrics(history=grew, currency="AUD").net_revenue_retention == D("125.0")  # 250 / 200
    tie = {"a": months("2000", *["2001"] * 12)}  # 100.05% exactly
    assert str(metrics(history=tie, currency="AUD").net_revenue_retention) == "100.1"
    below = {"a": months("2000", *["2000.99"] * 12)}  # 100.0495%
    assert str(metrics(history=below, currency="AUD").net_revenue_retention) == "100.0"
    assert str(metrics(history={"a": months("100", *["0"] * 12)}, currency="AUD").net_revenue_retention) == "0.0"


def test_net_revenue_retention_is_none_without_customers_a_year_ago():
    result = metrics(history={"new": months("0", *["40"] * 12)}, currency="AUD")
    assert result.net_revenue_retention is None
    assert str(result.mrr) == "40.00"
    assert str(result.by_month[0].new_mrr) == "40.00"


def test_metrics_without_customers_are_zero():
    result = metrics(history={}, currency="JPY")
    assert (str(result.mrr), str(result.arr), str(result.churned_mrr)) == ("0", "0", "0")
    assert result.net_revenue_retention is None
    assert [month.month for month in result.by_month] == list(range(1, 13))


def test_customer_mrr_is_rounded_before_it_is_added():
    result = metrics(history={"a": months(*["0.005"] * 13), "b": months(*["0.005"] * 13)}, currency="AUD")
    assert str(result.mrr) == "0.02"  # 0.01 + 0.01, not 0.01


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ({"a": [D("1")] * 12}, r"history\['a'\] must be the MRR at each of 13 month-ends"),
        ({"a": "1" * 13}, r"history\['a'\] must be the MRR at each of 13 month-ends"),
        ({"a": [D("1")] * 12 + [1.0]}, r"history\['a'\]\[12\] must be a Decimal"),
        ({"a": [D("-1")] + [D("1")] * 12}, r"history\['a'\]\[0\] must be a finite amount of at least zero"),
        ([("a", [D("1")] * 13)], "history must be a mapping"),
    ],
)
def test_bad_history_is_a_value_error(history, message):
    with pytest.raises(ValueError, match=message):
        metrics(history=history, currency="AUD")


# -- ageing --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_overdue", "bucket"),
    [
        (-10, "current"),
        (0, "current"),  # due today
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
        (400, "90+"),
    ],
)
def test_ageing_bucket_boundaries(days_overdue, bucket):
    today = d("2025-03-15")
    result = ageing(today=today, open_invoices=[(today - timedelta(days=days_overdue), D("10.00"))], currency="AUD")
    assert result == {name: D("10.00") if name == bucket else D("0.00") for name in AGEING_BUCKETS}


def test_ageing_adds_up_rounded_amounts_in_every_bucket():
    today = d("2025-03-15")
    invoices = [
        (d("2025-03-20"), D("100.00")),
        (d("2025-03-15"), D("1.005")),
        (d("2025-03-14"), D("1.005")),
        (d("2025-03-01"), D("1.005")),
        (d("2024-12-01"), D("5.00")),
    ]
    result = ageing(today=today, open_invoices=invoices, currency="AUD")
    assert list(result) == ["current", "1-30", "31-60", "61-90", "90+"]
    assert {name: str(amount) for name, amount in result.items()} == {
        "current": "101.01",
        "1-30": "2.02",  # 1.01 + 1.01, each invoice rounded first
        "31-60": "0.00",
        "61-90": "0.00",
        "90+": "5.00",  # 104 days
    }
    assert ageing(today=today, open_invoices=iter([]), currency="JPY") == dict.fromkeys(AGEING_BUCKETS, D("0"))


@pytest.mark.parametrize(
    ("invoices", "message"),
    [
        ([(d("2025-03-01"),)], r"open_invoices\[0\] must be a \(due date, amount due\) pair"),
        ([[d("2025-03-01"), D("1")]], r"open_invoices\[0\] must be a tuple"),
        ([(d("2025-03-01"), D("1")), (None, D("1"))], r"open_invoices\[1\] due date must be a date"),
        ([(d("2025-03-01"), 1.5)], r"open_invoices\[0\] amount due must be a Decimal"),
        ([(d("2025-03-01"), D("-1"))], r"open_invoices\[0\] amount due must be a finite amount of at least zero"),
        (None, "open_invoices must be a list of tuple"),
    ],
)
def test_bad_open_invoices_are_value_errors(invoices, message):
    with pytest.raises(ValueError, match=message):
        ageing(today=d("2025-03-15"), open_invoices=invoices, currency="AUD")


# -- properties ----------------------------------------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=100_000, places=3)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


@st.composite
def schedules(draw: st.DrawFn, cycles: Sequence[Cycle] = tuple(Cycle)) -> Schedule:
    cycle = draw(st.sampled_from(cycles))
    anchor_day = draw(st.integers(1, 7 if cycle is Cycle.WEEKLY else 31))
    return Schedule(cycle, anchor_day, draw(st.integers(1, 12)))


@st.composite
def contract_plans(draw: st.DrawFn, today: date, invoiced_before: date | None = None) -> ContractPlan:
    """Any contract around ``today``. With ``invoiced_before``, its position leaves nothing before that day to
    invoice (the generator is up to date)."""
    schedule = draw(schedules())
    start = today + timedelta(days=draw(st.integers(-1000, 200)))
    end = draw(st.none() | st.integers(1, 1500).map(lambda length: start + timedelta(days=length)))
    auto_renew = draw(st.booleans())
    position = draw(st.none() | st.integers(0, 1500).map(lambda offset: start + timedelta(days=offset)))
    if invoiced_before is not None and position is not None:
        position = max(position, invoiced_before)
    return ContractPlan(
        id=draw(st.uuids()).hex,
        cycle=schedule.cycle,
        anchor_day=schedule.anchor_day,
        anchor_month=schedule.anchor_month,
        start=start,
        end=end,
        timing=draw(st.sampled_from(Timing)),
        recurring=draw(money),
        next_period_start=position,
        auto_renew=auto_renew,
        renewal_term_months=draw(st.integers(1, 36)) if auto_renew and end else None,
        currency="AUD",
    )


@st.composite
def subscription_plans(draw: st.DrawFn, today: date) -> SubscriptionPlan:
    return SubscriptionPlan(
        id=draw(st.uuids()).hex,
        monthly=draw(money),
        next_billing=today + timedelta(days=draw(st.integers(-100, 100))),
        cancel_at_period_end=draw(st.booleans()),
        currency="AUD",
    )


@st.composite
def everything(draw: st.DrawFn, today: date, invoiced_before: date | None = None) -> dict[str, Any]:
    contracts = draw(st.lists(contract_plans(today, invoiced_before), max_size=4))
    usage = [
        UsageHistory(plan.id, tuple(draw(st.lists(money, max_size=3)))) for plan in contracts if draw(st.booleans())
    ]
    subscriptions = draw(st.lists(subscription_plans(today), max_size=3))
    return {"contracts": contracts, "subscriptions": subscriptions, "usage": usage, "currency": "AUD"}


@PROPERTY
@given(st.data())
def test_each_month_total_is_the_sum_of_its_parts(data):
    today = data.draw(days)
    result = forecast(today=today, months=data.draw(st.integers(1, 36)), **data.draw(everything(today)))
    for month in result:
        assert month.total == month.contracts + month.subscriptions + month.usage
        for amount in (month.contracts, month.subscriptions, month.usage, month.total):
            assert amount >= 0
            assert amount.as_tuple().exponent == -2


@PROPERTY
@given(st.data())
def test_an_open_ended_monthly_contract_brings_the_same_amount_every_full_month(data):
    today = data.draw(days)
    schedule = data.draw(schedules([Cycle.MONTHLY]))
    timing = data.draw(st.sampled_from(Timing))
    # Where the invoice generator leaves it on ``today``: the first period not invoiced before today.
    if timing is Timing.ADVANCE:
        position = boundary_on_or_before(schedule, today)
        position = position if position == today else boundary_after(schedule, today)
    else:
        position = period_containing(schedule, today - timedelta(days=1)).start
    recurring = data.draw(money)
    plan = contract(
        anchor_day=schedule.anchor_day,
        start=date(1999, 1, 1),
        timing=timing,
        recurring=recurring,
        next_period_start=position,
    )
    result = forecast(today=today, months=data.draw(st.integers(2, 36)), contracts=[plan], **NO_SUBSCRIPTIONS_OR_USAGE)
    assert {month.contracts for month in result[1:]} == {quantize(recurring, "AUD")}
    boundary = today.replace(day=min(schedule.anchor_day, calendar.monthrange(today.year, today.month)[1]))
    assert result[0].contracts == (quantize(recurring, "AUD") if boundary >= today else 0)
    # An auto-renewing contract with an end date is billed the same within the horizon.
    renewing = replace(
        plan,
        end=today + timedelta(days=data.draw(st.integers(1, 400))),
        auto_renew=True,
        renewal_term_months=data.draw(st.integers(1, 24)),
    )
    again = forecast(today=today, months=len(result), contracts=[renewing], **NO_SUBSCRIPTIONS_OR_USAGE)
    assert [month.contracts for month in again] == [month.contracts for month in result]


NO_SUBSCRIPTIONS_OR_USAGE: dict[str, Any] = {"subscriptions": [], "usage": [], "currency": "AUD"}


@PROPERTY
@given(st.data())
def test_revenue_dated_before_today_is_never_counted(data):
    # Two days of the same month; the plans leave nothing before the later one to invoice.
    first = data.draw(days).replace(day=1)
    length = calendar.monthrange(first.year, first.month)[1]
    early = first + timedelta(days=data.draw(st.integers(0, length - 1)))
    late = first + timedelta(days=data.draw(st.integers((early - first).days, length - 1)))
    plans = data.draw(everything(early, invoiced_before=late))
    count = data.draw(st.integers(1, 36))
    before, after = forecast(today=early, months=count, **plans), forecast(today=late, months=count, **plans)
    # Later months do not depend on the day of this month the forecast is made.
    assert before[1:] == after[1:]
    # Moving today on can only drop what was dated between the two days.
    for name in ("contracts", "subscriptions", "usage"):
        assert getattr(after[0], name) <= getattr(before[0], name)


@PROPERTY
@given(st.data())
def test_subscription_charges_fall_on_the_billing_day_of_each_month_from_today(data):
    today = data.draw(days)
    plan = data.draw(subscription_plans(today))
    assume(not plan.cancel_at_period_end)
    result = forecast(today=today, months=data.draw(st.integers(1, 36)), subscriptions=[plan], **NO_CONTRACTS_OR_USAGE)
    for month in result:
        last = calendar.monthrange(month.month.year, month.month.month)[1]
        charged_on = month.month.replace(day=min(plan.next_billing.day, last))
        charged = charged_on >= today and charged_on >= plan.next_billing
        assert month.subscriptions == (quantize(plan.monthly, "AUD") if charged else 0)


NO_CONTRACTS_OR_USAGE: dict[str, Any] = {"contracts": [], "usage": [], "currency": "AUD"}


@st.composite
def histories(draw: st.DrawFn) -> dict[str, list[Decimal]]:
    mrr = st.one_of(st.just(D("0")), st.decimals(min_value=0, max_value=50_000, places=3))
    customers = draw(st.lists(st.uuids().map(str), max_size=8, unique=True))
    return {customer: draw(st.lists(mrr, min_size=13, max_size=13)) for customer in customers}


@PROPERTY
@given(histories())
def test_arr_is_twelve_times_mrr_and_the_movements_explain_each_month(history):
    result = metrics(history=history, currency="AUD")
    assert result.arr == 12 * result.mrr
    assert result.mrr == sum((quantize(values[-1], "AUD") for values in history.values()), D("0"))
    previous = sum((quantize(values[0], "AUD") for values in history.values()), D("0"))
    for month in result.by_month:
        assert month.mrr == (previous + month.new_mrr + month.expansion_mrr - month.contraction_mrr - month.churned_mrr)
        previous = month.mrr
    assert result.by_month[-1].mrr == result.mrr
    assert result.churned_mrr == sum(month.churned_mrr for month in result.by_month)


@PROPERTY
@given(st.data())
def test_ageing_buckets_add_up_to_the_rounded_amounts_due(data):
    today = data.draw(days)
    invoices = data.draw(
        st.lists(st.tuples(st.integers(-200, 200).map(lambda offset: today + timedelta(days=offset)), money))
    )
    result = ageing(today=today, open_invoices=invoices, currency="AUD")
    assert list(result) == list(AGEING_BUCKETS)
    assert sum(result.values()) == sum((quantize(amount, "AUD") for _, amount in invoices), D("0"))
