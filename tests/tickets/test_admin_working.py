"""The technicians' working screens in the staff admin, the list: queues, search and query count; the bulk actions
(all or nothing, through the services); who may use them. The ticket page is tested in test_admin_ticket_page.py.

Time is frozen on Tuesday 10 November 2026, 10:00 in Sydney. Acme is on Core+ (P1 first response 2 h, P2 4 h,
P3 8 h; resolution P2 16 h, P3 40 h; at risk at 80 %), business hours Monday to Friday 08:00-18:00.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages

from tenancy.models import AuditEvent, User
from tests.factories import UserFactory
from tests.helpers import admin_client
from tickets import admin_actions
from tickets.clocks import SLA_FIELDS, clocks_refresh
from tickets.models import (
    ClockState,
    Comment,
    Ticket,
    TicketActivity,
    TicketStatus,
    TimeEntry,
)
from tickets.services import (
    ticket_assign,
    ticket_create,
    ticket_merge,
    ticket_set_status,
    ticket_update,
)

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 11, 10, 10, 0, tzinfo=SYDNEY)  # a Tuesday
LIST = "/admin/tickets/ticket/"


def page_url(ticket: Ticket, suffix: str = "change/") -> str:
    return f"{LIST}{ticket.pk}/{suffix}"


def message_texts(response: Any) -> list[str]:
    """The messages this response adds (the test client does not follow redirects, so earlier ones are still
    queued before them)."""
    storage: Any = get_messages(response.wsgi_request)
    return [str(message) for message in storage._queued_messages]


def listed(response: Any) -> set[str]:
    return {ticket.reference for ticket in response.context["cl"].result_list}


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.get(pk=ticket.pk)


def reread_clocks(*tickets: Ticket) -> None:
    """Store the clocks' reading now, as the breach check does every few minutes."""
    for ticket in tickets:
        row = fresh(ticket)
        clocks_refresh(row)
        row.save(update_fields=SLA_FIELDS)


def by_pk(tickets: list[Ticket]) -> list[Ticket]:
    """In the order the bulk services work through them, so a test can put the bad one last."""
    return sorted(tickets, key=lambda ticket: str(ticket.pk))


@pytest.fixture
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def staff(db: Any) -> User:
    return UserFactory(email="sam@keel.test", full_name="Sam Staff", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff: User) -> Any:
    """Signed in to the admin past its one-time-password step."""
    client = admin_client(staff)
    assert client.get("/admin/").status_code == 200
    return client


@pytest.fixture
def tess(db: Any) -> User:
    """A technician: staff with exactly the Technician group's permissions."""
    from django.contrib.auth.models import Group

    user = UserFactory(email="tess@keel.test", full_name="Tess Tech", is_staff=True)
    user.groups.add(Group.objects.get(name="Technician"))
    return user


@pytest.fixture
def ticket(frozen, acme, alice) -> Ticket:
    return ticket_create(organization=acme, subject="Printer on level 2 is offline", requester=alice, priority="P2",
                         description="It shows error 49.")  # fmt: skip


def bulk(client: Any, action: str, tickets: list[Ticket], **extra: Any) -> Any:
    data = {"action": action, "_selected_action": [str(ticket.pk) for ticket in tickets], **extra}
    if "apply" not in extra:
        data["index"] = "0"
    return client.post(LIST, data)


# -- the list -------------------------------------------------------------------------------------------------------


def test_queues_list_open_tickets_that_are_mine_unassigned_at_risk_or_breached(
    frozen, staff_client, staff, tess, acme, globex
):
    mine = ticket_create(organization=acme, subject="Mine", priority="P3")
    ticket_assign(ticket=mine, assignee=staff)
    theirs = ticket_create(organization=globex, subject="Tess's", priority="P3")
    ticket_assign(ticket=theirs, assignee=tess)
    waiting = ticket_create(organization=acme, subject="Nobody's", priority="P3")
    done = ticket_create(organization=acme, subject="Done and unassigned", priority="P3")
    ticket_set_status(ticket=done, status=TicketStatus.RESOLVED)
    mine_done = ticket_create(organization=acme, subject="Mine, resolved", priority="P3")
    ticket_assign(ticket=mine_done, assignee=staff)
    ticket_set_status(ticket=mine_done, status=TicketStatus.RESOLVED)
    # P1 opened 1 h 40 min ago: past 80 % of its 2 h first response.
    risky = ticket_create(organization=acme, subject="At risk", priority="P1", now=NOW - timedelta(hours=1, minutes=40))
    ticket_assign(ticket=risky, assignee=tess)
    # P2 opened Monday 09:00: its first response was due Monday 13:00.
    late = ticket_create(
        organization=acme, subject="Breached", priority="P2", now=datetime(2026, 11, 9, 9, tzinfo=SYDNEY)
    )
    reread_clocks(risky, late)
    assert (fresh(risky).first_response_state, fresh(late).first_response_state) == ("at_risk", "breached")

    assert listed(staff_client.get(LIST + "?queue=mine")) == {mine.reference}
    assert listed(staff_client.get(LIST + "?queue=unassigned")) == {waiting.reference, late.reference}
    assert listed(staff_client.get(LIST + "?queue=at_risk")) == {risky.reference}
    assert listed(staff_client.get(LIST + "?queue=breached")) == {late.reference}
    everything = staff_client.get(LIST)
    assert len(everything.context["cl"].result_list) == 7
    # Queues combine with the other filters.
    assert listed(staff_client.get(LIST + f"?queue=unassigned&organization__id__exact={globex.pk}")) == set()
    assert listed(staff_client.get(LIST + "?status__exact=RESOLVED")) == {done.reference, mine_done.reference}
    body = everything.content.decode()
    for label in ("Mine", "Unassigned", "At risk", "Breached"):
        assert "?queue=" in body and label in body
    # The badges are coloured by state; the next due time is in the organization's zone.
    assert '<span class="sla-badge sla-at_risk">At risk</span>' in body
    assert '<span class="sla-badge sla-breached">Breached</span>' in body
    assert "Tue 10 Nov, 10:20 AEDT" in body  # the at-risk P1's first response: opened 08:20, due 2 h later


