"""What happens in an organization that its people may choose to hear about, told from Keel's domain events.

The outbox hands each event to these handlers (``events.registry``; retried, once per event), which tell the
organization's members through ``notify`` on the channels each chose for the event type (``notifications.catalogue``).
The notice's key is the event's id, so a handler run again after a crash tells no one twice.

- ``ticket.created``: a support ticket was opened (``Ticket opened``);
- ``ticket.updated`` that changed the assignee to a technician (``Ticket assigned``);
- ``ticket.sla_breached``, at its first level (``SLA breached``; the second level is the MSP's own escalation);
- ``subscription.updated`` that changed the plan, the price, the status or a cancellation at the period's end (not
  a renewal), ``.canceled`` and ``.past_due`` (``Subscription changed``).
"""

from __future__ import annotations

from typing import Any

from events.models import Event
from events.registry import subscribe
from notifications.services import notify
from tenancy.models import Organization
from tickets.models import Ticket

CLOCKS = {"first_response": "first response", "resolution": "resolution"}


def _of_an_organization(event: Event) -> bool:
    return event.organization_id is not None


def _assigned(event: Event) -> bool:
    changed = event.payload.get("changed") or []
    return _of_an_organization(event) and "assignee" in changed and bool(event.payload.get("assignee"))


def _first_breach(event: Event) -> bool:
    return _of_an_organization(event) and event.payload.get("level") == 1


def _tell(event: Event, event_type: str, context: dict[str, Any]) -> None:
    if event.organization_id is None:
        return
    organization = Organization.objects.filter(pk=event.organization_id).first()
    if organization is not None:
        notify(organization=organization, event_type=event_type, context=context, key=f"event:{event.pk}")


def _ticket(event: Event) -> Ticket | None:
    if event.organization_id is None:
        return None
    return (
        Ticket.objects.for_org(event.organization_id)
        .select_related("assignee")
        .filter(pk=event.payload.get("id"))
        .first()
    )


@subscribe("ticket.created", name="notifications.ticket_created", when=_of_an_organization)
def ticket_created(event: Event) -> None:
    ticket = _ticket(event)
    if ticket is None:
        return
    _tell(event, "ticket.created", {
        "title": f"[{ticket.reference}] {ticket.subject}"[:200],
        "message": f"Ticket {ticket.reference} was opened ({ticket.get_priority_display()}): {ticket.subject}",
        "url": f"/support/tickets/{ticket.number}/",
    })  # fmt: skip


@subscribe("ticket.updated", name="notifications.ticket_assigned", when=_assigned)
def ticket_assigned(event: Event) -> None:
    ticket = _ticket(event)
    if ticket is None or ticket.assignee is None:
        return
    _tell(event, "ticket.assigned", {
        "reference": ticket.reference,
        "subject": ticket.subject,
        "assignee": ticket.assignee.get_full_name() or ticket.assignee.email,
        "url": f"/support/tickets/{ticket.number}/",
    })  # fmt: skip


@subscribe("ticket.sla_breached", name="notifications.ticket_sla_breached", when=_first_breach)
def ticket_sla_breached(event: Event) -> None:
    ticket = _ticket(event)
    if ticket is None:
        return
    clock = CLOCKS.get(str(event.payload.get("clock")), "target")
    _tell(event, "ticket.sla_breached", {
        "title": f"[{ticket.reference}] missed its {clock} time",
        "message": f"Ticket {ticket.reference} ({ticket.subject}) missed its {clock} time. It has been escalated to "
        "our managers.",
        "url": f"/support/tickets/{ticket.number}/",
    })  # fmt: skip


SUBSCRIPTION_NEWS = {
    "subscription.updated": "changed",
    "subscription.canceled": "was canceled",
    "subscription.past_due": "is past due: its last payment failed",
}


# What a subscription.updated must have changed to be news to its people (a renewal moving the period end is not).
NEWSWORTHY = frozenset({"status", "tier", "plan_name", "price_monthly", "cancel_at_period_end"})


def _subscription_news(event: Event) -> bool:
    if not _of_an_organization(event) or event.type not in SUBSCRIPTION_NEWS:
        return False
    return event.type != "subscription.updated" or bool(NEWSWORTHY & set(event.payload.get("changed") or []))


@subscribe("subscription.*", name="notifications.subscription_changed", when=_subscription_news)
def subscription_changed(event: Event) -> None:
    news = SUBSCRIPTION_NEWS.get(event.type)
    if news is None:
        return
    plan = str(event.payload.get("plan") or "Your subscription")
    price = f"{event.payload.get('currency', '')} {event.payload.get('price_monthly', '')} a month".strip()
    _tell(event, "subscription.changed", {
        "title": f"{plan} {news}"[:200],
        "message": f"Your subscription to {plan} ({price}) {news}. See the Billing page for the details.",
        "url": "/billing/",
    })  # fmt: skip
