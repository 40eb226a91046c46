"""The portal's Support area: the ticket list with live SLA badges, opening a ticket with attachments, the ticket
page (conversation without internal notes, SLA block refreshed by htmx), replies, resolving and reopening, the
satisfaction survey, attachment downloads, the SLA performance page, query counts and tenant isolation.

Time is frozen on Tuesday 10 November 2026, 10:00 in Sydney (Acme's zone, business hours Mon-Fri 08:00-18:00). Acme
is on Core+: P1 first response 2 h / resolution 8 h, P2 4 h / 16 h, P3 8 h / 40 h, at risk at 80 % of the target.
Globex (New York) has three tickets, T-1001 to T-1003; Acme's numbers start at T-1001 too, so a Globex number Acme
does not have must be 404, and a number both have must show Acme's ticket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from tenancy.models import Organization, User
from tests.factories import UserFactory
from tickets.attachments import ATTACHMENT_MAX_BYTES
from tickets.models import Attachment, Channel, ClockState, Comment, SatisfactionResponse, Ticket, TicketStatus
from tickets.services import (
    attachment_add,
    comment_add,
    ticket_assign,
    ticket_create,
    ticket_merge,
    ticket_set_status,
)

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 11, 10, 10, 0, tzinfo=SYDNEY)  # a Tuesday
# The page's base queries (tests/portal/test_queries.py): user, organizations, second factor, session save (3).
BASE = 6
GLOBEX_TEXT = ("Globex", "globex", "Payroll run failed", "Hammock", "payroll-log.pdf")


def sydney(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SYDNEY)


def upload(name: str = "screenshot.png", content: bytes = b"\x89PNG fake", content_type: str = "image/png") -> Any:
    return SimpleUploadedFile(name, content, content_type=content_type)


def text_of(response: Any) -> str:
    return response.content.decode()


def message_texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def assert_nothing_of_globex(response: Any) -> None:
    body = text_of(response)
    for secret in GLOBEX_TEXT:
        assert secret not in body


def row_of(body: str, reference: str) -> str:
    """The table row of the list that links to ``reference``."""
    [row] = [row for row in body.split("<tr>") if f">{reference}</a>" in row]
    return row


def status_of(ticket: Ticket) -> str:
    return Ticket.objects.values_list("status", flat=True).get(pk=ticket.pk)


def stored_files() -> list[str]:
    try:
        return default_storage.listdir(f"tickets/{NOW:%Y}/{NOW:%m}")[1]
    except FileNotFoundError:
        return []


@pytest.fixture
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def tech(db: Any) -> User:
    return UserFactory(email="tess@keel.test", full_name="Tess Tech", is_staff=True)


@pytest.fixture
def globex_tickets(globex: Organization, carol: User, tech: User) -> list[Ticket]:
    """Globex's T-1001 to T-1003; T-1003 carries a public reply with a file."""
    tickets = [
        ticket_create(organization=globex, subject=f"Payroll run failed {index}", requester=carol, priority="P1")
        for index in range(3)
    ]
    reply = comment_add(ticket=tickets[2], body="Hammock fleet is rebooting", author=tech, by_staff=True)
    attachment_add(ticket=tickets[2], comment=reply, upload=upload("payroll-log.pdf", b"%PDF", "application/pdf"))
    return tickets


