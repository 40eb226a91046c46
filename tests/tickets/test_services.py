"""Ticket services: numbering, SLA clocks as stored on the ticket (business hours, holidays, 24x7, pauses, priority
changes, reopening, first response), validation and the requester's email."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from events.models import Event
from tenancy.models import Tier
from tests.factories import OrganizationFactory, UserFactory
from tests.helpers import race
from tickets.models import BusinessCalendar, ClockState, SlaPolicy, Ticket, TicketActivity, TicketStatus
from tickets.services import comment_add, ticket_create, ticket_set_priority, ticket_set_status

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")


def sydney(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SYDNEY)


@pytest.fixture
def tech(db):
    return UserFactory(email="tess@keel.test", full_name="Tess Tech", is_staff=True)


def test_numbers_are_sequential_per_organization(acme, globex, alice):
    first = ticket_create(organization=acme, subject="Printer", requester=alice)
    second = ticket_create(organization=acme, subject="Email")
    other = ticket_create(organization=globex, subject="VPN")
    assert [first.reference, second.reference, other.reference] == ["T-1001", "T-1002", "T-1001"]
    assert str(first) == "T-1001 Printer"


@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_never_repeats_a_number(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    outcomes = race(lambda: ticket_create(organization=acme, subject="Same time").number, 4)
    assert sorted(outcomes) == [1001, 1002, 1003, 1004]


def test_core_plus_p1_on_a_friday_evening_is_due_on_monday(acme, alice):
    # Friday 17:00 Sydney: one business hour left that day, then Monday from 08:00.
    ticket = ticket_create(organization=acme, subject="Server down", priority="P1", requester=alice,
                           now=sydney(20, 17))  # fmt: skip
    assert ticket.first_response_target == timedelta(hours=2)
    assert ticket.first_response_due == sydney(23, 9)
    assert ticket.resolution_due == sydney(23, 15)
    assert ticket.first_response_state == ClockState.OK
    assert ticket.sla_calendar is not None and ticket.sla_calendar.organization == acme
    # At risk at 80 % of the two hours: 1 h 36 min of business time, Monday 08:36.
    assert ticket.sla_next_check_at == sydney(23, 8, 36)
    assert TicketActivity.objects.filter(ticket=ticket, kind="created").count() == 1
    assert Event.objects.get(organization=acme, type="ticket.created").payload["number"] == "T-1001"


def test_the_organizations_public_holidays_are_skipped(acme):
    # Thursday 24 December 17:00: one hour that day; Christmas Friday is a public holiday, then the weekend.
    ticket = ticket_create(organization=acme, subject="Holiday", priority="P1", now=sydney(24, 17, month=12))
    assert ticket.first_response_due == datetime(2026, 12, 28, 9, 0, tzinfo=SYDNEY)
    holidays = BusinessCalendar.objects.get(organization=acme).holidays
    assert "2026-12-25" in holidays and "2027-01-26" in holidays


def test_enterprise_p1_runs_around_the_clock():
    org = OrganizationFactory(slug="bigco", tier=Tier.ENTERPRISE)
    ticket = ticket_create(organization=org, subject="Outage", priority="P1", now=sydney(22, 3))  # a Sunday, 03:00
    assert ticket.first_response_due == sydney(22, 3, 15)
    assert ticket.resolution_due == sydney(22, 7)
    p2 = ticket_create(organization=org, subject="Slow", priority="P2", now=sydney(22, 3))
    assert p2.first_response_due == sydney(23, 9)


def test_an_organizations_own_policy_overrides_its_tier(acme):
    SlaPolicy.objects.create(
        name="Acme special", organization=acme, at_risk_ratio="0.50",
        targets={"P3": {"first_response": 30, "resolution": 120}},
    )  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Custom", priority="P3", now=sydney(23, 9))
    assert ticket.first_response_due == sydney(23, 9, 30)
    assert ticket.resolution_due == sydney(23, 11)
    assert ticket.sla_next_check_at == sydney(23, 9, 15)


def test_the_first_public_staff_reply_stops_the_first_response_clock(acme, alice, tech, mailoutbox,
                                                                     django_capture_on_commit_callbacks):  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Help", requester=alice, priority="P2", now=sydney(23, 9))
    comment_add(ticket=ticket, body="Looking now (internal)", author=tech, by_staff=True, internal=True,
                now=sydney(23, 9, 30))  # fmt: skip
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None and ticket.status == TicketStatus.NEW
    with django_capture_on_commit_callbacks(execute=True):
        comment_add(ticket=ticket, body="We are on it.", author=tech, by_staff=True, now=sydney(23, 10))
    ticket.refresh_from_db()
    assert ticket.first_responded_at == sydney(23, 10)
    assert ticket.status == TicketStatus.OPEN
    assert ticket.first_response_state == ClockState.MET
    (mail,) = mailoutbox
    assert mail.to == ["alice@acme.test"]
    assert mail.subject.startswith("[T-1001]") and "We are on it." in mail.body


def test_a_late_first_response_is_breached(acme, tech):
    ticket = ticket_create(organization=acme, subject="Help", priority="P1", now=sydney(23, 9))
    comment_add(ticket=ticket, body="Sorry for the wait", author=tech, by_staff=True, now=sydney(23, 11, 1))
    ticket.refresh_from_db()
    assert ticket.first_response_state == ClockState.BREACHED


def test_waiting_on_the_customer_pauses_the_resolution_clock(acme, alice, tech):
    ticket = ticket_create(organization=acme, subject="Laptop", requester=alice, priority="P1", now=sydney(23, 9))
    assert ticket.resolution_due == sydney(23, 17)
    waiting = ticket_set_status(ticket=ticket, status=TicketStatus.PENDING_CUSTOMER, actor=tech, now=sydney(23, 10))
    assert waiting.resolution_state == ClockState.PAUSED
    assert waiting.resolution_due is None
    assert waiting.sla_remaining_seconds is not None  # the first-response clock still runs
    # The customer answers two business hours later: the ticket reopens and the due time moves by two hours.
    comment_add(ticket=ticket, body="Here is the log", author=alice, now=sydney(23, 12))
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.status == TicketStatus.OPEN
    assert ticket.resolution_due == sydney(24, 9)


def test_a_pause_outside_business_hours_moves_nothing(acme, tech):
    ticket = ticket_create(organization=acme, subject="Overnight", priority="P2", now=sydney(23, 17))
    due = ticket.resolution_due
    ticket_set_status(ticket=ticket, status=TicketStatus.ON_HOLD, now=sydney(23, 19))
    ticket_set_status(ticket=ticket, status=TicketStatus.OPEN, now=sydney(24, 7))
    ticket.refresh_from_db()
    assert ticket.resolution_due == due


def test_changing_priority_recomputes_from_the_start_keeping_paused_time(acme, tech):
    ticket = ticket_create(organization=acme, subject="Disk", priority="P4", now=sydney(23, 9))
    ticket_set_status(ticket=ticket, status=TicketStatus.ON_HOLD, now=sydney(23, 10))
    ticket_set_status(ticket=ticket, status=TicketStatus.OPEN, now=sydney(23, 11))
    ticket = ticket_set_priority(ticket=ticket, priority="P1", actor=tech, now=sydney(23, 12))
    # P1 Core+: 8 h resolution from 09:00, plus the hour on hold: 18:00. First response 2 h: 11:00, already past.
    assert ticket.resolution_due == sydney(23, 18)
    assert ticket.first_response_due == sydney(23, 11)
    assert ticket.first_response_state == ClockState.BREACHED
    assert ticket.sla_next_check_at == sydney(23, 11)  # breached and not yet escalated: check at once
    assert TicketActivity.objects.filter(ticket=ticket, kind="priority").exists()


def test_resolving_stops_and_reopening_resumes_without_the_resolved_time(acme, tech):
    ticket = ticket_create(organization=acme, subject="Wifi", priority="P1", now=sydney(23, 9))
    comment_add(ticket=ticket, body="Fixed", author=tech, by_staff=True, now=sydney(23, 9, 30))
    ticket = ticket_set_status(ticket=ticket, status=TicketStatus.RESOLVED, now=sydney(23, 10))
    assert ticket.resolution_state == ClockState.MET
    assert ticket.sla_next_check_at is None
    ticket = ticket_set_status(ticket=ticket, status=TicketStatus.OPEN, now=sydney(23, 13))
    # One business hour used before resolving; seven remain from 13:00.
    assert ticket.resolution_due == sydney(24, 10)
    assert ticket.resolved_at is None
    assert ticket.resolution_state == ClockState.OK


def test_a_customer_reply_reopens_a_resolved_ticket_but_a_staff_note_does_not(acme, tech):
    customer = UserFactory(email="cust@acme.test")
    ticket = ticket_create(organization=acme, subject="Wifi", priority="P1", requester=customer, now=sydney(23, 9))
    comment_add(ticket=ticket, body="Fixed", author=tech, by_staff=True, now=sydney(23, 9, 30))
    ticket = ticket_set_status(ticket=ticket, status=TicketStatus.RESOLVED, now=sydney(23, 10))
    comment_add(ticket=ticket, body="Closing note", author=tech, by_staff=True, internal=True, now=sydney(23, 11))
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.RESOLVED
    reply = comment_add(ticket=ticket, body="Still down on level 2", author=customer, now=sydney(23, 13))
    reopened = Ticket.objects.get(pk=ticket.pk)
    assert reply.ticket.status == reopened.status == TicketStatus.OPEN
    assert reopened.resolved_at is None
    # One business hour used before resolving; seven remain from the reply at 13:00.
    assert reopened.resolution_due == sydney(24, 10)


def test_closing_without_resolving_records_a_resolution(acme):
    ticket = ticket_create(organization=acme, subject="Dup", now=sydney(23, 9))
    ticket = ticket_set_status(ticket=ticket, status=TicketStatus.CLOSED, now=sydney(23, 9, 5))
    assert ticket.resolved_at == sydney(23, 9, 5) and ticket.closed_at == sydney(23, 9, 5)
    assert Event.objects.filter(organization=acme, type="ticket.closed").exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subject": " "}, "subject"),
        ({"subject": "x" * 201}, "subject"),
        ({"priority": "P9"}, "priority"),
        ({"channel": "pigeon"}, "channel"),
        ({"tags": "urgent"}, "tags"),
        ({"tags": [f"tag{n}" for n in range(21)]}, "tags"),
        ({"required_skills": [1, 2]}, "required_skills"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(acme, fields, field):
    from tenancy.errors import ServiceValidationError

    with pytest.raises(ServiceValidationError) as raised:
        ticket_create(organization=acme, **{"subject": "Fine", **fields})
    assert field in raised.value.message_dict
    assert not Ticket.objects.exists()


def test_comments_and_status_refuse_bad_input(acme, alice):
    from tenancy.errors import ServiceValidationError

    ticket = ticket_create(organization=acme, subject="Fine")
    with pytest.raises(ServiceValidationError):
        comment_add(ticket=ticket, body="  ", author=alice)
    with pytest.raises(ServiceValidationError):
        comment_add(ticket=ticket, body="secret", author=alice, internal=True)
    with pytest.raises(ServiceValidationError):
        ticket_set_status(ticket=ticket, status="DONE")
    with pytest.raises(ServiceValidationError):
        ticket_set_priority(ticket=ticket, priority="urgent")


def test_a_country_without_known_holidays_gets_an_empty_list():
    org = OrganizationFactory(slug="nowhere", country="ZZ", timezone="UTC")
    ticket = ticket_create(
        organization=org, subject="Hello", priority="P1", now=datetime(2026, 11, 23, 9, tzinfo=SYDNEY)
    )
    assert BusinessCalendar.objects.get(organization=org).holidays == []
    assert ticket.first_response_due is not None


def test_merging_moves_the_conversation_and_tells_the_requester(acme, globex, alice, tech, mailoutbox,
                                                                 django_capture_on_commit_callbacks):  # fmt: skip
    from tenancy.errors import ServiceValidationError
    from tickets.models import Comment
    from tickets.services import ticket_merge

    keep = ticket_create(organization=acme, subject="Printer offline", requester=alice, now=sydney(23, 9))
    duplicate = ticket_create(organization=acme, subject="Printer broken", requester=alice, now=sydney(23, 9, 5))
    comment_add(ticket=duplicate, body="It shows error 49", author=alice, now=sydney(23, 9, 6))
    with django_capture_on_commit_callbacks(execute=True):
        ticket_merge(ticket=duplicate, into=keep, actor=tech)
    duplicate.refresh_from_db()
    assert duplicate.merged_into == keep and duplicate.status == TicketStatus.CLOSED
    assert list(Comment.objects.filter(ticket=keep).values_list("body", flat=True)) == ["It shows error 49"]
    (mail,) = mailoutbox
    assert mail.to == ["alice@acme.test"] and "T-1001" in mail.subject and "T-1002" in mail.subject
    other = ticket_create(organization=globex, subject="Elsewhere")
    with pytest.raises(ServiceValidationError):
        ticket_merge(ticket=other, into=keep)
