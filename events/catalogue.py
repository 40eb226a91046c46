"""The events partners can subscribe to, each with what it means and an example of its ``data``. Pure.

A delivery's body is ``{"id", "type", "created", "organization", "data"}``; ``data`` is the payload the service
published. The API lists this catalogue (``GET /api/webhooks/event-types/``) and its schema describes it.
"""

from __future__ import annotations

from typing import Any

_ORG = {"id": "6f1c0e52-8d0a-4b8e-9a53-0b7c1e6d2f10", "slug": "acme", "name": "Acme Pty Ltd", "tier": "premium"}
_ORG_ID = _ORG["id"]
_USER = "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"
_QUALIFICATION = "5c4b3a29-1807-4f6e-8d5c-4b3a29180716"
_TICKET = {"id": "0d5e7a8e-3f0c-4f7a-a1a4-0a8d9c1e2b33", "number": "T-1042", "status": "OPEN", "priority": "P2",
           "assignee": _USER}  # fmt: skip
_INVOICE = {"id": "2b7f3c1d-5e6a-4b8c-9d0e-1f2a3b4c5d6e", "number": "INV-00184", "status": "OPEN",
            "total": "1650.00", "currency": "AUD"}  # fmt: skip
_ATTEMPT = {"id": "8e7d6c5b-4a39-4817-b6a5-d4c3b2a1f0e9", "invoice": _INVOICE["id"], "number": "INV-00184",
            "attempt": 1, "trigger": "automatic", "amount": "1650.00", "currency": "AUD"}  # fmt: skip
_SUBSCRIPTION = {"id": "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f", "status": "active", "tier": "premium",
                 "plan": "Premium", "price_monthly": "2450.00", "currency": "AUD",
                 "current_period_end": "2026-12-21T00:00:00Z", "trial_end": None,
                 "cancel_at_period_end": False}  # fmt: skip
_QUOTE = {"id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "tier": "premium", "status": "draft", "is_custom": False,
          "price_monthly": "4200.00", "currency": "AUD", "organization_id": _ORG_ID}  # fmt: skip

EVENT_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "organization.created": ("An organization was created.", _ORG),
    "organization.updated": (
        "An organization's details changed (each change as [before, after]).",
        {"id": _ORG_ID, "changes": {"name": ["Acme", "Acme Pty Ltd"]}},
    ),
    "organization.suspended": (
        "An organization was suspended (unpaid, or by staff).",
        {"id": _ORG_ID, "status": "suspended", "reason": "Invoice INV-00184 is 30 days overdue."},
    ),
    "user.created": (
        "A person joined the organization (a new member, or the owner of a new organization).",
        {"id": _USER, "email": "sam@acme.test", "full_name": "Sam Field", "role": "MEMBER"},
    ),
    "user.role_changed": (
        "A person's role in the organization changed.",
        {"user": _USER, "email": "sam@acme.test", "from": "MEMBER", "to": "ADMIN"},
    ),
    "qualification.submitted": (
        "A prospect submitted a questionnaire.",
        {"id": _QUALIFICATION, "tier": "premium", "status": "MANUAL_REVIEW", "auto_score": 62},
    ),
    "qualification.status_changed": (
        "A qualification moved to another status (a review, or a discovery call booked or canceled).",
        {
            "id": _QUALIFICATION,
            "tier": "premium",
            "status": "discovery_call_scheduled",
            "previous_status": "discovery_call",
        },
    ),
    "quote.created": ("A quote was created.", _QUOTE),
    "quote.accepted": ("A customer accepted a quote.", {**_QUOTE, "status": "accepted"}),
    "subscription.created": ("A subscription started.", _SUBSCRIPTION),
    "subscription.updated": (
        "A subscription changed (plan, quantity, renewal).",
        {**_SUBSCRIPTION, "changed": ["price_monthly"]},
    ),
    "subscription.canceled": ("A subscription was canceled.", {**_SUBSCRIPTION, "status": "canceled"}),
    "subscription.past_due": ("A subscription's payment is overdue.", {**_SUBSCRIPTION, "status": "past_due"}),
    "invoice.created": ("An invoice was drafted.", {**_INVOICE, "status": "DRAFT"}),
    "invoice.finalized": ("An invoice was issued.", _INVOICE),
    "invoice.paid": (
        "An invoice was paid in full.",
        {**_INVOICE, "status": "PAID", "attempt": 1, "amount": "1650.00"},
    ),
    "invoice.payment_failed": (
        "An automatic charge of an invoice failed; a retry may follow.",
        {**_INVOICE, "attempt": 1, "amount": "1650.00", "hard_decline": False},
    ),
    "invoice.overdue": (
        "An invoice passed its due date unpaid (once, on the first day after it).",
        {**_INVOICE, "days_overdue": 1, "amount_due": "1650.00"},
    ),
    "payment.succeeded": ("A payment was received.", _ATTEMPT),
    "payment.failed": ("A payment attempt failed.", {**_ATTEMPT, "reason": "insufficient_funds"}),
    "payment.refunded": (
        "Part or all of a payment was refunded (amount: this refund; total_refunded: so far).",
        {**_ATTEMPT, "amount": "100.00", "total_refunded": "100.00"},
    ),
    "ticket.created": ("A ticket was opened.", _TICKET),
    "ticket.updated": ("A ticket changed (status, priority, assignee, reply).", {**_TICKET, "changed": ["status"]}),
    "ticket.resolved": ("A ticket was resolved.", {**_TICKET, "status": "RESOLVED"}),
    "ticket.closed": ("A ticket was closed.", {**_TICKET, "status": "CLOSED"}),
    "ticket.sla_at_risk": (
        "A ticket's SLA clock is close to its target.",
        {"id": _TICKET["id"], "number": _TICKET["number"], "clock": "resolution"},
    ),
    "ticket.sla_breached": (
        "A ticket's SLA target passed (level 1: managers told; level 2: raised and escalated further).",
        {"id": _TICKET["id"], "number": _TICKET["number"], "clock": "first_response", "level": 1},
    ),
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
    "contact.replied": (
        "Someone texted one of the organization's numbers something other than an opt-out, opt-in or help keyword "
        "(contact and campaign are null when the number is no contact's, or they got no campaign message).",
        {
            "id": 5123,
            "phone": "+61412345678",
            "to": "+61480000001",
            "body": "Is the offer still on?",
            "contact": "4b3a2918-0716-4f5e-8d4c-3b2a19180716",
            "campaign": "7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8",
            "received_at": "2026-11-21T09:14:03Z",
        },
    ),
}
PING = "webhook.ping"  # sent by the endpoint's "test" action only; never published


def known(event_type: str) -> bool:
    return event_type in EVENT_TYPES
