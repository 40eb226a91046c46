"""The events partners can subscribe to, each with what it means and an example of its ``data``. Pure.

A delivery's body is ``{"id", "type", "created", "organization", "data"}``; ``data`` is the payload the service
published. The API lists this catalogue (``GET /api/webhooks/event-types/``) and its schema describes it.
"""

from __future__ import annotations

from typing import Any

_ORG = {"id": "6f1c0e52-8d0a-4b8e-9a53-0b7c1e6d2f10", "slug": "acme", "name": "Acme Pty Ltd"}
_TICKET = {"id": "0d5e7a8e-3f0c-4f7a-a1a4-0a8d9c1e2b33", "number": 1042, "subject": "Printer offline",
           "status": "OPEN", "priority": "P2"}  # fmt: skip
_INVOICE = {"id": "2b7f3c1d-5e6a-4b8c-9d0e-1f2a3b4c5d6e", "number": "INV-000184", "status": "OPEN",
            "currency": "AUD", "total": "1650.00", "amount_due": "1650.00", "due_on": "2026-12-05"}  # fmt: skip
_SUBSCRIPTION = {"id": "sub_1Q2w3E4r5T6y", "status": "active", "plan": "premium", "quantity": 25}
_QUOTE = {"id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "key": "Q-7H3K9", "total": "4200.00", "currency": "AUD"}

EVENT_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "organization.created": ("An organization was created.", _ORG),
    "organization.updated": ("An organization's details changed.", {**_ORG, "changed": ["name"]}),
    "organization.suspended": ("An organization was suspended (unpaid, or by staff).", {**_ORG, "reason": "unpaid"}),
    "user.created": (
        "A person got an account.",
        {"id": "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b", "email": "sam@acme.test"},
    ),
    "user.role_changed": (
        "A person's role in an organization changed.",
        {"user": "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b", "from": "member", "to": "admin"},
    ),
    "qualification.submitted": (
        "A prospect submitted a questionnaire.",
        {"id": "5c4b3a29-1807-4f6e-8d5c-4b3a29180716", "tier": "PREMIUM", "score": 82},
    ),
    "qualification.status_changed": (
        "A qualification moved to another status.",
        {"id": "5c4b3a29-1807-4f6e-8d5c-4b3a29180716", "from": "NEW", "to": "DISCOVERY_CALL_SCHEDULED"},
    ),
    "quote.created": ("A quote was created.", _QUOTE),
    "quote.accepted": ("A customer accepted a quote.", _QUOTE),
    "subscription.created": ("A subscription started.", _SUBSCRIPTION),
    "subscription.updated": ("A subscription changed (plan, quantity, renewal).", _SUBSCRIPTION),
    "subscription.canceled": ("A subscription was canceled.", {**_SUBSCRIPTION, "status": "canceled"}),
    "subscription.past_due": ("A subscription's payment is overdue.", {**_SUBSCRIPTION, "status": "past_due"}),
    "invoice.created": ("An invoice was drafted.", {**_INVOICE, "status": "DRAFT"}),
    "invoice.finalized": ("An invoice was issued.", _INVOICE),
    "invoice.paid": ("An invoice was paid in full.", {**_INVOICE, "status": "PAID", "amount_due": "0.00"}),
    "invoice.payment_failed": ("An automatic charge of an invoice failed.", {**_INVOICE, "reason": "card_declined"}),
    "invoice.overdue": ("An invoice passed its due date unpaid.", {**_INVOICE, "days_overdue": 1}),
    "payment.succeeded": (
        "A payment was received.",
        {"invoice": _INVOICE["id"], "amount": "1650.00", "currency": "AUD"},
    ),
    "payment.failed": (
        "A payment attempt failed.",
        {"invoice": _INVOICE["id"], "amount": "1650.00", "currency": "AUD", "reason": "card_declined"},
    ),
    "payment.refunded": ("A payment was refunded.", {"invoice": _INVOICE["id"], "amount": "100.00", "currency": "AUD"}),
    "ticket.created": ("A ticket was opened.", _TICKET),
    "ticket.updated": ("A ticket changed (status, priority, assignee, reply).", {**_TICKET, "changed": ["status"]}),
    "ticket.resolved": ("A ticket was resolved.", {**_TICKET, "status": "RESOLVED"}),
    "ticket.closed": ("A ticket was closed.", {**_TICKET, "status": "CLOSED"}),
    "ticket.sla_at_risk": (
        "A ticket's SLA clock is close to its target.",
        {**_TICKET, "clock": "resolution", "due_at": "2026-11-23T05:00:00Z"},
    ),
    "ticket.sla_breached": ("A ticket's SLA target passed.", {**_TICKET, "clock": "first_response"}),
    "campaign.launched": (
        "An SMS campaign was launched.",
        {"id": "7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8", "name": "Spring", "jobs": 1200},
    ),
    "campaign.completed": (
        "An SMS campaign finished sending.",
        {"id": "7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8", "name": "Spring", "jobs": {"SENT": 1180}},
    ),
    "contact.opted_out": (
        "A contact opted out of SMS (STOP, or added to do-not-contact).",
        {"phone": "+61412345678", "reason": "stop_keyword"},
    ),
    "contact.opted_in": ("A contact opted back in to SMS.", {"phone": "+61412345678"}),
}
PING = "webhook.ping"  # sent by the endpoint's "test" action only; never published


def known(event_type: str) -> bool:
    return event_type in EVENT_TYPES
