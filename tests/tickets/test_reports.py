"""The SLA report (``tickets.reports.sla_report``): compliance, median and mean business times, breaches, per priority,
technician and organization; the backlog by age; the UTC window's boundaries; a bounded number of queries.

Time stands still on Friday 20 November 2026, 12:00 in Sydney (01:00 UTC). Acme (Sydney) is on Core+, business hours
Mon-Fri 08:00-18:00: P1 first response 2 h / resolution 8 h, P2 4 h / 16 h, P3 8 h / 40 h, P4 16 h / 80 h.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from tenancy.models import Organization, User
from tests.factories import OrganizationFactory, UserFactory
from tests.tickets.stories import ticket
from tickets.models import Ticket, TicketStatus
from tickets.reports import AGE_BUCKETS, SlaFigures, compliance, report_period, sla_report
from tickets.services import ticket_merge, ticket_set_status

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
PERTH = ZoneInfo("Australia/Perth")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=SYDNEY)
NOVEMBER = report_period(date(2026, 11, 1), date(2026, 11, 20))
HOUR = 3600


def sydney(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SYDNEY)


@pytest.fixture(autouse=True)
def friday_noon(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def tess(db) -> User:
    return UserFactory(email="tess@keel.test", full_name="Tess Tech", is_staff=True)


@pytest.fixture
def tom(db) -> User:
    return UserFactory(email="tom@keel.test", full_name="Tom Tech", is_staff=True)


@pytest.fixture
def november(acme, globex, tess, tom) -> None:
    """Acme's tickets opened from 1 to 20 November (UTC), and some that must not count."""
    # 1: P1, replied after 30 min, resolved after 3 h: both met.
    ticket(acme, "P1", sydney(2, 9), replied=sydney(2, 9, 30), resolved=sydney(2, 12), assignee=tess)
    # 2: P1, replied after 3 h (target 2 h): breached; resolved after 7 h: met.
    ticket(acme, "P1", sydney(3, 9), replied=sydney(3, 12), resolved=sydney(3, 16), assignee=tess)
    # 3: P2, replied after 1 h: met; resolved after 18 business hours (Wed 9 h + Thu 9 h; target 16 h): breached.
    ticket(acme, "P2", sydney(4, 9), replied=sydney(4, 10), resolved=sydney(5, 17), assignee=tess)
    # 4: P3 opened at 17:00, replied at 09:00 next morning: 16 hours later, but 2 business hours: met. Still open,
    # its resolution was due on Wednesday 11th: breached though the stored state still reads "ok".
    ticket(acme, "P3", sydney(5, 17), replied=sydney(6, 9))
    # 5: P3 nobody answered: both clocks are long past due.
    ticket(acme, "P3", sydney(6, 9))
    # 6: P2, replied after 15 min, waited on the customer from Monday 10:00 to Tuesday 10:00, resolved Tuesday
    # 12:00: 3 business hours of resolution (Monday 09-10, Tuesday 10-12): met.
    ticket(acme, "P2", sydney(9, 9), replied=sydney(9, 9, 15), waiting=(sydney(9, 10), sydney(10, 10)),
           resolved=sydney(10, 12), assignee=tom)  # fmt: skip
    # 7: P4 opened an hour ago (00:00 UTC on the 20th, the last day of the window): no clock decided yet.
    seventh = ticket(acme, "P4", sydney(20, 11))
    # Not counted: opened at 10:00 on 1 November in Sydney, which is still 31 October in UTC; a duplicate merged
    # into the seventh; another organization's ticket.
    ticket(acme, "P1", sydney(1, 10), replied=sydney(2, 17), resolved=sydney(4, 17))
    ticket_merge(ticket=ticket(acme, "P1", sydney(12, 9)), into=seventh)
    ticket(globex, "P1", sydney(2, 9), replied=sydney(6, 9))


def acme_report(group_by: str | None = None, period=NOVEMBER):
    return sla_report(tickets=Ticket.objects.for_org(Organization.objects.get(slug="acme")), start=period.start,
                      end=period.end, group_by=group_by)  # fmt: skip


