"""The dashboard's figures and activity feed, read in one query: what they count, what they leave out, and that the
feed reads exactly as the template filters would write it."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.template.defaultfilters import date as date_filter
from django.utils import timezone, translation

from billing.models import Invoice, InvoiceStatus
from integrations.ninjaone.models import Device
from portal.dashboard_selectors import dashboard_figures
from portal.views.dashboard import activity_time
from tenancy.audit import audit_record
from tenancy.models import ApiKey, AuditEvent, Invitation, Role
from tenancy.services import api_key_create, invitation_create
from tests.factories import MembershipFactory, UserFactory
from tests.portal.test_queries import BASE
from tickets.models import Ticket, TicketStatus

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)

# The activity rows as the template wrote them with filters, before the view formatted them itself.
FILTERED_ROWS = Template(
    "{% load portal_tags %}{% for event in events %}<tr>"
    '<td><time datetime="{{ event.created_at|date:\'c\' }}">{{ event.created_at|date:"j M Y, H:i" }}</time></td>'
    '<td>{{ event.action|audit_label }}</td><td>{{ event.actor_label|default:"system" }}</td>'
    '<td class="muted">{{ event.target_label }}</td></tr>{% endfor %}'
)


def squeeze(html: str) -> str:
    return re.sub(r">\s+<", "><", html)


def invitations_and_keys(org, inviter, prefix: str) -> None:
    """One of each: open, expired, accepted and revoked invitations; active, expiring, expired and revoked keys."""
    emails = [f"{prefix}-{state}@example.test" for state in ("open", "expired", "accepted", "revoked")]
    for email in emails:
        invitation_create(organization=org, email=email, role=Role.MEMBER, invited_by=inviter)
    Invitation.objects.filter(email=emails[1]).update(expires_at=NOW - timedelta(seconds=1))
    Invitation.objects.filter(email=emails[2]).update(accepted_at=NOW - timedelta(days=1))
    Invitation.objects.filter(email=emails[3]).update(revoked_at=NOW - timedelta(days=1))
    for state in ("forever", "later", "expired", "revoked"):
        api_key_create(name=f"{prefix} {state}", scopes=["read"], organization=org, created_by=inviter)
    ApiKey.objects.filter(name=f"{prefix} later").update(expires_at=NOW + timedelta(days=1))
    ApiKey.objects.filter(name=f"{prefix} expired").update(expires_at=NOW)
    ApiKey.objects.filter(name=f"{prefix} revoked").update(revoked_at=NOW - timedelta(days=1))


def test_the_figures_count_open_invitations_and_active_keys_of_the_organization_only(
    client_for, alice, bob, acme, carol, globex, time_machine
):
    time_machine.move_to(NOW, tick=False)
    invitations_and_keys(acme, alice, "acme")
    invitations_and_keys(globex, carol, "globex")
    MembershipFactory(user=UserFactory(), organization=globex, role=Role.MEMBER)
    response = client_for(alice).get("/dashboard/")
    context = response.context
    assert (context["member_count"], context["open_invitation_count"], context["active_key_count"]) == (2, 1, 2)
    body = response.content.decode()
    assert "<dt>Members</dt><dd>2</dd>" in body
    assert "<dt>Active API keys</dt><dd>2</dd>" in body
    assert "<dt>Open invitations</dt><dd>1</dd>" in body
    # An invitation expiring this very moment is no longer open.
    Invitation.objects.filter(email="acme-open@example.test").update(expires_at=NOW)
    assert client_for(alice).get("/dashboard/").context["open_invitation_count"] == 0
    # Members see the same counts (without the invitations) and no activity.
    context = client_for(bob).get("/dashboard/").context
    assert (context["member_count"], context["active_key_count"], context["recent_events"]) == (2, 2, None)


S = TicketStatus


def tickets(org, *statuses: str) -> None:
    for number, status in enumerate(statuses, start=1):
        Ticket.objects.create(organization=org, number=number, subject=f"Ticket {number}", status=status)


def invoice(org, number: int, due: str, status: str = InvoiceStatus.OPEN) -> None:
    due_date = datetime.fromisoformat(due).date()
    Invoice.objects.create(organization=org, number=number, status=status, currency=org.currency,
                           total=Decimal("100.00"), issue_date=due_date - timedelta(days=14),
                           due_date=due_date)  # fmt: skip


def test_everyone_sees_the_open_tickets_and_those_waiting_on_their_reply(client_for, alice, bob, acme, globex):
    tickets(acme, S.NEW, S.OPEN, S.PENDING_CUSTOMER, S.PENDING_CUSTOMER, S.ON_HOLD, S.RESOLVED, S.CLOSED)
    tickets(globex, S.OPEN, S.PENDING_CUSTOMER)
    for person in (alice, bob):
        response = client_for(person).get("/dashboard/")
        assert (response.context["open_ticket_count"], response.context["waiting_ticket_count"]) == (5, 2)
        body = squeeze(response.content.decode())
        assert '<dt>Open tickets</dt><dd><a href="/support/">5</a></dd>' in body
        assert '2 tickets are waiting on your reply. <a href="/support/?status=waiting">Answer them</a>.' in body
    waiting = client_for(bob).get("/support/?status=waiting")
    assert [ticket.number for ticket, _ in waiting.context["rows"]] == [4, 3]
    assert 'aria-current="page">Waiting on you</a>' in waiting.content.decode()


def test_nothing_waiting_says_nothing(client_for, bob, acme):
    tickets(acme, TicketStatus.OPEN)
    body = client_for(bob).get("/dashboard/").content.decode()
    assert "waiting on your reply" not in body
    assert "Nothing is waiting on you" in client_for(bob).get("/support/?status=waiting").content.decode()


def test_owners_see_the_overdue_invoices_from_the_day_after_they_fall_due_in_their_zone(
    client_for, alice, bob, acme, globex, time_machine
):
    # 14:00 on 2 March in UTC is 01:00 on 3 March in Sydney: an invoice due on 2 March is overdue there.
    time_machine.move_to(datetime(2026, 3, 2, 14, 0, tzinfo=UTC), tick=False)
    invoice(acme, 1, "2026-03-02")
    invoice(acme, 2, "2026-02-20")
    invoice(acme, 3, "2026-03-03")  # due today: not yet
    invoice(acme, 4, "2026-02-01", InvoiceStatus.PAID)
    invoice(acme, 5, "2026-02-01", InvoiceStatus.VOID)
    invoice(globex, 1, "2026-02-01")
    response = client_for(alice).get("/dashboard/")
    assert response.context["overdue_invoice_count"] == 2
    body = squeeze(response.content.decode())
    assert '<dt>Overdue invoices</dt><dd><a href="/billing/invoices/?status=overdue">2</a></dd>' in body
    assert '2 invoices are overdue. <a href="/billing/invoices/?status=overdue">Pay them now</a>.' in body
    # Members do not see billing.
    response = client_for(bob).get("/dashboard/")
    assert response.context["overdue_invoice_count"] is None
    assert "Overdue invoices" not in response.content.decode() and "overdue" not in response.content.decode()


def test_the_activity_feed_is_the_latest_eight_events_newest_first_as_the_filters_wrote_them(
    client_for, alice, acme, carol, globex, time_machine
):
    AuditEvent.objects.all().delete()
    acme.timezone = "America/New_York"
    acme.save(update_fields=["timezone"])
    for hours in range(12):
        time_machine.move_to(NOW - timedelta(hours=hours, minutes=7 * hours), tick=False)
        audit_record(action="member.invited", organization=acme, actor=alice, target=alice)
        audit_record(action="custom.thing", organization=acme, actor_label="", target=alice)
    time_machine.move_to(NOW + timedelta(hours=1), tick=False)
    audit_record(action="member.removed", organization=globex, actor=carol)
    response = client_for(alice).get("/dashboard/")
    rows = response.context["recent_events"]
    assert len(rows) == 8
    latest = list(AuditEvent.objects.for_org(acme).order_by("-created_at")[:8])
    assert [row["datetime"] for row in rows] == [
        timezone.localtime(event.created_at, zoneinfo.ZoneInfo("America/New_York")).isoformat() for event in latest
    ]
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        expected = FILTERED_ROWS.render(Context({"events": latest}))
    assert "system" in expected and "Member invited" in expected and "custom.thing" in expected
    assert squeeze(expected) in squeeze(response.content.decode())
    assert "Member removed" not in response.content.decode()


def test_an_organization_without_events_shows_its_figures_and_an_empty_feed(client_for, alice, acme):
    client = client_for(alice)
    AuditEvent.objects.all().delete()
    response = client.get("/dashboard/")
    assert response.context["recent_events"] == []
    assert response.context["member_count"] == 1
    assert "Nothing has happened yet." in response.content.decode()


def test_a_partner_admin_sees_the_feed_of_the_organization_they_look_after(client_for, pat, acme, alice):
    audit_record(action="member.invited", organization=acme, actor=alice)
    response = client_for(pat).get("/dashboard/")
    assert "Member invited" in response.content.decode()
    assert response.context["member_count"] == 1


# -- query counts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [2, 25])
@pytest.mark.parametrize("who", ["alice", "bob"])
def test_the_dashboard_runs_one_query_of_its_own(client_for, acme, alice, bob, who, rows, django_assert_num_queries):
    for index in range(rows):
        MembershipFactory(user=UserFactory(), organization=acme, role=Role.MEMBER)
        invitation_create(organization=acme, email=f"invitee{index}@acme.test", role=Role.MEMBER, invited_by=alice)
        api_key_create(name=f"key {index}", scopes=["read"], organization=acme, created_by=alice)
        audit_record(action="member.invited", organization=acme, actor=alice)
    client = client_for(alice if who == "alice" else bob)
    # base (user, organizations, second factor, session save) + the counts (with the latest events for alice)
    with django_assert_num_queries(BASE + 1):
        assert client.get("/dashboard/").status_code == 200


def test_a_linked_organization_adds_the_device_count(client_for, acme, alice, django_assert_num_queries):
    acme.ninjaone_org_id = "7"
    acme.save(update_fields=["ninjaone_org_id"])
    Device.objects.create(organization=acme, ninja_id="d1", display_name="Laptop")
    client = client_for(alice)
    # base + the counts and events + the devices NinjaOne lists
    with django_assert_num_queries(BASE + 2):
        response = client.get("/dashboard/")
    assert response.context["device_count"] == 1


@pytest.mark.parametrize("events", [None, 8])
def test_the_selector_is_one_query_with_or_without_events(acme, alice, events, django_assert_num_queries):
    for _ in range(10):
        audit_record(action="member.invited", organization=acme, actor=alice)
    with django_assert_num_queries(1):
        figures = dashboard_figures(acme, now=timezone.now(), recent_events=events)
    assert figures.member_count == 1
    if events is None:
        assert figures.recent_events is None
    else:
        assert figures.recent_events is not None and len(figures.recent_events) == 8


@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 11, 22, 4, 13, 59, 999999, tzinfo=UTC),
     datetime(999, 5, 9, 23, 5, tzinfo=UTC), datetime(2027, 12, 31, 12, 30, tzinfo=UTC)],
)  # fmt: skip
@pytest.mark.parametrize("language", ["en", "de"])
def test_the_feed_writes_times_as_the_date_filter_does(moment, language):
    with translation.override(language):
        for zone in ("Australia/Sydney", "America/New_York", "Asia/Kolkata"):
            local = timezone.localtime(moment, zoneinfo.ZoneInfo(zone))
            assert activity_time(local) == date_filter(local, "j M Y, H:i")