# -- the list -------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:support")
def test_list_shows_the_organizations_tickets_with_live_sla_badges(
    frozen, client_for, acme, alice, bob, tech, globex_tickets
):
    p1 = ticket_create(organization=acme, subject="Server room is dark", priority="P1", requester=alice)
    p3 = ticket_create(organization=acme, subject="New starter laptop", priority="P3", requester=bob)
    # Opened Monday 09:00 as P2 (first response due 13:00 Monday), still unanswered: breached.
    late = ticket_create(organization=acme, subject="Shared drive slow", priority="P2", now=sydney(11, 9, 9, 0))
    # Answered, then waiting on the customer: the resolution clock is paused.
    waiting = ticket_create(organization=acme, subject="Printer jams", priority="P3", requester=alice)
    comment_add(ticket=waiting, body="Which tray?", author=tech, by_staff=True)
    ticket_set_status(ticket=waiting, status=TicketStatus.PENDING_CUSTOMER, actor=tech)
    # Answered and resolved within the targets.
    done = ticket_create(organization=acme, subject="Password reset", priority="P3", requester=bob)
    comment_add(ticket=done, body="Done, check your email.", author=tech, by_staff=True)
    ticket_set_status(ticket=done, status=TicketStatus.RESOLVED, actor=tech)

    # 1 h 40 min later: the P1's two-hour first response passed its 80 % mark (1 h 36 min) and is at risk.
    frozen.shift(timedelta(hours=1, minutes=40))
    client = client_for(alice)
    response = client.get("/support/")
    assert response.status_code == 200
    states = {ticket.reference: sla.headline.state for ticket, sla in response.context["rows"]}
    assert states == {
        p1.reference: ClockState.AT_RISK,
        p3.reference: ClockState.OK,
        late.reference: ClockState.BREACHED,
        waiting.reference: ClockState.PAUSED,
    }
    body = text_of(response)
    # Due times in Sydney time (01:00 UTC would be 12:00 in Sydney), badges coloured by state.
    p1_row = row_of(body, p1.reference)
    assert "Server room is dark" in p1_row and "At risk" in p1_row and "tag-warn" in p1_row
    assert "Response due" in p1_row and "Tue 10 Nov, 12:00 AEDT" in p1_row
    assert "P1 critical" in p1_row and "Alice Owner" in p1_row and "New" in p1_row
    p3_row = row_of(body, p3.reference)
    assert "On track" in p3_row and "tag-ok" in p3_row and "Tue 10 Nov, 18:00 AEDT" in p3_row
    assert "Bob Technician" in p3_row
    late_row = row_of(body, late.reference)
    assert "Breached" in late_row and "tag-danger" in late_row and "Mon 9 Nov, 13:00 AEDT" in late_row
    waiting_row = row_of(body, waiting.reference)
    assert "Paused" in waiting_row and "tag-paused" in waiting_row and "Waiting on customer" in waiting_row
    assert done.reference not in body
    assert_nothing_of_globex(response)

    closed = client.get("/support/?status=closed")
    assert [(ticket.reference, sla.headline.state) for ticket, sla in closed.context["rows"]] == [
        (done.reference, ClockState.MET)
    ]
    assert "tag-ok" in row_of(text_of(closed), done.reference)
    everything = client.get("/support/?status=all")
    assert len(everything.context["rows"]) == 5
    assert_nothing_of_globex(everything)
    # An unknown filter falls back to open tickets.
    assert len(client.get("/support/?status=bogus").context["rows"]) == 4


def test_list_is_paginated_and_every_member_sees_it(client_for, acme, bob):
    for index in range(27):
        ticket_create(organization=acme, subject=f"Ticket {index}", requester=bob)
    client = client_for(bob)
    first = client.get("/support/")
    assert len(first.context["rows"]) == 25 and first.context["page"].has_next()
    second = client.get("/support/?page=2")
    assert len(second.context["rows"]) == 2
    assert "Page 2 of 2" in text_of(second)
    # Bob is a plain member: the list, but no link to the managers' performance page.
    assert "/support/performance/" not in text_of(first)


def test_support_is_in_the_main_menu(client_for, alice):
    body = text_of(client_for(alice).get("/support/"))
    assert '<a href="/support/" aria-current="page">Support</a>' in body


def test_signed_out_visitors_are_sent_to_sign_in(client, acme):
    response = client.get("/support/")
    assert response.status_code == 302 and "/login/" in response["Location"]