def test_search_finds_a_ticket_by_number_or_subject(frozen, staff_client, acme, globex):
    printer = ticket_create(organization=acme, subject="Printer jam")
    vpn = ticket_create(organization=acme, subject="VPN drops")
    ticket_create(organization=globex, subject="Payroll")  # Globex's T-1001
    assert listed(staff_client.get(LIST + "?q=T-1002")) == {vpn.reference}
    assert {t.subject for t in staff_client.get(LIST + "?q=1002").context["cl"].result_list} == {"VPN drops"}
    both = staff_client.get(LIST + "?q=t-1001").context["cl"].result_list
    assert sorted(t.subject for t in both) == ["Payroll", "Printer jam"]
    assert listed(staff_client.get(LIST + "?q=printer")) == {printer.reference}
    assert listed(staff_client.get(LIST + "?q=nothing-like-it")) == set()


@pytest.mark.parametrize("rows", [3, 40])
def test_list_queries_do_not_grow_with_rows(frozen, staff_client, staff, acme, rows, django_assert_max_num_queries):
    for index in range(rows):
        created = ticket_create(organization=acme, subject=f"Row {index}", priority="P2")
        ticket_assign(ticket=created, assignee=staff)
    # user, OTP device, the organization filter's choices, result count, total count, one page of tickets with their
    # organizations and assignees, the date hierarchy (range, then days), the session saved (savepoint, update,
    # release): 11 whatever the rows.
    with django_assert_max_num_queries(11):
        response = staff_client.get(LIST + "?queue=mine")
    assert len(response.context["cl"].result_list) == rows


# -- bulk actions ---------------------------------------------------------------------------------------------------


def test_assign_to_me_and_resolve_in_bulk(frozen, staff_client, staff, acme, globex):
    tickets = [ticket_create(organization=org, subject=f"Bulk {org.slug}") for org in (acme, globex)]
    response = bulk(staff_client, "assign_to_me", tickets)
    assert response.status_code == 302
    assert message_texts(response) == ["2 tickets assigned to you."]
    assert {fresh(ticket).assignee_id for ticket in tickets} == {staff.pk}
    assert TicketActivity.objects.filter(kind="assigned", actor=staff).count() == 2

    resolved = bulk(staff_client, "set_resolved", tickets)
    assert message_texts(resolved) == ["2 tickets resolved."]
    assert {fresh(ticket).status for ticket in tickets} == {TicketStatus.RESOLVED}
    assert {fresh(ticket).resolution_state for ticket in tickets} == {ClockState.MET}
    # Audited per organization.
    assert AuditEvent.objects.filter(action="tickets.bulk_updated", actor=staff).count() == 4


def test_set_priority_asks_for_the_priority_first(frozen, staff_client, staff, acme):
    tickets = [ticket_create(organization=acme, subject=f"P {index}", priority="P3") for index in range(2)]
    asked = bulk(staff_client, "set_priority", tickets)
    assert asked.status_code == 200
    body = asked.content.decode()
    assert "Set the priority of the selected tickets" in body and "P 0" in body and "P 1" in body
    assert {fresh(ticket).priority for ticket in tickets} == {"P3"}

    missing = bulk(staff_client, "set_priority", tickets, apply="Set priority")
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()

    done = bulk(staff_client, "set_priority", tickets, apply="Set priority", priority="P1")
    assert done.status_code == 302 and message_texts(done) == ["2 tickets set to P1 critical."]
    for ticket in tickets:
        changed = fresh(ticket)
        # The P1 targets apply from the ticket's start: 2 h first response.
        assert changed.priority == "P1" and changed.first_response_target == timedelta(hours=2)
    assert TicketActivity.objects.filter(kind="priority", actor=staff).count() == 2


