"""What Keel tells people about, through which channels, and who hears about what unless they choose otherwise.
Pure: plain values only, so the tables can be read (and tested) on their own.

- **Channels.** ``in_app`` (the bell in the portal header), ``email`` and ``sms`` are chosen per person; ``slack`` is
  chosen per organization (one incoming webhook, and the event types routed to it).
- **Event types** belong to a category (billing, security, tickets, messaging, platform). Other apps call
  ``notifications.services.notify`` with one of these names; an unknown name is refused.
- **Defaults by role** (``ROLE_DEFAULTS``) apply to every event type of a category until the person saves their own
  choice on the settings page. SMS costs money and interrupts, so it is never on by default. A partner's admin who
  is told about an organization (as an explicit recipient) gets the owners' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

IN_APP = "in_app"
EMAIL = "email"
SMS = "sms"
SLACK = "slack"

# The channels each person chooses, in the order the settings page shows them.
USER_CHANNELS: tuple[str, ...] = (IN_APP, EMAIL, SMS)
CHANNEL_LABELS = {IN_APP: "In the portal", EMAIL: "Email", SMS: "SMS", SLACK: "Slack"}

BILLING = "billing"
SECURITY = "security"
TICKETS = "tickets"
MESSAGING = "messaging"
PLATFORM = "platform"
CATEGORY_LABELS = {
    BILLING: "Billing",
    SECURITY: "Security",
    TICKETS: "Support tickets",
    MESSAGING: "Messaging",
    PLATFORM: "Service notices",
}


@dataclass(frozen=True)
class EventType:
    name: str
    label: str
    category: str
    description: str


_TYPES = [
    EventType("invoice.issued", "Invoice issued", BILLING, "A new invoice is ready."),
    EventType("invoice.overdue", "Invoice overdue", BILLING, "An invoice passed its due date unpaid."),
    EventType("payment.failed", "Payment failed", BILLING, "An automatic card payment did not go through."),
    EventType("subscription.changed", "Subscription changed", BILLING, "The plan or its quantity changed."),
    EventType("security.api_key_created", "API key created", SECURITY, "Someone created an API key."),
    EventType("security.mfa_disabled", "Two-factor sign-in turned off", SECURITY, "A member turned it off."),
    EventType("security.login_locked", "Sign-in locked", SECURITY, "Repeated failed sign-ins locked an account."),
    EventType("ticket.created", "Ticket opened", TICKETS, "A support ticket was opened."),
    EventType("ticket.assigned", "Ticket assigned", TICKETS, "A ticket was assigned to someone."),
    EventType("ticket.replied", "Ticket reply", TICKETS, "Someone replied on a ticket."),
    EventType("ticket.sla_breached", "SLA breached", TICKETS, "A ticket missed its response or resolution time."),
    EventType("sms.budget_alert", "SMS budget alert", MESSAGING, "Messaging spent 80 % of its budget."),
    EventType("sms.reply_received", "SMS reply", MESSAGING, "A contact replied to a message."),
    EventType("platform.incident", "Service incident", PLATFORM, "An outage or degradation of the service."),
    EventType("platform.maintenance", "Planned maintenance", PLATFORM, "Work planned on the service."),
]
EVENT_TYPES: dict[str, EventType] = {event.name: event for event in _TYPES}

# Role (tenancy.models.Role values) -> category -> the channels on until the person chooses otherwise.
_OWNER_DEFAULTS: dict[str, frozenset[str]] = {
    BILLING: frozenset({EMAIL, IN_APP}),
    SECURITY: frozenset({EMAIL, IN_APP}),
    TICKETS: frozenset({IN_APP}),
    MESSAGING: frozenset({EMAIL, IN_APP}),
    PLATFORM: frozenset({EMAIL, IN_APP}),
}
ROLE_DEFAULTS: dict[str, dict[str, frozenset[str]]] = {
    "OWNER": _OWNER_DEFAULTS,
    "ADMIN": _OWNER_DEFAULTS,
    "MANAGER": {
        BILLING: frozenset({IN_APP}),
        SECURITY: frozenset({IN_APP}),
        TICKETS: frozenset({EMAIL, IN_APP}),
        MESSAGING: frozenset({EMAIL, IN_APP}),
        PLATFORM: frozenset({EMAIL, IN_APP}),
    },
    # Members are the organization's technicians and staff: ticket work and service notices, in the portal.
    "MEMBER": {
        BILLING: frozenset(),
        SECURITY: frozenset(),
        TICKETS: frozenset({IN_APP}),
        MESSAGING: frozenset(),
        PLATFORM: frozenset({IN_APP}),
    },
}
PARTNER_ADMIN_ROLE = "OWNER"  # whose defaults a partner's admin (no membership) gets


def known(event_type: str) -> bool:
    return event_type in EVENT_TYPES


def default_channels(role: str | None, event_type: str) -> frozenset[str]:
    """The channels on for a person with ``role`` (None: a partner's admin) until they choose their own."""
    table = ROLE_DEFAULTS.get(role or PARTNER_ADMIN_ROLE, ROLE_DEFAULTS["MEMBER"])
    return table.get(EVENT_TYPES[event_type].category, frozenset())


def grouped() -> list[tuple[str, list[EventType]]]:
    """Event types by category, in the order above (for the settings page)."""
    groups: dict[str, list[EventType]] = {}
    for event in _TYPES:
        groups.setdefault(event.category, []).append(event)
    return [(CATEGORY_LABELS[category], events) for category, events in groups.items()]