# -- opening a ticket -----------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:support_new")
def test_a_new_ticket_belongs_to_the_organization_and_its_requester(
    frozen, client_for, acme, alice, globex, globex_tickets
):
    client = client_for(alice)
    form = client.get("/support/new/")
    assert form.status_code == 200
    body = text_of(form)
    assert "Critical: the business is stopped" in body and 'type="file"' in body and "multiple" in body
    assert_nothing_of_globex(form)

    response = client.post(
        "/support/new/",
        {
            "subject": "Cannot print",
            "description": "The front desk printer says offline.",
            "priority": "P2",
            "category": "Printing",
            "attachments": [upload("error.png"), upload("notes.txt", b"tried turning it off", "text/plain")],
        },
    )
    ticket = Ticket.objects.for_org(acme).get()
    assert response.status_code == 302 and response["Location"] == "/support/tickets/1001/"
    assert (ticket.reference, ticket.subject, ticket.priority, ticket.category) == ("T-1001", "Cannot print", "P2",
                                                                                    "Printing")  # fmt: skip
    assert ticket.channel == Channel.PORTAL and ticket.requester == alice
    assert sorted(Attachment.objects.for_org(acme).filter(ticket=ticket, comment=None).values_list(
        "filename", flat=True)) == ["error.png", "notes.txt"]  # fmt: skip
    # P2 on Core+: a first response within 4 business hours, by 14:00 Sydney.
    assert message_texts(response) == ["Ticket T-1001 is open. We will respond by Tue 10 Nov, 14:00."]
    # Globex's tickets and numbering are untouched.
    assert Ticket.objects.for_org(globex).count() == 3
    assert_nothing_of_globex(client.get(response["Location"]))


def test_an_invalid_ticket_is_refused_beside_its_fields_and_nothing_is_stored(client_for, acme, alice):
    response = client_for(alice).post("/support/new/", {"subject": "  ", "description": "", "priority": "P9"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert {"subject", "description", "priority"} <= set(errors)
    assert "has-error" in text_of(response)
    assert not Ticket.objects.for_org(acme).exists()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (upload("huge.pdf", b"x" * (ATTACHMENT_MAX_BYTES + 1), "application/pdf"), "larger than 10 MB"),
        (upload("setup.exe", b"MZ", "application/x-msdownload"), "not accepted"),
    ],
    ids=["oversize", "wrong-type"],
)
def test_a_refused_attachment_leaves_no_ticket(frozen, client_for, acme, alice, bad, reason):
    good = upload("kept-before-the-refusal.png")
    data = {"subject": "VPN", "description": "It drops.", "priority": "P3", "attachments": [good, bad]}
    response = client_for(alice).post("/support/new/", data)
    assert response.status_code == 400
    [error] = response.context["form"].errors["attachments"]
    assert reason in error
    assert reason in text_of(response)
    assert not Ticket.objects.for_org(acme).exists()
    assert not Attachment.objects.for_org(acme).exists()
    # The file written before the refusal does not stay behind in storage.
    assert not [name for name in stored_files() if name.startswith("kept-before-the-refusal")]
    # No ticket number was used up.
    ticket = ticket_create(organization=acme, subject="Next")
    assert ticket.reference == "T-1001"


def test_more_files_than_allowed_are_refused(client_for, acme, alice):
    files = [upload(f"shot{index}.png") for index in range(11)]
    response = client_for(alice).post(
        "/support/new/", {"subject": "Many", "description": "Files", "priority": "P3", "attachments": files}
    )
    assert response.status_code == 400 and "attachments" in response.context["form"].errors
    assert not Ticket.objects.for_org(acme).exists()


# -- one ticket -----------------------------------------------------------------------------------------------------


@pytest.fixture
def conversation(frozen, acme, alice, tech) -> Ticket:
    ticket = ticket_create(organization=acme, subject="Email bounces", description="Since this morning.",
                           requester=alice, priority="P2")  # fmt: skip
    attachment_add(ticket=ticket, upload=upload("bounce.txt", b"550 5.1.1", "text/plain"))
    ticket_assign(ticket=ticket, assignee=tech, actor=tech)
    frozen.shift(timedelta(minutes=20))
    reply = comment_add(ticket=ticket, body="We are looking into the mail relay.", author=tech, by_staff=True)
    attachment_add(ticket=ticket, comment=reply, upload=upload("relay.png"))
    frozen.shift(timedelta(minutes=5))
    note = comment_add(ticket=ticket, body="Relay cert expired, do not tell them yet", author=tech, by_staff=True,
                       internal=True)  # fmt: skip
    attachment_add(ticket=ticket, comment=note, upload=upload("internal-cert.txt", b"secret", "text/plain"))
    frozen.shift(timedelta(minutes=5))
    comment_add(ticket=ticket, body="Thanks, it is urgent for us.", author=alice)
    return Ticket.objects.get(pk=ticket.pk)