def test_assign_to_a_technician(frozen, staff_client, tess, acme):
    tickets = [ticket_create(organization=acme, subject="For Tess")]
    page = bulk(staff_client, "assign_to", tickets)
    assert "tess@keel.test" in page.content.decode()
    done = bulk(staff_client, "assign_to", tickets, apply="Assign", assignee=str(tess.pk))
    assert message_texts(done) == ["1 ticket assigned to tess@keel.test."]
    assert fresh(tickets[0]).assignee == tess
    # Only staff can be chosen.
    outsider = UserFactory(email="nope@example.test")
    refused = bulk(staff_client, "assign_to", tickets, apply="Assign", assignee=str(outsider.pk))
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()


def test_tags_are_added_and_removed_in_bulk(frozen, staff_client, acme):
    tickets = [ticket_create(organization=acme, subject=f"T {index}", tags=["printer"]) for index in range(2)]
    added = bulk(staff_client, "add_tag", tickets, apply="Add tag", tag=" VIP ")
    assert message_texts(added) == ["2 tickets tagged vip."]
    assert [fresh(ticket).tags for ticket in tickets] == [["printer", "vip"], ["printer", "vip"]]
    removed = bulk(staff_client, "remove_tag", tickets, apply="Remove tag", tag="printer")
    assert message_texts(removed) == ["2 tickets no longer tagged printer."]
    assert [fresh(ticket).tags for ticket in tickets] == [["vip"], ["vip"]]
    bad = bulk(staff_client, "add_tag", tickets, apply="Add tag", tag="a,b")
    assert bad.status_code == 200 and "One tag, without commas." in bad.content.decode()


def test_one_ticket_that_cannot_take_the_change_leaves_every_ticket_as_it_was(frozen, staff_client, acme):
    tickets = by_pk([ticket_create(organization=acme, subject=f"All or nothing {index}") for index in range(3)])
    # The last ticket the service reaches already has the most tags a ticket may have.
    full = [f"tag{index}" for index in range(20)]
    ticket_update(ticket=tickets[-1], tags=full)
    response = bulk(staff_client, "add_tag", tickets, apply="Add tag", tag="vip")
    [message] = message_texts(response)
    assert message.startswith("Nothing was changed.") and "At most 20" in message
    assert [fresh(ticket).tags for ticket in tickets] == [[], [], sorted(full)]
    assert (
        not TicketActivity.objects.filter(kind="updated", message__contains="tags").exclude(ticket=tickets[-1]).exists()
    )

    # A merged ticket cannot be resolved: the others stay open too.
    others = by_pk([ticket_create(organization=acme, subject=f"Resolve {index}") for index in range(3)])
    ticket_merge(ticket=others[-1], into=tickets[0])
    response = bulk(staff_client, "set_resolved", others)
    [message] = message_texts(response)
    assert message.startswith("Nothing was changed: This ticket was merged") and others[-1].reference in message
    assert [fresh(ticket).status for ticket in others[:2]] == [TicketStatus.NEW, TicketStatus.NEW]


def test_too_many_tickets_at_once_are_refused(frozen, staff_client, acme, monkeypatch):
    monkeypatch.setattr(admin_actions, "BULK_MAX", 2)
    tickets = [ticket_create(organization=acme, subject=f"Many {index}") for index in range(3)]
    response = bulk(staff_client, "set_closed", tickets)
    assert message_texts(response) == ["At most 2 tickets at a time; nothing was changed."]
    assert {fresh(ticket).status for ticket in tickets} == {TicketStatus.NEW}


def test_a_technician_works_tickets_but_a_non_staff_user_is_refused(frozen, tess, client_for, alice, ticket):
    technician = admin_client(tess)
    assert technician.get(LIST).status_code == 200
    assert message_texts(bulk(technician, "assign_to_me", [ticket])) == ["1 ticket assigned to you."]
    assert fresh(ticket).assignee == tess

    customer = client_for(alice)
    for response in (customer.get(LIST), customer.get(page_url(ticket)), bulk(customer, "set_closed", [ticket])):
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = customer.post(page_url(ticket, "reply/"), {"body": "I am staff now"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert fresh(ticket).status == TicketStatus.NEW
    assert not Comment.objects.filter(body="I am staff now").exists()


def test_view_only_staff_see_the_ticket_but_cannot_change_it(frozen, ticket):
    viewer = UserFactory(email="viewer@keel.test", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_ticket"))
    client = admin_client(viewer)
    page = client.get(page_url(ticket))
    assert page.status_code == 200
    body = page.content.decode()
    assert "It shows error 49." in body
    assert 'id="ticket_form"' not in body and 'id="reply"' not in body and 'id="time_form"' not in body
    assert client.post(page_url(ticket), {"status": "CLOSED", "priority": "P2"}).status_code == 403
    assert client.post(page_url(ticket, "reply/"), {"body": "Hello"}).status_code == 403
    assert client.post(page_url(ticket, "time/"), {"minutes": "5"}).status_code == 403
    # The actions are not offered: posting one changes nothing.
    assert "set_closed" not in client.get(LIST).content.decode()
    assert bulk(client, "set_closed", [ticket]).status_code == 200
    assert fresh(ticket).status == TicketStatus.NEW
    assert not Comment.objects.exists() and not TimeEntry.objects.exists()
