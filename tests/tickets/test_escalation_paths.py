"""The breach check's two ways of settling a batch agree.

On PostgreSQL a batch is settled by one statement from the instants the last reading stored (``escalation_sql``);
elsewhere, and for what that statement leaves, Python reads every clock afresh (``escalation._check_batch``). For
random tickets, replies, pauses and check times, both must leave the same tickets, queue, notices, activity, events
and report.
"""

from __future__ import annotations

import functools
import json
from contextlib import nullcontext
from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import Event
from tests.factories import OrganizationFactory, UserFactory
from tests.helpers import race
from tickets import escalation
from tickets.escalation import sla_check
from tickets.models import BusinessCalendar, SlaCheck, Ticket, TicketActivity, TicketStatus
from tickets.services import comment_add, ticket_create, ticket_set_status

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
MONDAY_9 = datetime(2026, 11, 23, 9, tzinfo=SYDNEY)
MINUTE = timedelta(minutes=1)


def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the single-statement batch is PostgreSQL's")


def outcome(report: escalation.CheckReport) -> dict[str, object]:
    """Everything a check run leaves behind, in a stable order."""
    tickets = list(
        Ticket.objects.order_by("organization__slug", "number").values_list(
            "number",
            "status",
            "priority",
            "first_response_state",
            "resolution_state",
            "escalation_level",
            "notices_sent",
            "sla_next_check_at",
            "first_response_risk_at",
            "resolution_risk_at",
            "first_response_due",
            "resolution_due",
            "first_response_target",
            "resolution_target",
        )
    )
    return {
        "checked": report.checked,
        "actions": sorted(report.actions),  # a batch announces what its statement settled first
        "tickets": tickets,
        "queue": sorted(SlaCheck.objects.values_list("ticket__number", "due_at")),
        "activity": sorted(TicketActivity.objects.filter(kind="escalation").values_list("ticket__number", "message")),
        "events": sorted(
            (e.type, json.dumps(e.payload, sort_keys=True)) for e in Event.objects.filter(type__startswith="ticket.sla")
        ),
    }


def both_ways(now: datetime) -> tuple[dict[str, object], dict[str, object]]:
    """The check at ``now`` by the statement and by Python, each rolled back."""
    results = []
    for python in (False, True):
        with transaction.atomic():
            with (
                mock.patch.object(escalation, "_statement_batch", escalation._python_batch) if python else nullcontext()
            ):
                results.append(outcome(sla_check(now=now)))
            transaction.set_rollback(True)
    return results[0], results[1]


# One ticket's story: when it opens (minutes after Monday 09:00), its priority, and what happens to it later.
STEPS = st.sampled_from(["reply", "wait", "resume", "hold", "resolve", "reopen"])
stories = st.lists(
    st.tuples(
        st.integers(0, 600),
        st.sampled_from(["P1", "P2", "P3", "P4"]),
        st.booleans(),  # the round-the-clock organization
        st.lists(st.tuples(st.integers(1, 900), STEPS), max_size=3),
    ),
    min_size=1,
    max_size=5,
)
check_times = st.lists(st.integers(0, 72 * 60), min_size=1, max_size=4).map(sorted)


def play(stories_: list, organizations: list) -> list[tuple[int, Ticket, str]]:
    """Open the tickets; return their later steps, (minute, ticket, step), in time order."""
    steps = []
    for n, (opened, priority, always, later) in enumerate(stories_):
        ticket = ticket_create(organization=organizations[always], subject=f"Story {n}", priority=priority,
                               now=MONDAY_9 + opened * MINUTE)  # fmt: skip
        steps += [(opened + after, ticket, step) for after, step in later]
    return sorted(steps, key=lambda item: item[0])