@pytest.mark.isolation("portal:support_ticket")
def test_ticket_page_shows_the_public_conversation_only(client_for, conversation, bob, globex_tickets):
    client = client_for(bob)
    response = client.get("/support/tickets/1001/")
    assert response.status_code == 200
    body = text_of(response)
    # Facts.
    assert "Email bounces" in body and "P2 high" in body and "Alice Owner" in body and "Tess Tech" in body
    assert "Open" in body and "10 Nov 2026, 10:00" in body
    # SLA: answered after 20 minutes (due 12:00), resolution due 16 business hours on: Wednesday 16:00.
    assert "First response given" in body and "Tue 10 Nov, 10:20 AEDT" in body
    assert "Resolution due" in body and "Wed 11 Nov, 16:00 AEDT" in body
    assert "15 hours 30 minutes of business time left." in body
    # The conversation, oldest first, staff replies marked, without the internal note or its file.
    assert body.index("Since this morning.") < body.index("We are looking into the mail relay.")
    assert body.index("We are looking into the mail relay.") < body.index("Thanks, it is urgent for us.")
    assert "Support team" in body and "comment-staff" in body
    assert "Relay cert expired" not in body and "internal-cert.txt" not in body
    for name in ("bounce.txt", "relay.png"):
        attachment = Attachment.objects.get(filename=name)
        assert f'href="/support/attachments/{attachment.pk}/"' in body
    # Another organization's number is absent; a number both have shows this organization's ticket.
    missing = client.get("/support/tickets/1003/")
    assert missing.status_code == 404
    assert_nothing_of_globex(missing)
    assert_nothing_of_globex(response)


def test_the_sla_block_refreshes_itself_through_htmx(frozen, client_for, acme, alice):
    ticket = ticket_create(organization=acme, subject="Server down", priority="P1", requester=alice)
    client = client_for(alice)
    page = client.get(f"/support/tickets/{ticket.number}/")
    assert 'hx-trigger="every 60s"' in text_of(page)
    assert "HX-Request" in page["Vary"]
    frozen.shift(timedelta(hours=1, minutes=40))
    partial = client.get(f"/support/tickets/{ticket.number}/", HTTP_HX_REQUEST="true")
    body = text_of(partial)
    assert partial.status_code == 200 and body.lstrip().startswith('<section id="sla"')
    assert "Conversation" not in body and "<html" not in body
    assert "At risk" in body and "First response due" in body and "Tue 10 Nov, 12:00 AEDT" in body
    assert "20 minutes of business time left." in body
    # Waiting on the customer: the resolution clock pauses.
    comment_add(ticket=ticket, body="Rebooting", author=UserFactory(is_staff=True), by_staff=True)
    ticket_set_status(ticket=ticket, status=TicketStatus.PENDING_CUSTOMER)
    paused = text_of(client.get(f"/support/tickets/{ticket.number}/", HTTP_HX_REQUEST="true"))
    assert "Paused while we wait for your reply." in paused


