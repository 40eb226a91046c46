"""Routing (skills, shifts, weighted load, ties, the unassigned queue) and the SLA breach check (at risk, two levels
of escalation, once per level even when runs overlap, dry runs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

from events.models import Event
from tests.factories import UserFactory
from tests.helpers import race
from tickets import escalation
from tickets.escalation import sla_check
from tickets.models import BusinessCalendar, SlaCheck, SupportSettings, Technician, Ticket, TicketStatus
from tickets.services import ticket_assign, ticket_create, ticket_set_status

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
MONDAY_9 = datetime(2026, 11, 23, 9, tzinfo=SYDNEY)


def technician(email: str, skills: list[str], *, last: datetime | None = None, shift=None) -> Technician:
    user = UserFactory(email=email, is_staff=True)
    return Technician.objects.create(user=user, skills=skills, last_assigned_at=last, shift=shift)


def staff_group(name: str, email: str) -> None:
    user = UserFactory(email=email, is_staff=True)
    Group.objects.get_or_create(name=name)[0].user_set.add(user)


# -- routing -------------------------------------------------------------------------------------------------------


def test_only_technicians_with_every_required_skill_are_chosen(acme):
    technician("generalist@keel.test", ["windows"])
    networker = technician("net@keel.test", ["network", "windows", "firewall"])
    ticket = ticket_create(organization=acme, subject="VPN", required_skills=["network", "firewall"], now=MONDAY_9)
    assert ticket.assignee == networker.user
    assert "net@keel.test" in ticket.routing_reason and "network" in ticket.routing_reason


def test_the_lowest_weighted_load_wins(acme):
    busy = technician("busy@keel.test", [])
    steady = technician("steady@keel.test", [])
    # busy holds one P1 (weight 4); steady three P3s (weight 3): steady is less loaded.
    SupportSettings.objects.create(organization=acme, auto_routing=False)
    ticket_assign(ticket=ticket_create(organization=acme, subject="a", priority="P1"), assignee=busy.user)
    for n in range(3):
        ticket_assign(ticket=ticket_create(organization=acme, subject=f"b{n}", priority="P3"), assignee=steady.user)
    SupportSettings.objects.filter(organization=acme).update(auto_routing=True)
    ticket = ticket_create(organization=acme, subject="next", now=MONDAY_9)
    assert ticket.assignee == steady.user
    assert "open load 3" in ticket.routing_reason


def test_closed_tickets_do_not_count_and_p4_counts_half(acme):
    one = technician("one@keel.test", [])
    two = technician("two@keel.test", [])
    SupportSettings.objects.create(organization=acme, auto_routing=False)
    done = ticket_create(organization=acme, subject="done", priority="P1")
    ticket_assign(ticket=done, assignee=one.user)
    ticket_set_status(ticket=done, status=TicketStatus.CLOSED)
    for n in range(3):  # 3 x 0.5 = 1.5
        ticket_assign(ticket=ticket_create(organization=acme, subject=f"low{n}", priority="P4"), assignee=two.user)
    SupportSettings.objects.filter(organization=acme).update(auto_routing=True)
    assert ticket_create(organization=acme, subject="next").assignee == one.user


def test_ties_go_to_the_least_recently_assigned(acme):
    technician("recent@keel.test", [], last=MONDAY_9 - timedelta(minutes=5))
    earlier = technician("earlier@keel.test", [], last=MONDAY_9 - timedelta(hours=3))
    first = ticket_create(organization=acme, subject="one", priority="P4", now=MONDAY_9)
    assert first.assignee == earlier.user
    assert "tied" in first.routing_reason
    # earlier now holds 0.5 and was just assigned: the next P4 goes to recent.
    second = ticket_create(organization=acme, subject="two", priority="P4", now=MONDAY_9 + timedelta(minutes=1))
    assert second.assignee is not None and second.assignee.email == "recent@keel.test"


def test_technicians_off_shift_or_inactive_are_skipped(acme):
    night = BusinessCalendar.objects.create(name="Nights", timezone="Australia/Sydney", hours=[[0, 1320, 1440]])
    technician("night@keel.test", [], shift=night)
    gone = technician("gone@keel.test", [])
    gone.active = False
    gone.save()
    day = technician("day@keel.test", [])
    assert ticket_create(organization=acme, subject="day", now=MONDAY_9).assignee == day.user


def test_no_eligible_technician_queues_the_ticket_and_tells_managers_once(
    acme, mailoutbox, django_capture_on_commit_callbacks
):
    staff_group("Manager", "manager@keel.test")
    technician("windows@keel.test", ["windows"])
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_create(organization=acme, subject="Mac", required_skills=["macos"], now=MONDAY_9)
    assert ticket.assignee is None
    assert "No active technician" in ticket.routing_reason and "macos" in ticket.routing_reason
    assert [mail.to for mail in mailoutbox] == [["manager@keel.test"]]
    assert "has no technician" in mailoutbox[0].subject
    from tickets.services import ticket_route

    with django_capture_on_commit_callbacks(execute=True):
        ticket_route(ticket=ticket, now=MONDAY_9)
    assert len(mailoutbox) == 1


def test_auto_routing_off_leaves_tickets_unassigned(acme):
    technician("any@keel.test", [])
    SupportSettings.objects.create(organization=acme, auto_routing=False)
    assert ticket_create(organization=acme, subject="manual").assignee is None


def test_unassigning_routes_again(acme):
    first = technician("first@keel.test", [], last=MONDAY_9 - timedelta(hours=2))
    second = technician("second@keel.test", [], last=MONDAY_9 - timedelta(hours=1))
    ticket = ticket_create(organization=acme, subject="again", now=MONDAY_9)
    assert ticket.assignee == first.user
    second.active = False
    second.save()
    ticket = ticket_assign(ticket=ticket, assignee=None)
    assert ticket.assignee == first.user  # the only one eligible


# -- the breach check ------------------------------------------------------------------------------------------------


@pytest.fixture
def on_call(acme):
    staff_group("Manager", "manager@keel.test")
    staff_group("Admin", "admin@keel.test")
    return technician("oncall@keel.test", [])


def test_at_risk_tells_the_assignee_once(acme, on_call, mailoutbox, django_capture_on_commit_callbacks):
    ticket = ticket_create(organization=acme, subject="Slow", priority="P1", now=MONDAY_9)
    # 80 % of the 2 h first response: 10:36.
    assert sla_check(now=MONDAY_9 + timedelta(minutes=95)).checked == 0
    with django_capture_on_commit_callbacks(execute=True):
        report = sla_check(now=MONDAY_9 + timedelta(minutes=97))
        again = sla_check(now=MONDAY_9 + timedelta(minutes=98))
    assert report.actions == ["T-1001: first response at risk, told oncall@keel.test"]
    assert again.actions == []
    assert [mail.to for mail in mailoutbox] == [["oncall@keel.test"]]
    ticket.refresh_from_db()
    assert ticket.first_response_state == "at_risk"
    assert ticket.sla_next_check_at == datetime(2026, 11, 23, 11, tzinfo=SYDNEY)
    assert Event.objects.filter(type="ticket.sla_at_risk").count() == 1


def test_breaches_escalate_to_managers_then_admins_with_a_priority_rise(
    acme, on_call, mailoutbox, django_capture_on_commit_callbacks
):
    ticket = ticket_create(organization=acme, subject="Down", priority="P2", now=MONDAY_9)
    with django_capture_on_commit_callbacks(execute=True):
        sla_check(now=MONDAY_9 + timedelta(hours=4, minutes=1))  # P2 first response 4 h: breached
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1
    assert ticket.priority == "P2"
    assert ["manager@keel.test"] in [mail.to for mail in mailoutbox]
    # Level 2 half a target (2 business hours) after the breach, at 15:00.
    assert ticket.sla_next_check_at == datetime(2026, 11, 23, 15, tzinfo=SYDNEY)
    with django_capture_on_commit_callbacks(execute=True):
        report = sla_check(now=datetime(2026, 11, 23, 15, 1, tzinfo=SYDNEY))
    ticket.refresh_from_db()
    assert ticket.escalation_level == 2
    assert ticket.priority == "P1"
    assert ticket.first_response_target == timedelta(hours=2)
    assert any("level 2, priority P1" in action for action in report.actions)
    assert ["admin@keel.test"] in [mail.to for mail in mailoutbox]
    # Checked first when already breached: no at-risk warning was due any more.
    assert sorted(ticket.notices_sent) == ["breach_level_1", "breach_level_2"]
    assert sla_check(now=datetime(2026, 11, 24, 15, tzinfo=SYDNEY)).actions == []


def test_a_dry_run_reports_and_changes_nothing(acme, on_call, mailoutbox, django_capture_on_commit_callbacks):
    ticket = ticket_create(organization=acme, subject="Down", priority="P1", now=MONDAY_9)
    later = MONDAY_9 + timedelta(hours=3)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        report = sla_check(now=later, dry_run=True)
    assert any("breached, level 1" in action for action in report.actions)
    ticket.refresh_from_db()
    assert ticket.escalation_level == 0 and ticket.notices_sent == {} and mailoutbox == []
    call_command("check_sla_breaches", "--dry-run", stdout=out)
    assert "would be acted on" in out.getvalue()
    ticket.refresh_from_db()
    assert ticket.notices_sent == {}


def test_many_due_tickets_are_checked_in_batches_once_each_dry_or_not(acme, on_call, monkeypatch):
    monkeypatch.setattr(escalation, "BATCH", 2)
    tickets = [ticket_create(organization=acme, subject=f"Down {n}", priority="P1", now=MONDAY_9) for n in range(5)]
    later = MONDAY_9 + timedelta(hours=2, minutes=30)  # first response (2 h) breached, not yet level 2
    dry = sla_check(now=later, dry_run=True)  # every ticket stays due: paging must still end
    assert dry.checked == 5 and not Ticket.objects.exclude(notices_sent={}).exists()
    real = sla_check(now=later)
    assert real.checked == 5
    assert {ticket.escalation_level for ticket in Ticket.objects.filter(pk__in=[t.pk for t in tickets])} == {1}
    assert sla_check(now=later).checked == 0


def test_paused_and_resolved_tickets_are_left_alone(acme, on_call):
    paused = ticket_create(organization=acme, subject="Waiting", priority="P1", now=MONDAY_9)
    ticket_set_status(ticket=paused, status=TicketStatus.PENDING_CUSTOMER, now=MONDAY_9 + timedelta(minutes=5))
    done = ticket_create(organization=acme, subject="Done", priority="P1", now=MONDAY_9)
    ticket_set_status(ticket=done, status=TicketStatus.RESOLVED, now=MONDAY_9 + timedelta(minutes=5))
    report = sla_check(now=MONDAY_9 + timedelta(days=3))
    assert Ticket.objects.get(pk=done.pk).notices_sent == {}
    # The paused ticket's first response still runs (only a staff reply stops it); its resolution clock is paused.
    assert Ticket.objects.get(pk=paused.pk).resolution_state == "paused"
    assert all("T-1002" not in action for action in report.actions)


def queued(ticket: Ticket) -> datetime | None:
    return SlaCheck.objects.filter(ticket=ticket).values_list("due_at", flat=True).first()


def test_the_check_queue_follows_each_ticket_next_check(acme, on_call):
    ticket = ticket_create(organization=acme, subject="Down", priority="P1", now=MONDAY_9)
    assert queued(ticket) == ticket.sla_next_check_at == datetime(2026, 11, 23, 10, 36, tzinfo=SYDNEY)
    sla_check(now=MONDAY_9 + timedelta(minutes=97))  # at risk: next, the breach at 11:00
    assert queued(ticket) == datetime(2026, 11, 23, 11, tzinfo=SYDNEY)
    ticket_set_status(ticket=ticket, status=TicketStatus.RESOLVED, now=MONDAY_9 + timedelta(minutes=98))
    assert queued(ticket) is None  # nothing left to check
    ticket_set_status(ticket=ticket, status=TicketStatus.OPEN, now=MONDAY_9 + timedelta(minutes=99))
    ticket.refresh_from_db()
    assert queued(ticket) == ticket.sla_next_check_at is not None
    ticket.delete()
    assert not SlaCheck.objects.exists()


def test_the_check_reads_only_the_queue(acme, on_call):
    # A ticket off the queue is not read, whatever its columns say; one on it is, and is filed again.
    off = ticket_create(organization=acme, subject="Off", priority="P1", now=MONDAY_9)
    on = ticket_create(organization=acme, subject="On", priority="P1", now=MONDAY_9)
    SlaCheck.objects.filter(ticket=off).delete()
    report = sla_check(now=MONDAY_9 + timedelta(hours=2, minutes=30))
    assert report.checked == 1 and [action.split(":")[0] for action in report.actions] == ["T-1002"]
    on.refresh_from_db()
    assert queued(on) == on.sla_next_check_at == datetime(2026, 11, 23, 12, tzinfo=SYDNEY)  # level 2 at 12:00


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_notify_once_per_level(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    staff_group("Manager", "manager@keel.test")
    technician("oncall@keel.test", [])
    for n in range(6):
        ticket_create(organization=acme, subject=f"Down {n}", priority="P1", now=MONDAY_9)
    # P1: first response due 11:00; level 2 would come at 12:00.
    reports = race(lambda: sla_check(now=MONDAY_9 + timedelta(hours=2, minutes=30)), 3)
    actions = [action for report in reports for action in report.actions]
    assert len([action for action in actions if "level 1" in action]) == 6
    assert Ticket.objects.filter(notices_sent__has_key="breach_level_1").count() == 6
    assert set(Ticket.objects.values_list("escalation_level", flat=True)) == {1}
