"""The service-desk demo (``tickets.demo``, part of ``manage.py seed_demo``): technicians with skills and shifts,
canned responses, and tickets in every status and every SLA state for each demo organization, whatever the day and
hour it runs; running it again creates nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Model

from tenancy import demo as tenancy_demo
from tenancy.models import Organization
from tickets import demo
from tickets.models import (
    BusinessCalendar,
    CannedResponse,
    ClockState,
    Comment,
    SatisfactionResponse,
    Technician,
    Ticket,
    TicketActivity,
    TicketStatus,
    TimeEntry,
)

pytestmark = pytest.mark.django_db

COUNTED: list[type[Model]] = [
    Ticket,
    Comment,
    TimeEntry,
    SatisfactionResponse,
    TicketActivity,
    Technician,
    CannedResponse,
    BusinessCalendar,
]


def counts() -> dict[str, int]:
    return {model.__name__: model._default_manager.count() for model in COUNTED}


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 21, 6, 0, tzinfo=UTC),  # Saturday 17:00 in Sydney, Saturday 01:00 in New York
        datetime(2026, 11, 10, 0, 30, tzinfo=UTC),  # Tuesday 11:30 in Sydney, Monday evening in New York
        datetime(2026, 10, 5, 21, 0, tzinfo=UTC),  # Tuesday 08:00 in Sydney, two days after its clocks went forward
        datetime(2027, 1, 4, 15, 0, tzinfo=UTC),  # Monday 10:00 in New York, just after the New Year holidays
    ],
    ids=["weekend", "weekday", "after-dst", "after-new-year"],
)
def test_every_organization_has_tickets_in_every_status_and_sla_state(moment):
    with time_machine.travel(moment, tick=False):
        tenancy_demo.seed()
        lines = demo.seed()
    assert any(line.startswith("Technician technician@keel.test: network, windows, m365") for line in lines)
    for organization in Organization.objects.filter(slug__in=demo.STORIES):
        tickets = list(Ticket.objects.for_org(organization))
        assert len(tickets) == len(demo.STORIES[organization.slug]) == 8
        assert {ticket.status for ticket in tickets} == set(TicketStatus.values), organization.slug
        assert {ticket.resolution_state for ticket in tickets} == set(ClockState.values), organization.slug
        assert {ticket.first_response_state for ticket in tickets} == {
            ClockState.OK,
            ClockState.BREACHED,
            ClockState.MET,
        }
        by_recipe = {story.recipe: story.subject for story in demo.STORIES[organization.slug]}
        state = {ticket.subject: (ticket.status, ticket.first_response_state, ticket.resolution_state)
                 for ticket in tickets}  # fmt: skip
        assert state[by_recipe["new_ok"]] == (TicketStatus.NEW, ClockState.OK, ClockState.OK)
        assert state[by_recipe["new_breached"]][:2] == (TicketStatus.NEW, ClockState.BREACHED)
        assert state[by_recipe["open_at_risk"]] == (TicketStatus.OPEN, ClockState.MET, ClockState.AT_RISK)
        assert state[by_recipe["pending"]] == (TicketStatus.PENDING_CUSTOMER, ClockState.MET, ClockState.PAUSED)
        assert state[by_recipe["on_hold"]] == (TicketStatus.ON_HOLD, ClockState.MET, ClockState.PAUSED)
        assert state[by_recipe["resolved_met"]] == (TicketStatus.RESOLVED, ClockState.MET, ClockState.MET)
        assert state[by_recipe["closed_breached"]] == (
            TicketStatus.CLOSED, ClockState.BREACHED, ClockState.BREACHED,
        )  # fmt: skip
        # Opened in the past, numbered in order of the stories, all but the unroutable one assigned.
        assert all(ticket.created_at < moment for ticket in tickets)
        assert sorted(ticket.number for ticket in tickets) == list(range(1001, 1009))
        unassigned = [ticket.subject for ticket in tickets if ticket.assignee_id is None]
        assert unassigned == [by_recipe["new_ok"]]
        # Conversations with public replies and internal notes, time and ratings.
        comments = Comment.objects.for_org(organization)
        assert comments.filter(internal=True).exists() and comments.filter(by_staff=True, internal=False).exists()
        assert comments.filter(by_staff=False).exists()
        assert all(comment.created_at <= moment for comment in comments)
        assert TimeEntry.objects.for_org(organization).count() == 5
        assert sorted(SatisfactionResponse.objects.for_org(organization).values_list("rating", flat=True)) == [2, 4, 5]
    technicians = {tech.user.email: tech for tech in Technician.objects.select_related("user", "shift")}
    assert set(technicians) == {"technician@keel.test", "manager@keel.test", "admin@keel.test"}
    assert technicians["admin@keel.test"].shift is not None and technicians["admin@keel.test"].shift.always_open
    assert "backup" in technicians["manager@keel.test"].skills
    assert CannedResponse.objects.filter(organization=None).count() == len(demo.CANNED)


def test_seeding_twice_creates_nothing_new():
    tenancy_demo.seed()
    demo.seed()
    first = counts()
    assert first["Ticket"] == 24
    tenancy_demo.seed()
    lines = demo.seed()
    assert counts() == first
    assert sum("T-1001 to T-1008" in line for line in lines) == 3


def test_without_demo_staff_nothing_is_seeded():
    assert demo.seed()[-1] == "No demo staff to work tickets: run the tenancy demo first."
    assert not Ticket.objects.exists()


def test_seed_demo_prints_the_support_tickets(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    section = out[out.index("Support tickets:") :]
    assert "Technician admin@keel.test" in section and "Acme Pty Ltd" in section and "1 at risk" in section
    # The support demo's 24, and the one NinjaOne alert the integrations demo opens after it.
    assert Ticket.objects.exclude(channel="ninjaone").count() == 24
    assert Ticket.objects.filter(channel="ninjaone").count() == 1