@pytest.mark.isolation("portal:support_reply")
def test_a_reply_adds_a_comment_with_files_and_reopens_a_ticket_waiting_on_the_customer(
    frozen, client_for, acme, alice, tech, globex_tickets
):
    ticket = ticket_create(organization=acme, subject="Laptop slow", requester=alice)
    comment_add(ticket=ticket, body="Can you send a screenshot?", author=tech, by_staff=True)
    ticket_set_status(ticket=ticket, status=TicketStatus.PENDING_CUSTOMER, actor=tech)
    client = client_for(alice)
    response = client.post(
        f"/support/tickets/{ticket.number}/reply/", {"body": "Here it is.", "attachments": [upload("slow.png")]}
    )
    assert response.status_code == 302 and response["Location"] == f"/support/tickets/{ticket.number}/#latest"
    comment = Comment.objects.for_org(acme).get(ticket=ticket, author=alice)
    assert (comment.body, comment.by_staff, comment.internal, comment.channel) == ("Here it is.", False, False,
                                                                                   Channel.PORTAL)  # fmt: skip
    assert [a.filename for a in Attachment.objects.for_org(acme).filter(comment=comment)] == ["slow.png"]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN

    blank = client.post(f"/support/tickets/{ticket.number}/reply/", {"body": "   "})
    assert blank.status_code == 400 and "body" in blank.context["reply_form"].errors
    refused = client.post(
        f"/support/tickets/{ticket.number}/reply/",
        {"body": "And a program", "attachments": [upload("tool.exe", b"MZ", "application/x-msdownload")]},
    )
    assert refused.status_code == 400 and "attachments" in refused.context["reply_form"].errors
    assert not Comment.objects.for_org(acme).filter(body="And a program").exists()

    # Globex's T-1003 is not Acme's: 404, and nothing is added to it.
    before = Comment.objects.filter(ticket=globex_tickets[2]).count()
    outsider = client.post("/support/tickets/1003/reply/", {"body": "Hello from Acme"})
    assert outsider.status_code == 404
    assert_nothing_of_globex(outsider)
    assert Comment.objects.filter(ticket=globex_tickets[2]).count() == before


@pytest.mark.isolation("portal:support_status")
def test_customers_resolve_and_reopen_and_nothing_else(frozen, client_for, acme, alice, globex_tickets):
    ticket = ticket_create(organization=acme, subject="Wi-Fi", requester=alice)
    client = client_for(alice)
    url = f"/support/tickets/{ticket.number}/status/"
    assert "Mark as resolved" in text_of(client.get(f"/support/tickets/{ticket.number}/"))

    resolved = client.post(url, {"status": "RESOLVED"})
    assert resolved.status_code == 302 and message_texts(resolved) == ["T-1001 is marked as resolved."]
    assert status_of(ticket) == TicketStatus.RESOLVED
    assert "Reopen" in text_of(client.get(f"/support/tickets/{ticket.number}/"))

    reopened = client.post(url, {"status": "OPEN"})
    assert reopened.status_code == 302 and message_texts(reopened) == ["T-1001 is open again."]
    assert status_of(ticket) == TicketStatus.OPEN
    ticket.refresh_from_db()
    assert ticket.resolved_at is None

    for status in ("CLOSED", "ON_HOLD", "PENDING_CUSTOMER", ""):
        refused = client.post(url, {"status": status})
        assert refused.status_code == 400
        assert status_of(ticket) == TicketStatus.OPEN

    outsider = client.post("/support/tickets/1002/status/", {"status": "RESOLVED"})
    assert outsider.status_code == 404
    assert_nothing_of_globex(outsider)
    assert Ticket.objects.get(pk=globex_tickets[1].pk).status == TicketStatus.NEW


@pytest.mark.isolation("portal:support_rate")
def test_a_resolved_ticket_is_rated_once(frozen, client_for, acme, alice, tech, globex_tickets):
    ticket = ticket_create(organization=acme, subject="Monitor", requester=alice)
    ticket_assign(ticket=ticket, assignee=tech)
    client = client_for(alice)
    url = f"/support/tickets/{ticket.number}/rate/"
    assert "How did we do?" not in text_of(client.get(f"/support/tickets/{ticket.number}/"))
    early = client.post(url, {"rating": "5"})
    assert early.status_code == 302 and message_texts(early) == ["You can rate a ticket once it is resolved."]
    assert not SatisfactionResponse.objects.exists()

    ticket_set_status(ticket=ticket, status=TicketStatus.RESOLVED, actor=tech)
    assert "How did we do?" in text_of(client.get(f"/support/tickets/{ticket.number}/"))
    bad = client.post(url, {"rating": "7"})
    assert bad.status_code == 400 and "rating" in bad.context["rating_form"].errors

    rated = client.post(url, {"rating": "4", "comment": "Quick, thanks."})
    assert rated.status_code == 302 and message_texts(rated) == ["Thank you for your feedback."]
    response = SatisfactionResponse.objects.for_org(acme).get(ticket=ticket)
    assert (response.rating, response.comment, response.technician) == (4, "Quick, thanks.", tech)
    page = text_of(client.get(f"/support/tickets/{ticket.number}/"))
    assert "You rated this ticket 4 out of 5." in page and 'name="rating"' not in page

    again = client.post(url, {"rating": "1", "comment": "Changed my mind"})
    assert again.status_code == 302 and message_texts(again) == ["This ticket has already been rated."]
    assert SatisfactionResponse.objects.get(ticket=ticket).rating == 4

    # Globex's resolved T-1002 cannot be rated from Acme.
    ticket_set_status(ticket=globex_tickets[1], status=TicketStatus.RESOLVED)
    outsider = client.post("/support/tickets/1002/rate/", {"rating": "1"})
    assert outsider.status_code == 404
    assert_nothing_of_globex(outsider)
    assert not SatisfactionResponse.objects.filter(ticket=globex_tickets[1]).exists()


