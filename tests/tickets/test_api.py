"""The ticket API: open, list, filter, search, read and change tickets; comments, time entries, bulk changes and the
escalation queue; who may do what (organization key, partner key, customers, staff); scopes; tenant isolation of
every route; query counts of the lists.

Time stands still on Monday 23 November 2026, 10:00 in Sydney (Acme's business hours, 08:00-18:00)."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenancy.models import Role
from tenancy.services.api_keys import API_SCOPES
from tests.factories import MembershipFactory, UserFactory
from tickets import search
from tickets.models import ClockState, Comment, Ticket, TicketStatus, TimeEntry
from tickets.services import comment_add, ticket_create, ticket_merge, ticket_set_status, time_entry_add

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SYDNEY)
ALL_SCOPES = ("read", "write", "tickets:read", "tickets:write")
SLA_KEYS = {"policy", "first_response_due", "resolution_due", "first_response_state", "resolution_state",
            "remaining_seconds"}  # fmt: skip


def sydney(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SYDNEY)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture(autouse=True)
def monday_morning(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def tess(acme):
    """A staff technician of the MSP, with a membership so her session can act for Acme."""
    user = UserFactory(email="tess@keel.test", full_name="Tess Tech", is_staff=True)
    MembershipFactory(user=user, organization=acme, role=Role.MEMBER)
    return user


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def acme_key(api, acme, api_key_for):
    _, raw = api_key_for(organization=acme, scopes=ALL_SCOPES)
    return api(raw)


@pytest.fixture
def summit_raw(summit, api_key_for):
    _, raw = api_key_for(partner=summit, scopes=ALL_SCOPES)
    return raw


@pytest.fixture
def globex_ticket(globex, carol):
    ticket = ticket_create(organization=globex, subject="Globex payroll server down", requester=carol,
                           priority="P1", now=sydney(20, 17))  # fmt: skip
    comment_add(ticket=ticket, body="Globex internal detail", internal=True, by_staff=True)
    return ticket


def globex_free(response) -> str:
    body = response.content.decode()
    assert "globex" not in body.lower() and "payroll" not in body.lower()
    return body


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# -- open, read, change: each kind of caller ---------------------------------------------------------------------------


def test_scopes_are_registered():
    assert API_SCOPES["tickets:read"] == "Support tickets: read"
    assert API_SCOPES["tickets:write"] == "Support tickets: write"


def test_an_organization_key_opens_a_ticket_and_reads_it_back(acme_key, acme, alice):
    response = acme_key.post(
        "/api/tickets/",
        {"subject": "VPN drops", "description": "Every hour.", "priority": "P2", "category": "network",
         "tags": ["VPN", "remote"], "required_skills": ["networking"], "requester_email": "Alice@acme.test"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"] == "T-1001"
    assert (body["subject"], body["status"], body["priority"], body["channel"]) == ("VPN drops", "NEW", "P2", "api")
    assert body["tags"] == ["remote", "vpn"] and body["required_skills"] == ["networking"]
    assert (body["organization"], body["category"], body["requester"]) == ("acme", "network", "Alice@acme.test")
    assert body["assignee"] is None and body["merged_into"] is None and body["escalation_level"] == 0
    assert set(body["sla"]) == SLA_KEYS
    # Core+ P2: four business hours to respond, sixteen to resolve (Monday 10:00 -> 14:00; 8 h Monday + 8 h Tuesday).
    assert body["sla"]["policy"] == "Core+ standard"
    assert when(body["sla"]["first_response_due"]) == sydney(23, 14)
    assert when(body["sla"]["resolution_due"]) == sydney(24, 16)
    assert body["sla"]["first_response_state"] == body["sla"]["resolution_state"] == "ok"
    assert body["sla"]["remaining_seconds"] == 4 * 3600
    ticket = Ticket.objects.get(pk=body["id"])
    assert ticket.requester == alice  # a member's address makes them the requester
    assert acme_key.get(f"/api/tickets/{ticket.id}/").json() == body
    assert acme_key.get(f"/api/tickets/{ticket.id}").status_code == 200


def test_the_sla_block_is_read_live(acme_key, acme, time_machine):
    ticket = ticket_create(organization=acme, subject="Slow laptop", priority="P1", now=sydney(23, 8))
    body = acme_key.get(f"/api/tickets/{ticket.id}/").json()
    # Stored at creation: two hours left. Read at 10:00: the two business hours are gone.
    assert ticket.sla_remaining_seconds == 7200
    assert body["sla"]["first_response_state"] == "breached"
    assert body["sla"]["remaining_seconds"] == 0
    time_machine.move_to(sydney(23, 9, 40), tick=False)  # 1 h 40 min of 2 h: past 80 %
    body = acme_key.get(f"/api/tickets/{ticket.id}/").json()
    assert body["sla"]["first_response_state"] == "at_risk"
    assert body["sla"]["remaining_seconds"] == 20 * 60


def test_a_partner_key_acts_for_the_organization_in_the_header(api, summit_raw, acme, initech, globex_ticket):
    partner = api(summit_raw)
    response = partner.post("/api/tickets/", {"subject": "Printer"}, format="json")
    assert response.status_code == 400
    assert "X-Organization" in response.json()
    response = api(summit_raw, organization="initech").post("/api/tickets/", {"subject": "Printer"}, format="json")
    assert response.status_code == 201
    assert response.json()["organization"] == "initech"
    assert response.json()["requester"] == ""
    ticket_create(organization=acme, subject="Email")
    # Without the header a partner key lists across its organizations (never Globex).
    listed = partner.get("/api/tickets/")
    assert sorted(row["organization"] for row in listed.json()["results"]) == ["acme", "initech"]
    globex_free(listed)
    narrowed = partner.get("/api/tickets/?organization=initech").json()["results"]
    assert [row["subject"] for row in narrowed] == ["Printer"]
    assert [
        row["organization"] for row in api(summit_raw, organization="acme").get("/api/tickets/").json()["results"]
    ] == ["acme"]


def test_alice_opens_a_ticket_and_bob_as_a_member_may_only_edit_and_resolve(alice, bob, tess):
    response = session(alice).post("/api/tickets/", {"subject": "Monitor flickers", "priority": "P3"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["requester"] == "alice@acme.test"
    ticket_id = response.json()["id"]
    bob_api = session(bob)
    assert ids(bob_api.get("/api/tickets/")) == [ticket_id]
    response = bob_api.patch(f"/api/tickets/{ticket_id}/", {"subject": "Monitor flickers (left one)",
                                                            "description": "Since Friday."}, format="json")  # fmt: skip
    assert response.status_code == 200
    assert response.json()["subject"] == "Monitor flickers (left one)"
    assert bob_api.patch(f"/api/tickets/{ticket_id}/", {"status": "RESOLVED"}, format="json").json()["status"] == (
        "RESOLVED"
    )
    assert bob_api.patch(f"/api/tickets/{ticket_id}/", {"status": "OPEN"}, format="json").json()["status"] == "OPEN"
    for refused in ({"priority": "P1"}, {"assignee": str(tess.id)}, {"status": "ON_HOLD"}, {"tags": ["vip"]},
                    {"subject": "Sneaky", "priority": "P1"}):  # fmt: skip
        response = bob_api.patch(f"/api/tickets/{ticket_id}/", refused, format="json")
        assert response.status_code == 403, refused
    ticket = Ticket.objects.get(pk=ticket_id)
    assert (ticket.priority, ticket.assignee, ticket.status, ticket.tags) == ("P3", None, "OPEN", [])
    assert ticket.subject == "Monitor flickers (left one)"
    # Customers open tickets for themselves only.
    response = session(bob).post("/api/tickets/", {"subject": "X", "requester_email": "ceo@acme.test"}, format="json")
    assert response.status_code == 400 and "requester_email" in response.json()


def test_a_partner_admin_session_is_a_customer_for_tickets(pat, acme):
    ticket = ticket_create(organization=acme, subject="Wi-Fi")
    client = session(pat)
    response = client.patch(f"/api/tickets/{ticket.id}/", {"priority": "P1"}, format="json", HTTP_X_ORGANIZATION="acme")
    assert response.status_code == 403
    assert client.get(f"/api/tickets/{ticket.id}/").status_code == 200


def test_staff_assign_prioritise_and_pause_in_one_change(tess, acme, alice):
    ticket = ticket_create(organization=acme, subject="Server slow", requester=alice, now=sydney(23, 9))
    response = session(tess).patch(
        f"/api/tickets/{ticket.id}/",
        {"assignee": str(tess.id), "priority": "P1", "status": "PENDING_CUSTOMER", "tags": ["server"],
         "category": "infra", "required_skills": ["windows"]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["assignee"] == {"id": str(tess.id), "name": "Tess Tech"}
    assert (body["priority"], body["status"], body["tags"], body["category"]) == ("P1", "PENDING_CUSTOMER",
                                                                                  ["server"], "infra")  # fmt: skip
    assert body["required_skills"] == ["windows"]
    assert body["sla"]["resolution_state"] == "paused" and body["sla"]["resolution_due"] is None
    response = session(tess).patch(f"/api/tickets/{ticket.id}/", {"assignee": None}, format="json")
    assert response.json()["assignee"] is None


def test_an_organization_key_may_assign_and_set_priority(acme_key, acme, tess):
    ticket = ticket_create(organization=acme, subject="Backup failed")
    response = acme_key.patch(f"/api/tickets/{ticket.id}/", {"assignee": str(tess.id), "priority": "P2"}, format="json")
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert (ticket.assignee, ticket.priority) == (tess, "P2")


# -- bad input and conflicts -------------------------------------------------------------------------------------------


def test_bad_input_names_the_field(acme_key, acme, bob):
    ticket = ticket_create(organization=acme, subject="Phones")
    cases = [
        ("post", "/api/tickets/", {}, "subject"),
        ("post", "/api/tickets/", {"subject": "   "}, "subject"),
        ("post", "/api/tickets/", {"subject": "x" * 201}, "subject"),
        ("post", "/api/tickets/", {"subject": "Phones", "priority": "P9"}, "priority"),
        ("post", "/api/tickets/", {"subject": "Phones", "tags": "vip"}, "tags"),
        ("post", "/api/tickets/", {"subject": "Phones", "requester_email": "nope"}, "requester_email"),
        ("patch", f"/api/tickets/{ticket.id}/", {"status": "DONE"}, "status"),
        ("patch", f"/api/tickets/{ticket.id}/", {"assignee": str(bob.id)}, "assignee"),  # not staff
        ("patch", f"/api/tickets/{ticket.id}/", {"assignee": str(uuid.uuid4())}, "assignee"),
        ("patch", f"/api/tickets/{ticket.id}/", {"subject": ""}, "subject"),
        ("post", f"/api/tickets/{ticket.id}/comments/", {"body": ""}, "body"),
        ("post", f"/api/tickets/{ticket.id}/time-entries/", {"minutes": 0, "technician": str(bob.id)}, "minutes"),
    ]
    for method, path, data, field in cases:
        response = getattr(acme_key, method)(path, data, format="json")
        assert response.status_code == 400, (path, data, response.content)
        assert field in response.json(), (path, data, response.json())
    assert Ticket.objects.count() == 1
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.status, ticket.assignee) == ("Phones", "NEW", None)


def test_changing_a_merged_tickets_status_is_a_conflict_and_changes_nothing(acme_key, acme):
    duplicate = ticket_create(organization=acme, subject="Outlook crashes")
    original = ticket_create(organization=acme, subject="Outlook crash on start")
    ticket_merge(ticket=duplicate, into=original)
    response = acme_key.patch(f"/api/tickets/{duplicate.id}/", {"subject": "Renamed", "status": "OPEN"}, format="json")
    assert response.status_code == 409
    assert "merged" in response.json()["status"][0]
    duplicate.refresh_from_db()
    assert (duplicate.subject, duplicate.status) == ("Outlook crashes", TicketStatus.CLOSED)
    assert acme_key.get(f"/api/tickets/{duplicate.id}/").json()["merged_into"] == str(original.id)


def test_unknown_or_malformed_ids_are_404(acme_key):
    for path in ("/api/tickets/not-a-uuid/", f"/api/tickets/{uuid.uuid4()}/", f"/api/tickets/{uuid.uuid4()}/comments/"):
        assert acme_key.get(path).status_code == 404


# -- scopes ------------------------------------------------------------------------------------------------------------


def test_keys_need_the_ticket_scopes(api, acme, api_key_for):
    ticket = ticket_create(organization=acme, subject="Scanner")
    _, base_only = api_key_for(organization=acme, scopes=("read", "write"))
    response = api(base_only).get("/api/tickets/")
    assert response.status_code == 403 and "tickets:read" in response.json()["detail"]
    assert api(base_only).get(f"/api/tickets/{ticket.id}/comments/").status_code == 403
    _, reader = api_key_for(organization=acme, scopes=("read", "tickets:read"))
    assert api(reader).get("/api/tickets/").status_code == 200
    assert api(reader).get("/api/tickets/escalations/").status_code == 200
    response = api(reader).post("/api/tickets/", {"subject": "New"}, format="json")
    assert response.status_code == 403 and "tickets:write" in response.json()["detail"]
    assert api(reader).patch(f"/api/tickets/{ticket.id}/", {"subject": "New"}, format="json").status_code == 403
    assert api(reader).post("/api/tickets/bulk/", {"ids": [str(ticket.id)], "status": "OPEN"}).status_code == 403
    _, no_base_read = api_key_for(organization=acme, scopes=("tickets:read",))
    assert api(no_base_read).get("/api/tickets/").status_code == 403
    assert Ticket.objects.get().subject == "Scanner"


def test_anonymous_callers_are_refused(api, acme):
    assert api(None).get("/api/tickets/").status_code in (401, 403)


# -- filters and search ------------------------------------------------------------------------------------------------


@pytest.fixture
def acme_board(acme, tess):
    """A P1 ticket at risk, a P1 breached, a P3 on track, a P4 resolved (stored states refreshed at 10:00)."""
    at_risk = ticket_create(organization=acme, subject="Mail queue stuck", priority="P1", now=sydney(23, 8, 10))
    breached = ticket_create(organization=acme, subject="Site offline", priority="P1", now=sydney(20, 17))
    on_track = ticket_create(organization=acme, subject="New starter laptop", priority="P3")
    resolved = ticket_create(organization=acme, subject="Password reset", priority="P4", now=sydney(23, 9))
    for ticket in (at_risk, breached):
        ticket_set_status(ticket=ticket, status=TicketStatus.OPEN, now=NOW)
    ticket_set_status(ticket=resolved, status=TicketStatus.RESOLVED, now=NOW)
    Ticket.objects.filter(pk=breached.pk).update(assignee=tess)
    return {name: Ticket.objects.get(pk=t.pk) for name, t in
            {"at_risk": at_risk, "breached": breached, "on_track": on_track, "resolved": resolved}.items()}  # fmt: skip


def test_list_filters(acme_key, acme_board, tess, globex_ticket):
    board = {name: str(ticket.id) for name, ticket in acme_board.items()}
    assert acme_board["at_risk"].first_response_state == ClockState.AT_RISK
    assert acme_board["breached"].first_response_state == ClockState.BREACHED

    def listed(query: str) -> set[str]:
        return set(ids(acme_key.get(f"/api/tickets/?{query}")))

    assert listed("") == set(board.values())
    assert listed("status=OPEN") == {board["at_risk"], board["breached"]}
    assert listed("status=NEW,RESOLVED") == {board["on_track"], board["resolved"]}
    assert listed("priority=P1") == {board["at_risk"], board["breached"]}
    assert listed("priority=P3,P4") == {board["on_track"], board["resolved"]}
    assert listed(f"assignee={tess.id}") == {board["breached"]}
    assert listed("assignee=none") == {board["at_risk"], board["on_track"], board["resolved"]}
    assert listed("sla_state=at_risk") == {board["at_risk"]}
    assert listed("sla_state=breached") == {board["breached"]}
    assert listed("sla_state=met") == {board["resolved"]}
    assert listed("organization=acme") == set(board.values())
    assert listed("organization=globex") == set()
    assert listed("status=OPEN&priority=P1&assignee=none") == {board["at_risk"]}
    for bad, field in (("status=DONE", "status"), ("priority=P0", "priority"), ("assignee=bob", "assignee"),
                       ("sla_state=late", "sla_state"), ("ordering=subject", "ordering")):  # fmt: skip
        response = acme_key.get(f"/api/tickets/?{bad}")
        assert response.status_code == 400 and field in response.json(), bad


def test_list_ordering(acme_key, acme_board):
    board = {str(ticket.id): name for name, ticket in acme_board.items()}

    def order(query: str) -> list[str]:
        return [board[item] for item in ids(acme_key.get(f"/api/tickets/?{query}"))]

    # Newest first by default: created Friday, Monday 08:10, 09:00, 10:00.
    assert order("") == ["on_track", "resolved", "at_risk", "breached"]
    assert order("ordering=created") == ["breached", "at_risk", "resolved", "on_track"]
    assert order("ordering=priority") == ["at_risk", "breached", "on_track", "resolved"]
    assert order("ordering=-priority") == ["resolved", "on_track", "at_risk", "breached"]
    # Resolution due: Monday 15:00 (Friday's P1), 16:10, Friday (P3, 40 h), the resolved P4's 80 h.
    assert order("ordering=resolution_due") == ["breached", "at_risk", "on_track", "resolved"]
    assert order("ordering=-resolution_due") == ["resolved", "on_track", "at_risk", "breached"]


@pytest.fixture
def searchable(acme, tess):
    printer = ticket_create(organization=acme, subject="Printer jammed", description="Tray 2 on level three.")
    mail = ticket_create(organization=acme, subject="Email bounces", description="Since this morning.")
    comment_add(ticket=mail, body="The firewall blocks outbound SMTP.", author=tess, by_staff=True)
    secret = ticket_create(organization=acme, subject="Shared drive")
    comment_add(ticket=secret, body="Rotation of the vault credentials pending.", author=tess, by_staff=True,
                internal=True)  # fmt: skip
    return {"printer": str(printer.id), "mail": str(mail.id), "secret": str(secret.id)}


def test_full_text_search_covers_subject_description_and_public_replies(acme_key, searchable, globex_ticket, tess):
    if connection.vendor != "postgresql":
        pytest.skip("full-text search needs PostgreSQL")
    assert search.full_text_available()

    def found(text: str, client=acme_key) -> list[str]:
        return ids(client.get("/api/tickets/", {"q": text}))

    assert found("printers") == [searchable["printer"]]  # stemmed: printers ~ printer
    assert found("level") == [searchable["printer"]]  # description
    assert found("firewall") == [searchable["mail"]]  # a word of a public reply
    assert found("blocking firewalls") == [searchable["mail"]]
    assert found("vault") == []  # internal notes are never searched, not even for staff
    assert found("vault", session(tess)) == []
    assert found("payroll") == []  # Globex's ticket
    assert found("T-1002") == [searchable["mail"]]
    assert found('"printer jammed" -email') == [searchable["printer"]]  # web-search syntax


def test_search_falls_back_to_containment_without_postgresql(acme_key, searchable, monkeypatch):
    monkeypatch.setattr(search, "full_text_available", lambda: False)
    assert ids(acme_key.get("/api/tickets/", {"q": "firewall"})) == [searchable["mail"]]
    assert ids(acme_key.get("/api/tickets/", {"q": "JAMMED"})) == [searchable["printer"]]
    assert ids(acme_key.get("/api/tickets/", {"q": "vault"})) == []


# -- escalations -------------------------------------------------------------------------------------------------------


def test_escalations_list_open_tickets_at_risk_or_breached_now_soonest_due_first(acme, acme_key, acme_board,
                                                                                  globex_ticket):  # fmt: skip
    # Opened 08:20: at risk since 09:56 (80 % of two hours), but no SLA check has stored that yet.
    unchecked = ticket_create(organization=acme, subject="Door badge reader", priority="P1", now=sydney(23, 8, 20))
    assert unchecked.first_response_state == ClockState.OK
    assert unchecked.sla_next_check_at is not None and unchecked.sla_next_check_at <= NOW
    # A resolved ticket that breached is no longer escalated.
    late = ticket_create(organization=acme, subject="Old outage", priority="P1", now=sydney(20, 9))
    ticket_set_status(ticket=late, status=TicketStatus.RESOLVED, now=NOW)
    response = acme_key.get("/api/tickets/escalations/")
    globex_free(response)
    rows = response.json()["results"]
    # Due: Monday 09:00 (breached), 10:10 (at risk), 10:20 (at risk, unchecked).
    assert [row["id"] for row in rows] == [str(acme_board["breached"].id), str(acme_board["at_risk"].id),
                                           str(unchecked.id)]  # fmt: skip
    assert [row["sla"]["first_response_state"] for row in rows] == ["breached", "at_risk", "at_risk"]
    assert rows[2]["sla"]["remaining_seconds"] == 20 * 60
    assert acme_key.get("/api/tickets/escalations").status_code == 200


def test_a_partner_key_sees_escalations_across_its_organizations(api, summit_raw, acme, initech, globex_ticket):
    acme_late = ticket_create(organization=acme, subject="Acme late", priority="P1", now=sydney(20, 17))
    initech_late = ticket_create(organization=initech, subject="Initech late", priority="P1", now=sydney(20, 17))
    response = api(summit_raw).get("/api/tickets/escalations/")
    globex_free(response)
    assert sorted(ids(response)) == sorted([str(acme_late.id), str(initech_late.id)])
    assert ids(api(summit_raw, organization="initech").get("/api/tickets/escalations/")) == [str(initech_late.id)]


# -- comments ----------------------------------------------------------------------------------------------------------


def test_internal_notes_are_hidden_from_customers_and_organization_keys(acme, alice, bob, tess, acme_key, api,
                                                                        summit_raw):  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Laptop won't boot", requester=alice, now=sydney(23, 9))
    path = f"/api/tickets/{ticket.id}/comments/"
    note = session(tess).post(path, {"body": "Probably the SSD. Check warranty.", "internal": True}, format="json")
    assert note.status_code == 201 and note.json()["internal"] is True
    reply = session(tess).post(path, {"body": "Can you bring it in?"}, format="json")
    assert reply.json()["by_staff"] is True and reply.json()["author"] == "Tess Tech"
    answer = session(alice).post(path, {"body": "Sure, at 2pm."}, format="json")
    assert answer.status_code == 201 and answer.json()["by_staff"] is False
    public = ["Can you bring it in?", "Sure, at 2pm."]
    for client in (session(alice), session(bob), acme_key):
        response = client.get(path)
        assert [row["body"] for row in response.json()["results"]] == public
        assert "SSD" not in response.content.decode()
    everything = ["Probably the SSD. Check warranty.", *public]
    for client in (session(tess), api(summit_raw), api(summit_raw, organization="acme")):
        assert [row["body"] for row in client.get(path).json()["results"]] == everything
    # Customers and organization keys cannot write notes.
    for client in (session(bob), acme_key):
        response = client.post(path, {"body": "psst", "internal": True}, format="json")
        assert response.status_code == 400 and "internal" in response.json()
    assert Comment.objects.filter(ticket=ticket).count() == 3


def test_who_replies_as_the_msp(acme, acme_key, api, summit_raw, mailoutbox, django_capture_on_commit_callbacks,
                                alice):  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Teams audio", requester=alice, now=sydney(23, 9))
    path = f"/api/tickets/{ticket.id}/comments/"
    customer = acme_key.post(path, {"body": "Still broken."}, format="json").json()
    assert customer["by_staff"] is False and customer["author"] == "API" and customer["channel"] == "api"
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None
    with django_capture_on_commit_callbacks(execute=True):
        msp = api(summit_raw, organization="acme").post(path, {"body": "Update the driver."}, format="json").json()
    assert msp["by_staff"] is True and msp["author"] == "Support"
    ticket.refresh_from_db()
    assert ticket.first_responded_at == NOW and ticket.status == TicketStatus.OPEN
    assert [mail.to for mail in mailoutbox] == [["alice@acme.test"]]
    body = acme_key.get(f"/api/tickets/{ticket.id}/").json()
    assert body["sla"]["first_response_state"] == "met"


# -- time entries ------------------------------------------------------------------------------------------------------


def test_time_entries_and_totals(acme, alice, bob, tess, acme_key):
    ticket = ticket_create(organization=acme, subject="Office move", requester=alice)
    path = f"/api/tickets/{ticket.id}/time-entries/"
    response = session(tess).post(
        path, {"minutes": 30, "note": "Patch panel", "worked_on": "2026-11-20"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["technician"] == {"id": str(tess.id), "name": "Tess Tech"}
    assert response.json()["billable"] is True and response.json()["worked_on"] == "2026-11-20"
    unbilled = {"minutes": 15, "billable": False, "worked_on": "2026-11-23"}
    assert session(tess).post(path, unbilled, format="json").status_code == 201
    response = acme_key.post(
        path, {"minutes": 45, "technician": str(tess.id), "worked_on": "2026-11-22"}, format="json"
    )
    assert response.status_code == 201
    # Keys must name a staff technician.
    for data in ({"minutes": 10}, {"minutes": 10, "technician": str(bob.id)}):
        response = acme_key.post(path, data, format="json")
        assert response.status_code == 400 and "technician" in response.json()
    # Customers cannot log time.
    assert session(alice).post(path, {"minutes": 5}, format="json").status_code == 403
    body = session(alice).get(path).json()
    assert (body["count"], body["total_minutes"], body["billable_minutes"]) == (3, 90, 75)
    assert [row["minutes"] for row in body["results"]] == [15, 45, 30]  # latest work day first
    assert TimeEntry.objects.filter(ticket=ticket).count() == 3
    paged = acme_key.get(path, {"page_size": 1}).json()
    assert len(paged["results"]) == 1 and paged["total_minutes"] == 90 and paged["next"]


# -- bulk --------------------------------------------------------------------------------------------------------------


def test_bulk_change_applies_to_every_ticket(acme, acme_key, tess):
    tickets = [ticket_create(organization=acme, subject=f"Laptop {n}", tags=["hardware"]) for n in range(3)]
    response = acme_key.post(
        "/api/tickets/bulk/",
        {"ids": [str(t.id) for t in tickets], "assignee": str(tess.id), "status": "OPEN", "priority": "P2",
         "add_tags": ["Refresh"]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json() == {"updated": 3}
    for ticket in tickets:
        ticket.refresh_from_db()
        assert (ticket.assignee, ticket.status, ticket.priority) == (tess, "OPEN", "P2")
        assert ticket.tags == ["hardware", "refresh"]
    response = session(tess).post("/api/tickets/bulk/", {"ids": [str(tickets[0].id)], "assignee": None}, format="json")
    assert response.status_code == 200
    tickets[0].refresh_from_db()
    assert tickets[0].assignee is None


def test_bulk_removes_tags_and_refuses_adding_and_removing_the_same(acme, acme_key):
    tickets = [ticket_create(organization=acme, subject=f"Printer {n}", tags=["printing", "vip"]) for n in range(2)]
    ids = [str(t.id) for t in tickets]
    response = acme_key.post("/api/tickets/bulk/", {"ids": ids, "remove_tags": ["VIP"], "add_tags": ["l2"]},
                             format="json")  # fmt: skip
    assert response.status_code == 200, response.content
    assert [Ticket.objects.get(pk=pk).tags for pk in ids] == [["l2", "printing"], ["l2", "printing"]]
    response = acme_key.post("/api/tickets/bulk/", {"ids": ids, "remove_tags": ["l2"], "add_tags": ["l2"]},
                             format="json")  # fmt: skip
    assert response.status_code == 400
    assert "Tags cannot be added and removed at once: l2." in response.json()["remove_tags"][0]
    assert [Ticket.objects.get(pk=pk).tags for pk in ids] == [["l2", "printing"], ["l2", "printing"]]


def test_bulk_is_all_or_nothing(acme, initech, acme_key, api, summit_raw, alice, globex_ticket):
    tickets = [ticket_create(organization=acme, subject=f"Desk {n}") for n in range(3)]
    acme_ids = [str(t.id) for t in tickets]
    initech_ticket = ticket_create(organization=initech, subject="Initech desk")
    partner_acme = api(summit_raw, organization="acme")
    for client, extra in ((acme_key, str(globex_ticket.id)), (acme_key, str(uuid.uuid4())),
                          (partner_acme, str(initech_ticket.id))):  # fmt: skip
        response = client.post("/api/tickets/bulk/", {"ids": [*acme_ids, extra], "status": "ON_HOLD"}, format="json")
        assert response.status_code == 404
        globex_free(response)
    # One ticket of the batch fails inside the service (a merged one cannot change status): all roll back.
    ticket_merge(ticket=tickets[2], into=tickets[1])
    response = acme_key.post("/api/tickets/bulk/", {"ids": acme_ids, "priority": "P1", "status": "OPEN"}, format="json")
    assert response.status_code == 409
    assert set(Ticket.objects.filter(pk__in=acme_ids).values_list("priority", flat=True)) == {"P3"}
    assert set(Ticket.objects.exclude(pk=tickets[2].pk).values_list("status", flat=True)) == {"NEW"}
    response = acme_key.post("/api/tickets/bulk/", {"ids": [str(uuid.uuid4()) for _ in range(501)], "status": "OPEN"},
                             format="json")  # fmt: skip
    assert response.status_code == 400 and "ids" in response.json()
    assert acme_key.post("/api/tickets/bulk/", {"ids": [], "status": "OPEN"}, format="json").status_code == 400
    assert (
        acme_key.post("/api/tickets/bulk/", {"ids": acme_ids[:1], "status": "LATER"}, format="json").status_code == 400
    )
    # A partner key must say which organization; customers cannot bulk-change.
    response = api(summit_raw).post("/api/tickets/bulk/", {"ids": acme_ids, "status": "OPEN"}, format="json")
    assert response.status_code == 400 and "X-Organization" in response.json()
    assert (
        session(alice).post("/api/tickets/bulk/", {"ids": acme_ids, "status": "OPEN"}, format="json").status_code == 403
    )
    globex_ticket.refresh_from_db()
    assert globex_ticket.status == TicketStatus.NEW


# -- tenant isolation of every route -----------------------------------------------------------------------------------


@pytest.fixture
def acme_callers(alice, acme_key):
    return [session(alice), acme_key]


@pytest.mark.isolation("api-ticket-list")
def test_list_never_shows_globex(acme, acme_callers, globex_ticket, api, summit_raw):
    mine = ticket_create(organization=acme, subject="Acme ticket")
    for client in [*acme_callers, api(summit_raw)]:
        response = client.get("/api/tickets/")
        globex_free(response)
        assert ids(response) == [str(mine.id)]
        assert ids(client.get("/api/tickets/?organization=globex")) == []
        assert ids(client.get("/api/tickets/?q=payroll")) == []
        assert client.get("/api/tickets/", HTTP_X_ORGANIZATION="globex").status_code == 404
        response = client.post("/api/tickets/", {"subject": "Into Globex"}, format="json", HTTP_X_ORGANIZATION="globex")
        assert response.status_code == 404
    assert Ticket.objects.filter(organization=globex_ticket.organization).count() == 1


@pytest.mark.isolation("api-ticket-detail")
def test_a_globex_ticket_cannot_be_read_or_changed(acme_callers, globex_ticket, api, summit_raw, tess):
    path = f"/api/tickets/{globex_ticket.id}/"
    for client in [*acme_callers, api(summit_raw), api(summit_raw, organization="acme"), session(tess)]:
        response = client.get(path)
        assert response.status_code == 404
        globex_free(response)
        response = client.patch(path, {"subject": "Owned", "status": "RESOLVED"}, format="json")
        assert response.status_code in (404, 400)  # 400: a partner key without X-Organization may not write at all
        globex_free(response)
    globex_ticket.refresh_from_db()
    assert (globex_ticket.subject, globex_ticket.status) == ("Globex payroll server down", TicketStatus.NEW)


@pytest.mark.isolation("api-ticket-comments")
def test_a_globex_tickets_conversation_cannot_be_read_or_joined(acme_callers, globex_ticket, api, summit_raw):
    path = f"/api/tickets/{globex_ticket.id}/comments/"
    for client in [*acme_callers, api(summit_raw), api(summit_raw, organization="acme")]:
        response = client.get(path)
        assert response.status_code == 404
        globex_free(response)
        assert client.post(path, {"body": "Hello Globex"}, format="json").status_code in (404, 400)
    assert list(Comment.objects.filter(ticket=globex_ticket).values_list("body", flat=True)) == [
        "Globex internal detail"
    ]


@pytest.mark.isolation("api-ticket-time-entries")
def test_a_globex_tickets_time_cannot_be_read_or_logged(acme_callers, globex_ticket, api, summit_raw, tess):
    time_entry_add(ticket=globex_ticket, technician=tess, minutes=60, note="Globex payroll fix")
    path = f"/api/tickets/{globex_ticket.id}/time-entries/"
    for client in [*acme_callers, api(summit_raw, organization="acme"), session(tess)]:
        response = client.get(path)
        assert response.status_code == 404
        globex_free(response)
        response = client.post(path, {"minutes": 30, "technician": str(tess.id)}, format="json")
        assert response.status_code == 404
    assert TimeEntry.objects.filter(ticket=globex_ticket).count() == 1


@pytest.mark.isolation("api-ticket-bulk")
def test_bulk_cannot_touch_globex(acme_key, globex_ticket, api, summit_raw, tess):
    for client in (acme_key, api(summit_raw, organization="acme"), session(tess)):
        response = client.post("/api/tickets/bulk/", {"ids": [str(globex_ticket.id)], "priority": "P4"}, format="json")
        assert response.status_code == 404
        globex_free(response)
    globex_ticket.refresh_from_db()
    assert globex_ticket.priority == "P1"


@pytest.mark.isolation("api-ticket-escalations")
def test_escalations_never_show_globex(acme, acme_callers, globex_ticket):
    acme_late = ticket_create(organization=acme, subject="Acme late", priority="P1", now=sydney(20, 17))
    for client in acme_callers:
        response = client.get("/api/tickets/escalations/")
        globex_free(response)
        assert ids(response) == [str(acme_late.id)]
        assert client.get("/api/tickets/escalations/", HTTP_X_ORGANIZATION="globex").status_code == 404


def test_carol_sees_nothing_of_acme(carol, acme, alice):
    ticket = ticket_create(organization=acme, subject="Acme secret project", requester=alice)
    client = session(carol)
    assert ids(client.get("/api/tickets/")) == []
    for path in (f"/api/tickets/{ticket.id}/", f"/api/tickets/{ticket.id}/comments/",
                 f"/api/tickets/{ticket.id}/time-entries/"):  # fmt: skip
        assert client.get(path).status_code == 404


# -- query counts ------------------------------------------------------------------------------------------------------


def _count(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(captured)


def test_ticket_list_queries_do_not_grow_with_the_page(acme, acme_key, tess, alice, django_assert_max_num_queries):
    def add(count: int) -> None:
        for n in range(count):
            ticket = ticket_create(organization=acme, subject=f"Ticket {n}", requester=alice,
                                   priority=("P1", "P2", "P3", "P4")[n % 4], now=sydney(23, 8))  # fmt: skip
            Ticket.objects.filter(pk=ticket.pk).update(assignee=tess)

    acme_key.get("/api/tickets/")  # the key's first use records last_used_at; later calls in the minute do not
    add(3)
    # Key: the key (with its organization), COUNT, the page with organization, assignee, SLA policy and calendar.
    with django_assert_max_num_queries(3):
        small = acme_key.get("/api/tickets/")
    add(27)
    with django_assert_max_num_queries(3):
        large = acme_key.get("/api/tickets/")
    assert len(small.json()["results"]) == 3 and len(large.json()["results"]) == 30
    # Session: the user, her confirmed TOTP devices and the organizations requiring two factors (the second-factor
    # check), the organizations visible to her, her role, COUNT, the page, and the session's save (a savepoint,
    # the UPDATE, its release).
    alice_api = session(alice)
    alice_api.get("/api/tickets/")
    assert _count(alice_api, "/api/tickets/?page_size=3") == _count(alice_api, "/api/tickets/?page_size=30")
    with django_assert_max_num_queries(10):
        alice_api.get("/api/tickets/?page_size=30")
    # Escalations: the key, COUNT, the page.
    with django_assert_max_num_queries(3):
        escalated = acme_key.get("/api/tickets/escalations/")
    assert escalated.json()["count"] == 8  # the P1s: breached at 10:00


def test_comment_and_time_entry_lists_do_not_grow_with_the_page(acme, acme_key, tess, django_assert_max_num_queries):
    ticket = ticket_create(organization=acme, subject="Busy ticket")
    acme_key.get("/api/tickets/")

    def add(count: int) -> None:
        for n in range(count):
            comment_add(ticket=ticket, body=f"Reply {n}", author=tess, by_staff=True)
            time_entry_add(ticket=ticket, technician=tess, minutes=10 + n)

    add(3)
    comments = f"/api/tickets/{ticket.id}/comments/"
    entries = f"/api/tickets/{ticket.id}/time-entries/"
    # Comments: the key, the ticket, COUNT, the page with authors, the page's attachments.
    # Time entries: the key, the ticket, the totals, COUNT, the page with technicians.
    small = (_count(acme_key, comments), _count(acme_key, entries))
    add(27)
    with django_assert_max_num_queries(5):
        assert len(acme_key.get(comments).json()["results"]) == 30
    with django_assert_max_num_queries(5):
        assert len(acme_key.get(entries).json()["results"]) == 30
    assert (_count(acme_key, comments), _count(acme_key, entries)) == small
