"""What Keel tells people about, through which channels, and who hears about what unless they choose otherwise.
Pure: plain values only, so the tables can be read (and tested) on their own.

- **Channels.** ``in_app`` (the bell in the portal header), ``email`` and ``sms`` are chosen per person; ``slack`` is
  chosen per organization (one incoming webhook, and the event types routed to it).
- **Event types** belong to a category. Other apps call ``notifications.services.notify`` with one of these names;
  an unknown name is refused. The categories:

  - *account*: an invitation to join an organization (to an address that may have no account yet) and the welcome
    of a new customer's owner, with its first sign-in link;
  - *billing*: invoices, reminders, failed payments, contract renewals and plan changes. Invoices, reminders,
    failed payments and renewal notices are emailed to the organization's billing contacts as addresses (a billing
    contact need not have an account), whatever they chose here; the choices apply to what members are told;
  - *security*: API keys, two-factor sign-in, lockouts and changes to where invoices go;
  - *tickets*: support tickets. A reply is emailed to the ticket's requester (an address: the conversation itself,
    whether or not they are a member), and so are the acknowledgement of a ticket opened by email, the notice that a
    ticket was merged, and the automatic answer to a sender who is no customer;
  - *messaging*: SMS budget alerts and replies;
  - *platform*: service incidents and planned maintenance;
  - *sales*: notices to the MSP's own staff about prospects.

- **Audience.** Most event types are for the members of an organization (``MEMBERS``): each person chooses their
  channels on the settings page. Some go only to plain addresses (``CONTACTS``: requesters, invitees, billing
  contacts) or to the MSP's staff (``STAFF``: ticket alerts, sales assignments; staff are not members of the customer
  organizations, so these are emailed to their addresses, usually as platform notices without an organization).
  Nobody chooses how they hear of those, so neither the settings page nor Slack offers them.
- **Required channels** (``EventType.required``) are always on for the people told: transactional messages a person
  must receive (the welcome with its sign-in link, an invitation). The settings page shows them ticked and disabled,
  and saving ignores an attempt to turn them off.
- **Defaults by role** (``ROLE_DEFAULTS``) apply to every event type of a category until the person saves their own
  choice on the settings page. SMS costs money and interrupts, so it is never on by default. A partner's admin who
  is told about an organization (as an explicit recipient) gets the owners' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

IN_APP = "in_app"
EMAIL = "email"
SMS = "sms"
SLACK = "slack"

# The channels each person chooses, in the order the settings page shows them.
USER_CHANNELS: tuple[str, ...] = (IN_APP, EMAIL, SMS)
CHANNEL_LABELS = {IN_APP: "In the portal", EMAIL: "Email", SMS: "SMS", SLACK: "Slack"}

ACCOUNT = "account"
BILLING = "billing"
SECURITY = "security"
TICKETS = "tickets"
MESSAGING = "messaging"
PLATFORM = "platform"
SALES = "sales"
CATEGORY_LABELS = {
    ACCOUNT: "Your account",
    BILLING: "Billing",
    SECURITY: "Security",
    TICKETS: "Support tickets",
    MESSAGING: "Messaging",
    PLATFORM: "Service notices",
    SALES: "Sales",
}

# Who an event type is for: members choosing their channels, plain addresses, or the MSP's staff.
MEMBERS = "members"
CONTACTS = "contacts"
STAFF = "staff"


@dataclass(frozen=True)
class EventType:
    name: str
    label: str
    category: str
    description: str
    audience: str = MEMBERS
    required: frozenset[str] = field(default_factory=frozenset)

    @property
    def choosable(self) -> bool:
        """Offered on the settings page and to Slack (people choose how they hear of it)."""
        return self.audience == MEMBERS


ALWAYS_EMAILED = frozenset({EMAIL})

_TYPES = [
    EventType(
        "account.invitation", "Invitation", ACCOUNT, "An invitation to join an organization.", CONTACTS, ALWAYS_EMAILED
    ),
    EventType(
        "account.welcome",
        "Welcome",
        ACCOUNT,
        "Your organization is ready: the link to sign in first.",
        required=ALWAYS_EMAILED,
    ),
    EventType("invoice.issued", "Invoice issued", BILLING, "A new invoice is ready."),
    EventType("invoice.overdue", "Invoice overdue", BILLING, "An invoice passed its due date unpaid."),
    EventType("payment.failed", "Payment failed", BILLING, "An automatic card payment did not go through."),
    EventType(
        "invoice.reminder",
        "Invoice reminder",
        BILLING,
        "An invoice is coming due or overdue.",
        CONTACTS,
        ALWAYS_EMAILED,
    ),
    EventType(
        "contract.renewal",
        "Contract renewal",
        BILLING,
        "A contract renews automatically soon.",
        CONTACTS,
        ALWAYS_EMAILED,
    ),
    EventType("subscription.changed", "Subscription changed", BILLING, "The plan or its quantity changed."),
    EventType("security.api_key_created", "API key created", SECURITY, "Someone created an API key."),
    EventType("security.mfa_disabled", "Two-factor sign-in turned off", SECURITY, "A member turned it off."),
    EventType("security.login_locked", "Sign-in locked", SECURITY, "Repeated failed sign-ins locked an account."),
    EventType(
        "security.invoice_emails_changed", "Invoice addresses changed", SECURITY, "Where invoices are emailed changed."
    ),
    EventType("ticket.created", "Ticket opened", TICKETS, "A support ticket was opened."),
    EventType("ticket.assigned", "Ticket assigned", TICKETS, "A ticket was assigned to someone."),
    EventType("ticket.replied", "Ticket reply", TICKETS, "Someone replied on a ticket."),
    EventType("ticket.sla_breached", "SLA breached", TICKETS, "A ticket missed its response or resolution time."),
    EventType(
        "ticket.received",
        "Ticket received",
        TICKETS,
        "An emailed request was opened as a ticket.",
        CONTACTS,
        ALWAYS_EMAILED,
    ),
    EventType(
        "ticket.merged", "Ticket merged", TICKETS, "A ticket continues as another one.", CONTACTS, ALWAYS_EMAILED
    ),
    EventType(
        "ticket.sender_unknown",
        "Sender unknown",
        TICKETS,
        "An email from no customer opened no ticket.",
        CONTACTS,
        ALWAYS_EMAILED,
    ),
    EventType(
        "ticket.staff_alert",
        "Ticket alert",
        TICKETS,
        "A ticket needs staff: a clock at risk or breached, no technician, a workflow's alert.",
        STAFF,
        ALWAYS_EMAILED,
    ),
    EventType("sms.budget_alert", "SMS budget alert", MESSAGING, "Messaging spent 80 % of its budget."),
    EventType(
        "sms.reply_received",
        "SMS reply",
        MESSAGING,
        "A contact replied to a message: the first reply of each quarter of an hour at once, the others together.",
    ),
    EventType("platform.incident", "Service incident", PLATFORM, "An outage or degradation of the service."),
    EventType("platform.maintenance", "Planned maintenance", PLATFORM, "Work planned on the service."),
    EventType(
        "sales.qualification_assigned",
        "Prospect assigned",
        SALES,
        "A questionnaire needs a sales rep.",
        STAFF,
        ALWAYS_EMAILED,
    ),
]
EVENT_TYPES: dict[str, EventType] = {event.name: event for event in _TYPES}

# Role (tenancy.models.Role values) -> category -> the channels on until the person chooses otherwise.
_OWNER_DEFAULTS: dict[str, frozenset[str]] = {
    ACCOUNT: frozenset({EMAIL, IN_APP}),
    BILLING: frozenset({EMAIL, IN_APP}),
    SECURITY: frozenset({EMAIL, IN_APP}),
    TICKETS: frozenset({IN_APP}),
    MESSAGING: frozenset({EMAIL, IN_APP}),
    PLATFORM: frozenset({EMAIL, IN_APP}),
    SALES: frozenset(),
}
ROLE_DEFAULTS: dict[str, dict[str, frozenset[str]]] = {
    "OWNER": _OWNER_DEFAULTS,
    "ADMIN": _OWNER_DEFAULTS,
    "MANAGER": {
        ACCOUNT: frozenset({EMAIL, IN_APP}),
        BILLING: frozenset({IN_APP}),
        SECURITY: frozenset({IN_APP}),
        TICKETS: frozenset({EMAIL, IN_APP}),
        MESSAGING: frozenset({EMAIL, IN_APP}),
        PLATFORM: frozenset({EMAIL, IN_APP}),
        SALES: frozenset(),
    },
    # Members are the organization's technicians and staff: ticket work and service notices, in the portal.
    "MEMBER": {
        ACCOUNT: frozenset({EMAIL, IN_APP}),
        BILLING: frozenset(),
        SECURITY: frozenset(),
        TICKETS: frozenset({IN_APP}),
        MESSAGING: frozenset(),
        PLATFORM: frozenset({IN_APP}),
        SALES: frozenset(),
    },
}
PARTNER_ADMIN_ROLE = "OWNER"  # whose defaults a partner's admin (no membership) gets


def known(event_type: str) -> bool:
    return event_type in EVENT_TYPES


def required_channels(event_type: str) -> frozenset[str]:
    """The channels always on for the people told of ``event_type``."""
    return EVENT_TYPES[event_type].required


def with_required(event_type: str, channels: frozenset[str]) -> frozenset[str]:
    """``channels`` (a person's choice or defaults) with the event type's required channels turned on."""
    return channels | EVENT_TYPES[event_type].required


def default_channels(role: str | None, event_type: str) -> frozenset[str]:
    """The channels on for a person with ``role`` (None: a partner's admin) until they choose their own (the required
    ones included)."""
    table = ROLE_DEFAULTS.get(role or PARTNER_ADMIN_ROLE, ROLE_DEFAULTS["MEMBER"])
    return with_required(event_type, table.get(EVENT_TYPES[event_type].category, frozenset()))


def choosable() -> list[EventType]:
    """The event types people choose channels for (the settings page, Slack, bulk sends), in the order above."""
    return [event for event in _TYPES if event.choosable]


def grouped() -> list[tuple[str, list[EventType]]]:
    """The choosable event types by category, in the order above (for the settings page)."""
    groups: dict[str, list[EventType]] = {}
    for event in choosable():
        groups.setdefault(event.category, []).append(event)
    return [(CATEGORY_LABELS[category], events) for category, events in groups.items()]