@pytest.mark.isolation("portal:support_attachment")
def test_attachments_download_only_within_the_organization_and_never_from_internal_notes(
    client_for, conversation, bob, globex_tickets
):
    client = client_for(bob)
    public = Attachment.objects.get(filename="relay.png")
    response = client.get(f"/support/attachments/{public.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89PNG fake"
    assert response["Content-Disposition"] == 'attachment; filename="relay.png"'
    assert response["Content-Type"] == "image/png"
    assert "no-store" in response["Cache-Control"]
    on_ticket = Attachment.objects.get(filename="bounce.txt")
    assert client.get(f"/support/attachments/{on_ticket.pk}/").status_code == 200

    internal = Attachment.objects.get(filename="internal-cert.txt")
    assert client.get(f"/support/attachments/{internal.pk}/").status_code == 404
    globex_file = Attachment.objects.get(filename="payroll-log.pdf")
    outsider = client.get(f"/support/attachments/{globex_file.pk}/")
    assert outsider.status_code == 404
    assert b"%PDF" not in outsider.content
    assert_nothing_of_globex(outsider)
    assert client.get("/support/attachments/999999/").status_code == 404


# -- performance ----------------------------------------------------------------------------------------------------


@pytest.fixture
def history(frozen, acme, globex, tech) -> None:
    """Acme's tickets over the last 90 days (times in Sydney, Core+ targets) and some that must not count."""

    def ticket(priority: str, opened: datetime, replied: datetime | None, resolved: datetime | None) -> Ticket:
        created = ticket_create(organization=acme, subject=f"{priority} {opened}", priority=priority, now=opened)
        if replied:
            comment_add(ticket=created, body="On it", author=tech, by_staff=True, now=replied)
        if resolved:
            ticket_set_status(ticket=created, status=TicketStatus.RESOLVED, now=resolved)
        return created

    # Last 30 days.
    ticket("P1", sydney(11, 2, 9), sydney(11, 2, 9, 30), sydney(11, 2, 12))  # response met (30 min), resolved met
    ticket("P1", sydney(11, 3, 9), sydney(11, 3, 12), sydney(11, 3, 16))  # response missed (3 h), resolved met (7 h)
    # Response met (1 h), still open: its resolution (40 business hours) fell due at 09:00 today, so it is missed.
    kept = ticket("P3", sydney(11, 4, 9), sydney(11, 4, 10), None)
    duplicate = ticket("P4", sydney(11, 5, 9), None, None)
    ticket_merge(ticket=duplicate, into=kept)  # merged duplicates do not count
    # 31 to 90 days ago: P2 answered after 8 h (target 4 h), resolved after 30 business hours (target 16 h).
    ticket("P2", sydney(9, 15, 9), sydney(9, 15, 17), sydney(9, 18, 9))
    # More than 90 days ago, and another organization's ticket: neither counts.
    ticket("P1", sydney(6, 3, 9), sydney(6, 3, 9, 5), sydney(6, 3, 10))
    other = ticket_create(organization=globex, subject="Hammock outage", priority="P1", now=sydney(11, 2, 9))
    comment_add(ticket=other, body="Late", author=tech, by_staff=True, now=sydney(11, 6, 9))


@pytest.mark.isolation("portal:support_performance")
def test_performance_page_reports_the_organizations_compliance(client_for, alice, history):
    response = client_for(alice).get("/support/performance/")
    assert response.status_code == 200
    last_30, last_90 = response.context["periods"]
    assert (last_30.tickets, last_30.first_response_compliance, last_30.resolution_compliance) == (3, 66.7, 66.7)
    assert last_30.median_first_response == timedelta(hours=1)  # of 30 min, 1 h and 3 h
    assert (last_90.tickets, last_90.first_response_compliance, last_90.resolution_compliance) == (4, 50.0, 50.0)
    assert last_90.median_first_response == timedelta(hours=2)  # between 1 h and 3 h, of 30 min, 1 h, 3 h, 8 h
    by_priority = {row.label: row for row in response.context["priorities"]}
    assert (by_priority["P1 critical"].tickets, by_priority["P1 critical"].first_response_compliance) == (2, 50.0)
    assert by_priority["P1 critical"].median_first_response == timedelta(hours=1, minutes=45)
    assert (by_priority["P2 high"].tickets, by_priority["P2 high"].resolution_compliance) == (1, 0.0)
    assert by_priority["P3 medium"].resolution_compliance == 0.0  # overdue before the SLA check marks it
    assert by_priority["P4 low"].tickets == 0
    body = text_of(response)
    assert "66.7 %" in body and "1 hour" in body and "2 hours" in body and "1 hour 45 minutes" in body
    assert_nothing_of_globex(response)


def test_performance_is_for_managers_only(client_for, bob, acme):
    assert client_for(bob).get("/support/performance/").status_code == 404


def test_managers_find_the_performance_page_from_the_list(client_for, alice):
    assert 'href="/support/performance/"' in text_of(client_for(alice).get("/support/"))


# -- queries --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [2, 30])
def test_list_queries_do_not_grow_with_rows(frozen, client_for, acme, alice, tech, rows, django_assert_num_queries):
    for index in range(rows):
        ticket = ticket_create(organization=acme, subject=f"Row {index}", priority="P2", requester=alice)
        ticket_assign(ticket=ticket, assignee=tech)
    client = client_for(alice)
    # base + count + one page of tickets with their requesters and calendars
    with django_assert_num_queries(BASE + 2):
        response = client.get("/support/?status=all")
    assert len(response.context["rows"]) == min(rows, 25)


@pytest.mark.parametrize("replies", [1, 12])
def test_ticket_page_queries_do_not_grow_with_the_conversation(
    frozen, client_for, acme, alice, tech, replies, django_assert_num_queries
):
    ticket = ticket_create(organization=acme, subject="Long one", requester=alice)
    for index in range(replies):
        comment = comment_add(ticket=ticket, body=f"Reply {index}", author=tech if index % 2 else alice,
                              by_staff=bool(index % 2))  # fmt: skip
        attachment_add(ticket=ticket, comment=comment, upload=upload(f"file{index}.png"))
    client = client_for(alice)
    # base + the ticket (requester, assignee, calendar, merge target, rating) + public comments with authors
    # + their attachments
    with django_assert_num_queries(BASE + 3):
        response = client.get(f"/support/tickets/{ticket.number}/")
    assert len(response.context["comments"]) == replies


def test_performance_queries_are_fixed(client_for, alice, history, django_assert_num_queries):
    client = client_for(alice)
    # base + both periods in one aggregate + the longest period per priority (+ the response times, for the median,
    # on databases without percentile_cont)
    with django_assert_num_queries(BASE + 2 + (connection.vendor != "postgresql")):
        assert client.get("/support/performance/").status_code == 200


def test_satisfaction_form_is_not_offered_on_open_tickets_and_merged_tickets_point_onwards(
    frozen, client_for, acme, alice
):
    first = ticket_create(organization=acme, subject="Original", requester=alice)
    duplicate = ticket_create(organization=acme, subject="Same again", requester=alice)
    ticket_merge(ticket=duplicate, into=first)
    client = client_for(alice)
    body = text_of(client.get(f"/support/tickets/{duplicate.number}/"))
    assert "merged into" in body and f'href="/support/tickets/{first.number}/"' in body
    assert "Send reply" not in body and "How did we do?" not in body and "Reopen" not in body
    response = client.post(f"/support/tickets/{duplicate.number}/reply/", {"body": "Hello?"})
    assert response["Location"] == f"/support/tickets/{first.number}/"
    assert not Comment.objects.filter(ticket=duplicate).exists()


# -- in a browser ---------------------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_customer_opens_a_ticket_sees_its_due_time_and_the_staff_reply(live_server, alice, password, monkeypatch):
    """The customer opens a ticket in the portal and sees when the first response is due; a technician signs in to
    the staff admin (password and a backup code), finds the ticket by number, picks a canned response and sends it;
    the customer's ticket page then shows the reply from the support team and the first response as given."""
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
    from playwright.sync_api import expect, sync_playwright

    from tests.portal.test_browser import CHROMIUM_ARGS
    from tickets.models import CannedResponse

    tech = UserFactory(email="tess@keel.test", full_name="Tess Tech", is_staff=True)
    tech.groups.add(Group.objects.get(name="Technician"))
    device = StaticDevice.objects.create(user=tech, name="Backup codes", confirmed=True)
    StaticToken.objects.create(device=device, token="tess1234")
    CannedResponse.objects.create(title="On the way", body="A technician is on the way.")
    # Playwright's sync API runs an event loop in this thread; the ORM work is done before it starts and after.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            customer = browser.new_context().new_page()
            customer.goto(f"{live_server.url}/login/")
            customer.get_by_label("Email").fill(alice.email)
            customer.get_by_label("Password").fill(password)
            customer.get_by_role("button", name="Sign in").click()
            customer.get_by_role("navigation", name="Main").get_by_role("link", name="Support").click()
            customer.get_by_role("link", name="New ticket").click()
            customer.get_by_label("Subject").fill("Scanner offline")
            customer.get_by_label("What is happening?").fill("The scanner on level 2 shows an error.")
            customer.get_by_label("High: many people are affected").check()
            customer.get_by_role("button", name="Open the ticket").click()

            expect(customer).to_have_url(f"{live_server.url}/support/tickets/1001/")
            expect(customer.get_by_text("Ticket T-1001 is open.")).to_be_visible()
            expect(customer.locator("#sla")).to_contain_text(
                re.compile(r"First response due \w{3} \d{1,2} \w{3}, \d{2}:\d{2}")
            )

            # The technician, in a browser of their own, signs in to the admin with a one-time backup code.
            staff = browser.new_context().new_page()
            staff.goto(f"{live_server.url}/admin/")
            staff.locator("#id_username").fill(tech.email)
            staff.locator("#id_password").fill(password)
            staff.get_by_role("button", name="Log in").click()
            # Password accepted: the admin asks which device the code comes from.
            staff.get_by_label("OTP Device").select_option(label="Backup codes")
            staff.locator("#id_otp_token").fill("tess1234")
            staff.get_by_role("button", name="Log in").click()
            expect(staff.get_by_role("heading", name="Operations")).to_be_visible()
            staff.goto(f"{live_server.url}/admin/tickets/ticket/?q=T-1001")
            staff.get_by_role("link", name="Scanner offline").click()
            expect(staff.get_by_role("heading", level=1)).to_have_text("T-1001 Scanner offline")
            expect(staff.locator("#sla")).to_contain_text("On track")
            # Choosing a canned response fills the message (static/tickets/canned-response.js, no inline script).
            staff.get_by_label("Canned response").select_option(label="On the way")
            expect(staff.get_by_label("Message")).to_have_value("A technician is on the way.")
            staff.get_by_role("button", name="Send").click()
            expect(staff.get_by_text("Reply sent to alice@acme.test.")).to_be_visible()
            expect(staff.locator(".ticket-comment-staff")).to_contain_text("A technician is on the way.")

            customer.reload()
            staff_reply = customer.locator(".comment-staff")
            expect(staff_reply).to_contain_text("A technician is on the way.")
            expect(staff_reply).to_contain_text("Support team")
            expect(customer.locator("#sla")).to_contain_text("First response given")
        finally:
            browser.close()
    comment = Comment.objects.get(ticket__number=1001, ticket__subject="Scanner offline")
    assert (comment.author, comment.by_staff, comment.internal) == (tech, True, False)