def apply(ticket: Ticket, step: str, at: datetime, staff) -> None:
    ticket.refresh_from_db()
    if step == "reply":
        comment_add(ticket=ticket, body="On it.", author=staff, by_staff=True, now=at)
        return
    status = {
        "wait": TicketStatus.PENDING_CUSTOMER,
        "hold": TicketStatus.ON_HOLD,
        "resume": TicketStatus.OPEN,
        "resolve": TicketStatus.RESOLVED,
        "reopen": TicketStatus.OPEN,
    }[step]
    if step == "reopen" and ticket.status != TicketStatus.RESOLVED:
        return
    if ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) and step != "reopen":
        return
    ticket_set_status(ticket=ticket, status=status, now=at)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stories_=stories, checks=check_times)
def test_the_statement_and_python_settle_a_batch_alike(acme, stories_, checks):
    needs_postgresql()
    with transaction.atomic():
        enterprise = OrganizationFactory(name="Round the clock", slug="round", tier="ENTERPRISE",
                                         timezone="America/New_York")  # fmt: skip
        staff = UserFactory(email="tech@keel.test", is_staff=True)
        steps = play(stories_, [acme, enterprise])
        for minute in checks:
            now = MONDAY_9 + minute * MINUTE
            while steps and steps[0][0] <= minute:
                at, ticket, step = steps.pop(0)
                apply(ticket, step, MONDAY_9 + at * MINUTE, staff)
            statement, python = both_ways(now)
            assert statement == python
            sla_check(now=now)  # then for real, so the next check starts where both left off
        transaction.set_rollback(True)


def test_tickets_queued_again_by_a_calendar_change_are_read_afresh(acme):
    needs_postgresql()
    ticket = ticket_create(organization=acme, subject="Down", priority="P1", now=MONDAY_9)
    assert ticket.first_response_risk_at == datetime(2026, 11, 23, 10, 36, tzinfo=SYDNEY)
    # Monday becomes a holiday after the ticket opened: nothing of the first response has run yet, then.
    calendar = ticket.sla_calendar
    assert isinstance(calendar, BusinessCalendar)
    calendar.holidays = [*calendar.holidays, "2026-11-23"]
    calendar.save()
    assert SlaCheck.objects.get(ticket=ticket).due_at != ticket.sla_next_check_at  # queued for a fresh reading
    report = sla_check(now=MONDAY_9 + timedelta(minutes=97))  # past the stored at-risk instant
    assert report.actions == []
    ticket.refresh_from_db()
    assert ticket.first_response_state == "ok"
    assert ticket.first_response_risk_at == datetime(2026, 11, 24, 9, 36, tzinfo=SYDNEY)
    assert SlaCheck.objects.get(ticket=ticket).due_at == ticket.sla_next_check_at


def test_a_row_without_risk_instants_is_read_afresh(acme):
    needs_postgresql()
    ticket = ticket_create(organization=acme, subject="Down", priority="P1", now=MONDAY_9)
    Ticket.objects.filter(pk=ticket.pk).update(first_response_risk_at=None, resolution_risk_at=None)
    report = sla_check(now=MONDAY_9 + timedelta(minutes=97))
    assert report.actions == ["T-1001: first response at risk, told nobody"]
    ticket.refresh_from_db()
    assert ticket.resolution_risk_at is not None


@pytest.mark.django_db(transaction=True)
def test_many_runs_at_once_tell_each_notice_once(acme):
    needs_postgresql()
    for n in range(30):
        ticket_create(organization=acme, subject=f"Down {n}", priority="P1", now=MONDAY_9 + timedelta(seconds=n))
    for minutes in (97, 150, 200):  # at risk (10:36); breached (11:00); the second level (12:00)
        now = MONDAY_9 + minutes * MINUTE
        reports = race(functools.partial(sla_check, now=now), 4)
        actions = [action for report in reports for action in report.actions]
        assert len(actions) == len(set(actions))
    sent = [kind for notices in Ticket.objects.values_list("notices_sent", flat=True) for kind in notices]
    assert sent.count("first_response_at_risk") == 30
    assert sent.count("breach_level_1") == sent.count("breach_level_2") == 30
    assert Event.objects.filter(type="ticket.sla_at_risk").count() == 30
    assert Event.objects.filter(type="ticket.sla_breached").count() == 60
    assert set(Ticket.objects.values_list("escalation_level", "priority")) == {(2, "P1")}
