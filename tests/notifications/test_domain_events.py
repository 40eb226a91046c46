"""People hear of what happens in their organization as they chose: a ticket opened, a ticket assigned to a
technician, a ticket's first SLA breach, and a subscription changed, canceled or past due, told from the domain
events through the outbox (once per event, even when its handler runs again)."""

from __future__ import annotations

from typing import Any

import pytest

from events.models import Delivery, Event
from events.services import delivery_run, event_fan_out
from events.services import publish as publish_event
from notifications.models import Notice, Notification
from tenancy.models import Role
from tests.factories import MembershipFactory, UserFactory
from tickets.services import ticket_assign, ticket_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def mike(acme):
    manager = UserFactory(email="mike@acme.test", full_name="Mike Manager")
    MembershipFactory(user=manager, organization=acme, role=Role.MANAGER)
    return manager


def handled(event_type: str, handler: str, *, times: int = 1) -> list[Delivery]:
    """Fan the latest event of ``event_type`` out and run the handler's delivery (``times`` times, as a retry would)."""
    event = Event.objects.filter(type=event_type).latest("created_at")
    event_fan_out(event_id=event.pk)
    deliveries = list(Delivery.objects.filter(event=event, handler=f"notifications.{handler}"))
    for delivery in deliveries:
        for _ in range(times):
            delivery_run(delivery_id=delivery.pk)
    return deliveries


def told(event_type: str) -> dict[str, Notification]:
    return {note.user.email: note for note in Notification.objects.filter(event_type=event_type).select_related("user")}


def test_a_ticket_opened_is_told_once_even_when_its_handler_runs_again(acme, alice, bob, mike, mailoutbox,
                                                                       django_capture_on_commit_callbacks):  # fmt: skip
    ticket = ticket_create(organization=acme, subject="Printer on level 3 jams", requester=bob)
    with django_capture_on_commit_callbacks(execute=True):
        handled("ticket.created", "ticket_created", times=2)
    notes = told("ticket.created")
    assert set(notes) == {"alice@acme.test", "bob@acme.test", "mike@acme.test"}  # in the portal, by default
    assert notes["alice@acme.test"].title == f"[{ticket.reference}] Printer on level 3 jams"
    assert notes["alice@acme.test"].url == f"/support/tickets/{ticket.number}/"
    assert Notice.objects.filter(event_type="ticket.created").count() == 1
    assert [mail.to for mail in mailoutbox if ticket.reference in mail.subject] == [["mike@acme.test"]]  # managers


def test_a_ticket_assigned_to_a_technician_is_told_and_unassigning_is_not(acme, alice, bob):
    ticket = ticket_create(organization=acme, subject="VPN drops every hour", requester=bob)
    tess = UserFactory(email="tess@keel.test", full_name="Tess Tech", is_staff=True)
    ticket_assign(ticket=ticket, assignee=tess)
    handled("ticket.updated", "ticket_assigned")
    note = told("ticket.assigned")["alice@acme.test"]
    assert note.title == f"{ticket.reference} is assigned to Tess Tech"
    assert note.body == "VPN drops every hour"
    ticket_assign(ticket=ticket, assignee=None)
    assert handled("ticket.updated", "ticket_assigned") == []  # no delivery at all
    assert Notification.objects.filter(event_type="ticket.assigned").count() == len(told("ticket.assigned"))


def test_only_the_first_level_of_an_sla_breach_is_told(acme, alice):
    ticket = ticket_create(organization=acme, subject="Server down")
    base = {"id": str(ticket.pk), "number": ticket.reference, "clock": "first_response"}
    publish_event(acme, "ticket.sla_breached", {**base, "level": 1})
    handled("ticket.sla_breached", "ticket_sla_breached")
    publish_event(acme, "ticket.sla_breached", {**base, "level": 2, "priority": "P1"})
    assert handled("ticket.sla_breached", "ticket_sla_breached") == []
    note = told("ticket.sla_breached")["alice@acme.test"]
    assert note.title == f"[{ticket.reference}] missed its first response time"


@pytest.mark.parametrize(
    ("event_type", "title"),
    [
        ("subscription.updated", "Premium changed"),
        ("subscription.canceled", "Premium was canceled"),
        ("subscription.past_due", "Premium is past due: its last payment failed"),
    ],
)
def test_a_subscription_change_is_told_to_owners_and_admins(acme, alice, bob, event_type: str, title: str):
    payload: dict[str, Any] = {"id": "1", "plan": "Premium", "price_monthly": "1450.00", "currency": "AUD",
                               "changed": ["status", "current_period_end"]}  # fmt: skip
    publish_event(acme, event_type, payload)
    handled(event_type, "subscription_changed")
    notes = told("subscription.changed")
    assert set(notes) == {"alice@acme.test"}  # billing news: not members
    assert notes["alice@acme.test"].title == title
    assert "Your subscription to Premium (AUD 1450.00 a month)" in notes["alice@acme.test"].body


def test_a_new_subscription_or_a_renewal_is_not_a_change(acme, alice):
    publish_event(acme, "subscription.created", {"id": "1", "plan": "Premium"})
    assert handled("subscription.created", "subscription_changed") == []
    publish_event(acme, "subscription.updated", {"id": "1", "plan": "Premium", "changed": ["current_period_end"]})
    assert handled("subscription.updated", "subscription_changed") == []
