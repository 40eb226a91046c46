"""The staff admin's ticket page: its facts, SLA clocks, conversation (internal notes marked) and time totals;
changing fields through the services; replies and internal notes with files and canned responses; time entries;
file downloads; who may do what, and a query count that does not grow with the conversation.

Time is frozen on Tuesday 10 November 2026, 10:00 in Sydney; Acme is on Core+ (P2: first response 4 h, resolution
16 h, business hours Monday to Friday 08:00-18:00).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.tickets import test_admin_working as working
from tests.tickets.test_admin_working import LIST, NOW, fresh, message_texts, page_url
from tickets.models import Attachment, CannedResponse, ClockState, Comment, TicketActivity, TicketStatus, TimeEntry
from tickets.services import (
    attachment_add,
    comment_add,
    ticket_create,
    ticket_merge,
    time_entry_add,
)

pytestmark = pytest.mark.django_db

# The list tests' fixtures: frozen time, a superuser signed in past the OTP step, Tess the technician, a P2 ticket.
frozen, staff, staff_client, tess, ticket = (
    working.frozen,
    working.staff,
    working.staff_client,
    working.tess,
    working.ticket,
)


# -- the ticket page ------------------------------------------------------------------------------------------------


def test_ticket_page_shows_sla_conversation_notes_and_time(frozen, staff_client, staff, ticket, alice):
    reply = comment_add(ticket=ticket, body="Power-cycled it remotely.", author=staff, by_staff=True)
    Attachment.objects.create(organization=ticket.organization, ticket=ticket, comment=reply, file="x/log.txt",
                              filename="log.txt", content_type="text/plain", size=3)  # fmt: skip
    comment_add(ticket=ticket, body="Toner sensor is faulty", author=staff, by_staff=True, internal=True)
    comment_add(ticket=ticket, body="Still offline here", author=alice)
    time_entry_add(ticket=ticket, technician=staff, minutes=30, note="Remote session")
    time_entry_add(ticket=ticket, technician=staff, minutes=15, billable=False, note="Research")

    response = staff_client.get(page_url(ticket))
    assert response.status_code == 200
    body = response.content.decode()
    assert "T-1001 Printer on level 2 is offline" in body and "Acme Pty Ltd" in body
    # P2: first response met at once; resolution due 16 business hours on: 8 today, 8 tomorrow to 16:00.
    assert "SLA (times in Australia/Sydney)" in body
    assert '<span class="sla-badge sla-met">Met</span>' in body
    assert "Wed 11 Nov, 16:00 AEDT" in body and "16 h of business time left" in body
    # The conversation in order, the internal note marked as such.
    assert (
        body.index("It shows error 49.")
        < body.index("Power-cycled it remotely.")
        < body.index("Toner sensor is faulty")
        < body.index("Still offline here")
    )
    internal_item = body[body.rindex("<li", 0, body.index("Toner sensor is faulty")) :]
    assert "ticket-comment-internal" in internal_item[:120] and "Internal note" in internal_item
    assert "log.txt" in body and "/attachments/" in body
    # Time with its totals.
    assert "Remote session" in body and "Research" in body
    assert "<td>45</td>" in body and "30 billable" in body
    assert response.context["minutes_total"] == 45 and response.context["minutes_billable"] == 30


def test_changing_fields_goes_through_the_services(frozen, staff_client, staff, tess, ticket):
    response = staff_client.post(
        page_url(ticket),
        {"status": "ON_HOLD", "priority": "P1", "assignee": str(tess.pk), "category": " Printing ",
         "tags": "Hardware, vendor,hardware"},
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"] == page_url(ticket)
    assert message_texts(response) == ["T-1001 changed: assignee, category, priority, status, tags."]
    changed = fresh(ticket)
    assert (changed.status, changed.priority, changed.assignee, changed.category, changed.tags) == (
        TicketStatus.ON_HOLD, "P1", tess, "Printing", ["hardware", "vendor"],
    )  # fmt: skip
    # The services' work: the resolution clock paused, P1 targets, activity by the staff member, admin history.
    assert changed.resolution_state == ClockState.PAUSED and changed.first_response_target == timedelta(hours=2)
    kinds = set(TicketActivity.objects.filter(ticket=ticket, actor=staff).values_list("kind", flat=True))
    assert kinds == {"assigned", "status", "priority", "updated"}
    assert LogEntry.objects.filter(object_id=str(ticket.pk), user=staff).exists()

    same = staff_client.post(page_url(ticket), {"status": "ON_HOLD", "priority": "P1", "assignee": str(tess.pk),
                                                "category": "Printing", "tags": "vendor, hardware"})  # fmt: skip
    assert message_texts(same) == ["Nothing to change."]


def test_bad_field_values_are_refused_and_nothing_changes(frozen, staff_client, ticket):
    tags = ", ".join(f"tag{index}" for index in range(21))
    response = staff_client.post(page_url(ticket), {"status": "CLOSED", "priority": "P9", "tags": tags})
    assert response.status_code == 400
    errors = response.context["work_form"].errors
    assert set(errors) == {"priority", "tags"}
    assert "Please correct the errors below." in response.content.decode()
    assert fresh(ticket).status == TicketStatus.NEW


def test_a_merged_ticket_cannot_be_changed_or_replied_to(frozen, staff_client, acme, ticket):
    other = ticket_create(organization=acme, subject="Duplicate")
    ticket_merge(ticket=other, into=ticket)
    page = staff_client.get(page_url(other)).content.decode()
    assert "merged into" in page and 'id="ticket_form"' not in page and 'id="reply"' not in page
    assert staff_client.post(page_url(other), {"status": "OPEN", "priority": "P3"}).status_code == 403
    assert staff_client.post(page_url(other, "reply/"), {"body": "Hello"}).status_code == 403


def test_a_public_reply_is_emailed_and_stops_the_first_response_clock(
    frozen, staff_client, staff, ticket, mailoutbox, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("steps.pdf", b"%PDF-1.4", content_type="application/pdf")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            page_url(ticket, "reply/"),
            {"body": "Please try printing a test page.", "then_status": "PENDING_CUSTOMER", "attachment": upload},
        )
    assert response.status_code == 302 and response["Location"] == page_url(ticket) + "#conversation"
    assert message_texts(response) == ["Reply sent to alice@acme.test. The ticket is now waiting on customer."]
    comment = Comment.objects.get(ticket=ticket)
    assert (comment.body, comment.internal, comment.by_staff, comment.author) == (
        "Please try printing a test page.", False, True, staff,
    )  # fmt: skip
    assert [a.filename for a in Attachment.objects.filter(comment=comment)] == ["steps.pdf"]
    changed = fresh(ticket)
    assert changed.first_responded_at == NOW and changed.first_response_state == ClockState.MET
    assert changed.status == TicketStatus.PENDING_CUSTOMER
    [email] = mailoutbox
    assert email.to == ["alice@acme.test"] and "Please try printing a test page." in email.body


def test_an_internal_note_is_not_emailed_and_does_not_answer_the_customer(
    frozen, staff_client, ticket, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(page_url(ticket, "reply/"), {"body": "Vendor ticket 123", "internal": "on"})
    assert message_texts(response) == ["Internal note added."]
    note = Comment.objects.get(ticket=ticket)
    assert note.internal and note.by_staff
    assert mailoutbox == []
    assert fresh(ticket).first_responded_at is None and fresh(ticket).status == TicketStatus.NEW
    refused = staff_client.post(page_url(ticket, "reply/"), {"body": "x", "internal": "on", "then_status": "RESOLVED"})
    assert refused.status_code == 400 and "then_status" in refused.context["reply_form"].errors


def test_a_refused_reply_keeps_nothing(frozen, staff_client, ticket):
    empty = staff_client.post(page_url(ticket, "reply/"), {"body": "  "})
    assert empty.status_code == 400
    assert empty.context["reply_form"].errors["body"] == ["Write a message or choose a canned response."]
    program = SimpleUploadedFile("tool.exe", b"MZ", content_type="application/x-msdownload")
    refused = staff_client.post(page_url(ticket, "reply/"), {"body": "Here", "attachment": program})
    assert refused.status_code == 400 and "not accepted" in refused.context["reply_form"].errors["attachment"][0]
    assert not Comment.objects.exists() and not Attachment.objects.exists()


def test_canned_responses_fill_the_message(frozen, staff_client, ticket, acme, globex):
    platform = CannedResponse.objects.create(title="Restart", body="Please restart and tell us if it helps.")
    own = CannedResponse.objects.create(organization=acme, title="Acme printers", body="Acme's printers: call Joe.")
    theirs = CannedResponse.objects.create(organization=globex, title="Globex only", body="Globex secret.")
    page = staff_client.get(page_url(ticket)).content.decode()
    assert "Restart" in page and "Acme printers" in page and "Globex only" not in page
    assert 'id="canned-bodies"' in page and "Please restart and tell us if it helps." in page
    # No inline script (the site's CSP): scripts come from files; the texts are a JSON data block.
    for attributes in re.findall(r"<script([^>]*)>", page):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
    assert "tickets/canned-response.js" in page

    # "Insert" puts the text in the message to edit; nothing is sent.
    inserted = staff_client.post(
        page_url(ticket, "reply/"), {"canned": str(own.pk), "body": "Hi Alice,", "_insert": "1"}
    )
    assert inserted.status_code == 200
    assert inserted.context["reply_form"].initial["body"] == "Hi Alice,\n\nAcme's printers: call Joe."
    assert not Comment.objects.exists()

    # Sent with an empty message, the canned response is the reply.
    sent = staff_client.post(page_url(ticket, "reply/"), {"canned": str(platform.pk), "body": ""})
    assert sent.status_code == 302
    assert Comment.objects.get(ticket=ticket).body == "Please restart and tell us if it helps."
    # Another organization's canned response is not a choice.
    refused = staff_client.post(page_url(ticket, "reply/"), {"canned": str(theirs.pk), "body": ""})
    assert refused.status_code == 400 and "canned" in refused.context["reply_form"].errors


def test_time_is_logged_by_the_signed_in_technician(frozen, staff_client, staff, ticket):
    response = staff_client.post(page_url(ticket, "time/"), {"minutes": "45", "billable": "on", "note": "On site"})
    assert response.status_code == 302 and response["Location"] == page_url(ticket) + "#time"
    assert message_texts(response) == ["45 minutes (billable) logged on T-1001."]
    staff_client.post(page_url(ticket, "time/"), {"minutes": "10", "note": "Travel", "worked_on": "2026-11-09"})
    entries = {(e.minutes, e.billable, e.note, e.technician, e.worked_on.isoformat()) for e in TimeEntry.objects.all()}
    assert entries == {(45, True, "On site", staff, "2026-11-10"), (10, False, "Travel", staff, "2026-11-09")}
    page = staff_client.get(page_url(ticket))
    assert (page.context["minutes_total"], page.context["minutes_billable"]) == (55, 45)
    for bad in ("0", "1441", "ten"):
        refused = staff_client.post(page_url(ticket, "time/"), {"minutes": bad})
        assert refused.status_code == 400 and "minutes" in refused.context["time_form"].errors
    assert TimeEntry.objects.count() == 2


def test_attachments_download_from_their_ticket_only(frozen, staff_client, acme, ticket):
    attachment = attachment_add(ticket=ticket, upload=SimpleUploadedFile("a.txt", b"hello", content_type="text/plain"))
    response = staff_client.get(page_url(ticket, f"attachments/{attachment.pk}/"))
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"hello"
    other = ticket_create(organization=acme, subject="Other")
    assert staff_client.get(page_url(other, f"attachments/{attachment.pk}/")).status_code == 404


def test_an_unknown_ticket_goes_back_to_the_list(staff_client):
    response = staff_client.get(f"{LIST}00000000-0000-0000-0000-000000000000/change/")
    assert response.status_code == 302 and response["Location"] == LIST
    assert staff_client.get(f"{LIST}not-a-uuid/change/").status_code == 302


@pytest.mark.parametrize("replies", [1, 12])
def test_ticket_page_queries_do_not_grow_with_the_conversation(
    frozen, staff_client, staff, alice, ticket, replies, django_assert_max_num_queries
):
    for index in range(replies):
        comment = comment_add(ticket=ticket, body=f"Reply {index}", author=staff if index % 2 else alice,
                              by_staff=bool(index % 2))  # fmt: skip
        attachment_add(ticket=ticket, comment=comment,
                       upload=SimpleUploadedFile(f"f{index}.txt", b"x", content_type="text/plain"))  # fmt: skip
        time_entry_add(ticket=ticket, technician=staff, minutes=5)
    # session, user, OTP device, the ticket with its organization, people, calendar, merge target and rating;
    # comments with authors, attachments, time entries with technicians, activity with actors, canned responses
    # (the picker and its texts), the staff to assign, and the log entry check of the admin's history link: 15.
    with django_assert_max_num_queries(15):
        response = staff_client.get(page_url(ticket))
    assert len(response.context["comments"]) == replies