def summary(figures: SlaFigures) -> tuple:
    first, resolution = figures.first_response, figures.resolution
    return (
        figures.tickets,
        (first.met, first.breached, first.compliance, first.median_seconds, first.mean_seconds),
        (
            resolution.met,
            resolution.breached,
            resolution.compliance,
            resolution.median_seconds,
            resolution.mean_seconds,
        ),
        figures.breached_tickets,
        figures.backlog_counts,
    )


def backlog(**counts: int) -> dict[str, int]:
    buckets = {bucket.key: counts.get(bucket.key, 0) for bucket in AGE_BUCKETS}
    return {"total": sum(buckets.values()), **buckets}


# -- arithmetic -------------------------------------------------------------------------------------------------------


def test_overall_figures(november):
    report = acme_report()
    assert (report.start, report.end) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    assert (report.first_day, report.last_day) == (date(2026, 11, 1), date(2026, 11, 20))
    assert report.group_by is None and report.groups == []
    assert report.generated_at == NOW
    # First responses stopped after 30 min, 3 h, 1 h, 2 h and 15 min (median 1 h); resolutions after 3 h, 7 h,
    # 18 h and 3 h (median between 3 h and 7 h). Breaches: tickets 2, 3, 4 and 5.
    assert summary(report.overall) == (
        7,
        (4, 2, Decimal("66.7"), HOUR, (1800 + 3 * HOUR + HOUR + 2 * HOUR + 900) // 5),
        (3, 3, Decimal("50.0"), 5 * HOUR, (3 * HOUR + 7 * HOUR + 18 * HOUR + 3 * HOUR) // 4),
        4,
        backlog(under_1_day=1, days_7_to_30=2),
    )


def test_figures_per_priority(november):
    report = acme_report("priority")
    rows = {group.key: summary(group) for group in report.groups}
    assert [group.key for group in report.groups] == ["P1", "P2", "P3", "P4"]
    assert [group.label for group in report.groups] == ["P1 critical", "P2 high", "P3 medium", "P4 low"]
    assert rows["P1"] == (
        2, (1, 1, Decimal("50.0"), 6300, 6300), (2, 0, Decimal("100.0"), 5 * HOUR, 5 * HOUR), 1, backlog()
    )  # fmt: skip
    assert rows["P2"] == (
        2, (2, 0, Decimal("100.0"), 2250, 2250), (1, 1, Decimal("50.0"), 37800, 37800), 1, backlog()
    )  # fmt: skip
    # No resolution stopped: no times. Both clocks past due count as breached.
    assert rows["P3"] == (2, (1, 1, Decimal("50.0"), 2 * HOUR, 2 * HOUR), (0, 2, Decimal("0.0"), None, None), 2,
                          backlog(days_7_to_30=2))  # fmt: skip
    # The P4 opened an hour ago decides nothing yet.
    assert rows["P4"] == (1, (0, 0, None, None, None), (0, 0, None, None, None), 0, backlog(under_1_day=1))
    assert summary(report.overall) == summary(acme_report().overall)


def test_figures_per_technician(november, tess, tom):
    report = acme_report("technician")
    assert [(group.key, group.label) for group in report.groups] == [
        (str(tess.pk), "Tess Tech"),
        (str(tom.pk), "Tom Tech"),
        (None, "Unassigned"),
    ]
    tess_row, tom_row, unassigned = (summary(group) for group in report.groups)
    assert tess_row == (
        3,
        (2, 1, Decimal("66.7"), HOUR, (1800 + 3 * HOUR + HOUR) // 3),
        (2, 1, Decimal("66.7"), 7 * HOUR, (3 + 7 + 18) * HOUR // 3),
        2,
        backlog(),
    )
    assert tom_row == (1, (1, 0, Decimal("100.0"), 900, 900), (1, 0, Decimal("100.0"), 3 * HOUR, 3 * HOUR), 0,
                       backlog())  # fmt: skip
    assert unassigned == (3, (1, 1, Decimal("50.0"), 2 * HOUR, 2 * HOUR), (0, 2, Decimal("0.0"), None, None), 2,
                          backlog(under_1_day=1, days_7_to_30=2))  # fmt: skip


def test_figures_per_organization_over_a_partners_organizations(november, acme, initech, globex):
    # Initech is in Perth: 10:00 to 10:20 there is 20 business minutes.
    ticket(initech, "P1", datetime(2026, 11, 2, 10, tzinfo=PERTH), replied=datetime(2026, 11, 2, 10, 20, tzinfo=PERTH))
    report = sla_report(tickets=Ticket.objects.for_orgs(Organization.objects.filter(partner=acme.partner)),
                        start=NOVEMBER.start, end=NOVEMBER.end, group_by="organization")  # fmt: skip
    assert [(group.key, group.label) for group in report.groups] == [("acme", "Acme Pty Ltd"), ("initech", "Initech")]
    acme_row, initech_row = report.groups
    assert summary(acme_row) == summary(acme_report().overall)
    # Still open and far past its 8 hours: its resolution is breached.
    assert summary(initech_row) == (1, (1, 0, Decimal("100.0"), 1200, 1200), (0, 1, Decimal("0.0"), None, None), 1,
                                    backlog(days_7_to_30=1))  # fmt: skip
    assert report.overall.tickets == 8
    assert report.overall.first_response.met == 5
    assert report.overall.backlog_total == 4


def test_compliance_rounds_half_up_to_one_decimal():
    assert compliance(0, 0) is None
    assert compliance(2, 1) == Decimal("66.7")
    assert compliance(1, 2) == Decimal("33.3")
    assert compliance(1, 15) == Decimal("6.3")  # 6.25: half up, not to even
    assert compliance(3, 0) == Decimal("100.0")


def test_reopened_ticket_times_resolution_from_its_last_resolution(acme):
    # Resolved after 1 h, reopened 2 h later, resolved again 1 h after that: 2 business hours, the resolved time is
    # a pause.
    reopened = ticket(acme, "P2", sydney(16, 9), replied=sydney(16, 9, 30), resolved=sydney(16, 10))
    ticket_set_status(ticket=reopened, status=TicketStatus.OPEN, now=sydney(16, 12))
    ticket_set_status(ticket=reopened, status=TicketStatus.RESOLVED, now=sydney(16, 13))
    resolution = acme_report().overall.resolution
    assert (resolution.met, resolution.breached, resolution.median_seconds) == (1, 0, 2 * HOUR)


def test_a_ticket_resolved_without_a_reply_stops_its_first_response_clock_there(acme):
    ticket(acme, "P3", sydney(16, 9), resolved=sydney(16, 9, 45))
    first = acme_report().overall.first_response
    assert (first.met, first.breached, first.median_seconds) == (1, 0, 45 * 60)


def test_a_clock_without_a_target_is_neither_met_nor_breached(acme):
    untargeted = ticket(acme, "P3", sydney(16, 9), replied=sydney(16, 9, 45), resolved=sydney(16, 10))
    # What the clocks store for a clock with no target: "met", with nothing to meet.
    Ticket.objects.filter(pk=untargeted.pk).update(first_response_target=None, resolution_target=None)
    overall = acme_report().overall
    assert (overall.first_response.met, overall.first_response.breached, overall.first_response.compliance) == (
        0, 0, None
    )  # fmt: skip
    assert (overall.resolution.met, overall.resolution.breached) == (0, 0)
    # The time it took is still measured.
    assert overall.first_response.median_seconds == 45 * 60


# -- the backlog ------------------------------------------------------------------------------------------------------


def test_backlog_buckets_by_age(acme, tess, tom):
    for age in (timedelta(0), timedelta(days=1) - timedelta(seconds=1)):
        ticket(acme, "P3", NOW - age)
    ticket(acme, "P3", NOW - timedelta(days=1), assignee=tess)  # exactly a day: the next bucket
    ticket(acme, "P3", NOW - timedelta(days=3))
    waiting = ticket(acme, "P3", NOW - timedelta(days=7) + timedelta(seconds=1))
    ticket_set_status(ticket=waiting, status=TicketStatus.PENDING_CUSTOMER, now=NOW - timedelta(days=2))
    ticket(acme, "P3", NOW - timedelta(days=7))
    ticket(acme, "P3", NOW - timedelta(days=30), assignee=tom)
    ticket(acme, "P3", NOW - timedelta(days=400))  # long before any window: the backlog is what is open now
    ticket(acme, "P3", NOW - timedelta(days=10), resolved=NOW - timedelta(days=9))  # resolved: not in the backlog
    report = acme_report("technician")
    assert report.overall.backlog_counts == backlog(
        under_1_day=2, days_1_to_3=1, days_3_to_7=2, days_7_to_30=1, over_30_days=2
    )
    assert [(group.label, group.tickets, group.backlog_counts) for group in report.groups] == [
        ("Tess Tech", 1, backlog(days_1_to_3=1)),
        # Only backlog: opened on 21 October, before the window.
        ("Tom Tech", 0, backlog(over_30_days=1)),
        ("Unassigned", 6, backlog(under_1_day=2, days_3_to_7=2, days_7_to_30=1, over_30_days=1)),
    ]


# -- the window -------------------------------------------------------------------------------------------------------


def test_the_window_is_whole_utc_days(acme):
    start, end = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC)
    instant = timedelta(microseconds=1)
    for opened in (start - instant, start, end - instant, end):
        ticket(acme, "P3", opened)
    period = report_period(date(2026, 11, 2), date(2026, 11, 3))
    assert (period.start, period.end) == (start, end)
    assert acme_report(period=period).overall.tickets == 2
    # Monday 2 November 10:59 in Sydney is still 1 November in UTC.
    assert acme_report(period=report_period(date(2026, 11, 1), date(2026, 11, 1))).overall.tickets == 1
    assert acme_report(period=report_period(date(2026, 11, 4), date(2026, 11, 4))).overall.tickets == 1


def test_periods_end_on_or_after_their_start_and_span_at_most_366_days():
    assert report_period(date(2026, 11, 2), date(2026, 11, 2)).end == datetime(2026, 11, 3, tzinfo=UTC)
    assert report_period(date(2024, 1, 1), date(2024, 12, 31)).first == date(2024, 1, 1)  # a leap year: 366 days
    assert report_period(date(2025, 1, 1), date(2026, 1, 1)).last == date(2026, 1, 1)  # 366 days
    with pytest.raises(ValidationError) as backwards:
        report_period(date(2026, 11, 2), date(2026, 11, 1))
    assert backwards.value.message_dict == {"to": ["Must be on or after from."]}
    with pytest.raises(ValidationError) as too_long:
        report_period(date(2025, 1, 1), date(2026, 1, 2))  # 367 days
    assert list(too_long.value.message_dict) == ["to"] and "366" in too_long.value.message_dict["to"][0]


def test_unknown_grouping_is_refused(acme):
    with pytest.raises(ValueError, match="group_by"):
        acme_report("requester")


# -- queries ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 12])
@pytest.mark.parametrize("group_by", [None, "priority", "organization", "technician"])
def test_queries_do_not_grow_with_tickets_or_groups(size, group_by, django_assert_max_num_queries):
    organizations = [OrganizationFactory() for _ in range(min(size, 4))]
    technicians = [UserFactory(is_staff=True) for _ in range(min(size, 5))]
    for index in range(size):
        opened = sydney(2, 9) + timedelta(minutes=15 * index)  # Monday morning
        ticket(organizations[index % len(organizations)], f"P{index % 4 + 1}", opened,
               replied=opened + timedelta(minutes=10), resolved=opened + timedelta(hours=1) if index % 2 else None,
               assignee=technicians[index % len(technicians)])  # fmt: skip
    scope = Ticket.objects.for_orgs(Organization.objects.filter(pk__in=[org.pk for org in organizations]))
    # The counts, the stopped clocks (with their calendars and organizations) and the backlog.
    with django_assert_max_num_queries(3):
        report = sla_report(tickets=scope, start=NOVEMBER.start, end=NOVEMBER.end, group_by=group_by)
    assert report.overall.tickets == size
    assert report.overall.first_response.median_seconds == 600
