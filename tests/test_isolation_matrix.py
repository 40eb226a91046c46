"""Tenant isolation, route by route: every URL the project serves that takes an object id, asked for another
organization's object by each kind of caller of Acme, answers 404 and changes nothing.

The routes come from the URL resolver and from the OpenAPI schema, so a route added later fails here until it is
covered: ``ISOLATED`` says how to build Globex's object(s) for it, or ``PUBLIC_BY_TOKEN`` says why anyone holding
the token may open it (then an unknown token is refused). The staff admin is exempt: staff are not tenants, and
one-time passwords and model permissions guard it.

Callers (``PEOPLE`` on every route, ``KEYS`` on the API too): a person of Acme in each membership role, a staff member
with an Acme membership, Summit's partner admin; an Acme key with every scope, one with the read scopes only, and
Summit's partner key acting for Acme, for Globex (not one of Summit's) and for no organization.

Each route is asked with GET and with every other method its view serves (read from the view: DRF handlers, or the
list ``require_http_methods`` checks). An answer other than 404 passes only where it cannot tell Globex's object from
one that does not exist: 405 for a GET the view does not serve (refused before the view runs), or the same status
and body as for an unknown id and only 400 (a write without X-Organization), 403 (a scope or role the caller lacks,
checked before any lookup) or 405 (never for a method the schema documents). Nothing may mention Globex, and every
table's row count and each of Globex's objects must be as they were. ``test_own_objects_are_reachable`` proves that
each builder makes objects its route finds for their own organization, so a 404 in the matrix is isolation, not a
wrong id.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any
from urllib.parse import urlencode

import pytest
import responses
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.models import Model
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import Resolver404
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from billing.models import Contract, Invoice
from billing.services.contracts import ContractTerms, contract_create
from billing.services.invoices import invoice_create, invoice_finalize
from events.models import Event, WebhookDelivery, WebhookEndpoint
from events.webhooks import endpoint_create
from notifications.models import Notice, Notification
from portal.views.messaging_contacts import IMPORTS_KEY
from sms.models import (
    Campaign,
    CampaignStatus,
    Contact,
    DoNotContact,
    InboundKind,
    InboundMessage,
    SendingNumber,
    SendJob,
    Template,
)
from sms.services.campaigns import campaign_create, template_create
from sms.services.contacts import contact_create, dnc_add
from tenancy.models import Membership, Organization, Partner, Role, User
from tenancy.services import api_key_create
from tenancy.services.api_keys import API_SCOPES
from tenancy.services.members import invitation_create
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PartnerFactory,
    PartnerMembershipFactory,
    UserFactory,
)
from tickets.models import Ticket
from tickets.services import attachment_add, comment_add, ticket_create

pytestmark = pytest.mark.django_db

EXEMPT_NAMESPACES = {"admin"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # DELETE last: the others still find the object to refuse
OBJECT_INDEPENDENT = {400, 403, 405}  # refusals that pass when an unknown id gets the very same answer
PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
UNKNOWN_NUMBER = 2_147_480_000

_serial = itertools.count(1)


def serial() -> int:
    """A fresh number for names and phone numbers, so building twice in one test never collides."""
    return next(_serial)


# -- the routes ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    params: tuple[str, ...]
    pattern: str  # the whole path pattern, prefixes included
    callback: Callable[..., Any]


def _walk(patterns: list[Any], namespace: tuple[str, ...], params: tuple[str, ...], prefix: str) -> Iterator[Any]:
    for pattern in patterns:
        names = (*params, *pattern.pattern.regex.groupindex)
        text = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            inner = (*namespace, pattern.namespace) if pattern.namespace else namespace
            if not set(inner) & EXEMPT_NAMESPACES:
                yield from _walk(pattern.url_patterns, inner, names, text)
        elif isinstance(pattern, URLPattern):
            yield ":".join((*namespace, pattern.name or text)), Route(names, text, pattern.callback)


@cache
def served_routes() -> dict[str, Route]:
    """Every route outside the exempt namespaces, by name (asked for while tests run: the URL configuration is
    loaded with the test settings then)."""
    return dict(_walk(get_resolver().url_patterns, (), (), ""))


def routes_with_parameters() -> set[str]:
    return {name for name, route in served_routes().items() if route.params}


@cache
def openapi_operations() -> tuple[tuple[str, str, str | None], ...]:
    """(method, path template, route name or None) of every documented operation with path parameters."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found: list[tuple[str, str, str | None]] = []
    for template, item in schema["paths"].items():
        if "{" not in template:
            continue
        try:
            route: str | None = resolve(re.sub(r"\{[^}]+\}", PLACEHOLDER, template)).view_name
        except Resolver404:
            route = None
        found.extend((method.upper(), template, route) for method in item if method.upper() in METHODS)
    return tuple(found)


def documented_methods(route: str) -> set[str]:
    return {method for method, _, name in openapi_operations() if name == route}


def declared_methods(route: str) -> frozenset[str] | None:
    """The methods the route's view serves, read from the view: a DRF view's handlers (a viewset's actions), or the
    list a ``require_http_methods`` decorator checks; None when the view does not say."""
    view: Any = served_routes()[route].callback
    cls = getattr(view, "cls", None)
    if cls is not None:
        actions = getattr(view, "actions", None) or {name: name for name in cls.http_method_names if hasattr(cls, name)}
        return frozenset(name.upper() for name in actions)
    while view is not None:
        code = getattr(view, "__code__", None)
        if code is not None and "request_method_list" in code.co_freevars:
            return frozenset(view.__closure__[code.co_freevars.index("request_method_list")].cell_contents)
        view = getattr(view, "__wrapped__", None)
    return None


def methods_to_try(declared: frozenset[str] | None) -> list[str]:
    """GET always, and every other method the view serves (all of them when it does not say)."""
    return [method for method in METHODS if method == "GET" or declared is None or method in declared]


# -- what the builders work with ----------------------------------------------------------------------------------


@dataclass
class World:
    acme: Organization
    globex: Organization
    initech: Organization
    summit: Partner
    carol: User
    person: User  # who acts: the signed-in person, or the key's owner
    client: APIClient


@dataclass
class Target:
    """A route's path parameters naming someone else's object(s), and the rows that must stay as they are."""

    kwargs: dict[str, Any]
    rows: list[Model] = field(default_factory=list)


Build = Callable[[World, Organization], list[Target]]


@dataclass(frozen=True)
class Entry:
    build: Build
    body: dict[str, Any] = field(default_factory=dict)  # sent with every method but GET, so a lookup is reached


def outsider(org: Organization) -> User:
    """Someone of ``org`` other than the person acting (carol for Globex)."""
    user = UserFactory(email=f"someone{serial()}@{org.slug}.test")
    MembershipFactory(user=user, organization=org, role=Role.MEMBER)
    return user


# tenancy


def organization_targets(world: World, org: Organization) -> list[Target]:
    return [Target({"pk": str(org.pk)}, [org]), Target({"pk": org.slug}, [org])]


def switch_targets(world: World, org: Organization) -> list[Target]:
    return [Target({"slug": org.slug}, [org])]


def membership_targets(world: World, org: Organization) -> list[Target]:
    member = Membership.objects.get(user=outsider(org), organization=org)
    owner = Membership.objects.filter(organization=org, role=Role.OWNER).first()
    return [Target({"membership_id": m.pk}, [m]) for m in (member, owner) if m is not None]


def invitation_targets(world: World, org: Organization) -> list[Target]:
    invitation, _ = invitation_create(organization=org, email=f"new{serial()}@{org.slug}.test", role=Role.MEMBER,
                                      invited_by=None)  # fmt: skip
    return [Target({"invitation_id": invitation.pk}, [invitation])]


def api_key_targets(world: World, org: Organization) -> list[Target]:
    key, _ = api_key_create(name=f"{org.name} payroll sync", scopes=["read"], organization=org)
    return [Target({"key_id": key.pk}, [key])]


# tickets


def ticket(org: Organization) -> Ticket:
    found = ticket_create(organization=org, subject=f"{org.name} payroll server down", requester_email="x@example.test")
    comment_add(ticket=found, body=f"{org.name} payroll details", by_staff=False)
    return found


def ticket_targets(world: World, org: Organization) -> list[Target]:
    found = ticket(org)
    return [Target({"pk": str(found.pk)}, [found])]


def support_targets(world: World, org: Organization) -> list[Target]:
    found = ticket(org)
    return [Target({"number": found.number}, [found])]


def attachment_targets(world: World, org: Organization) -> list[Target]:
    found = ticket(org)
    upload = SimpleUploadedFile("payroll.txt", f"{org.name} payroll".encode(), content_type="text/plain")
    attachment = attachment_add(ticket=found, upload=upload)
    return [Target({"attachment_id": attachment.pk}, [attachment])]


# billing

LINE = {"description": "Payroll hosting", "quantity": "1", "unit_price": "999.00"}


def contract(org: Organization) -> Contract:
    terms = ContractTerms(name=f"{org.name} payroll hosting", start_date=timezone.localdate(), anchor_day=1)
    lines = [{"description": "Payroll hosting", "pricing_model": "FLAT", "amount": "310.00"}]
    return contract_create(organization=org, terms=terms, lines=lines)


def contract_targets(world: World, org: Organization) -> list[Target]:
    found = contract(org)
    return [Target({"pk": str(found.pk)}, [found])]


def contract_line_targets(world: World, org: Organization) -> list[Target]:
    found = contract(org)
    line = found.lines.get()
    mine = contract(world.acme)
    return [
        Target({"pk": str(found.pk), "line_id": str(line.pk)}, [found, line]),
        Target({"pk": str(mine.pk), "line_id": str(line.pk)}, [line]),  # their line under our contract
    ]


def draft_invoice(org: Organization) -> Invoice:
    return invoice_create(organization=org, lines=[LINE], memo=f"{org.name} payroll")


def open_invoice(org: Organization) -> Invoice:
    return invoice_finalize(invoice=draft_invoice(org))


def invoice_targets(world: World, org: Organization) -> list[Target]:
    found = open_invoice(org)
    return [Target({"pk": str(found.pk)}, [found])]


def draft_invoice_targets(world: World, org: Organization) -> list[Target]:
    found = draft_invoice(org)
    return [Target({"pk": str(found.pk)}, [found])]


def invoice_line_targets(world: World, org: Organization) -> list[Target]:
    found = draft_invoice(org)
    line = found.lines.get()
    mine = draft_invoice(world.acme)
    return [
        Target({"pk": str(found.pk), "line_id": str(line.pk)}, [found, line]),
        Target({"pk": str(mine.pk), "line_id": str(line.pk)}, [line]),
    ]


def portal_invoice_targets(world: World, org: Organization) -> list[Target]:
    found = open_invoice(org)
    return [Target({"invoice_id": found.pk}, [found])]


# messaging


def phone() -> str:
    return f"+614915{serial():05d}"


def contact(org: Organization) -> Contact:
    consent = {"source": "web form", "text": "Yes, text me"}
    return contact_create(organization=org, phone=phone(), data={"first_name": f"{org.name} payroll"}, consent=consent)


def number(org: Organization) -> SendingNumber:
    return SendingNumber.objects.create(organization=org, phone_e164=phone(), warmup_start=date(2026, 1, 1))


def template(org: Organization) -> Template:
    return template_create(organization=org, name=f"{org.name} payroll", body="Payday moved, reply STOP to opt out")


def campaign(org: Organization, status: str = CampaignStatus.DRAFT) -> Campaign:
    contact(org)
    found = campaign_create(organization=org, name=f"{org.name} payroll", template_ids=[template(org).pk],
                            number_ids=[number(org).pk])  # fmt: skip
    if status != CampaignStatus.DRAFT:
        Campaign.objects.filter(pk=found.pk).update(status=status, launched_at=timezone.now())
        found.refresh_from_db()
    return found


def sms_contact_targets(world: World, org: Organization) -> list[Target]:
    found = contact(org)
    return [Target({"pk": str(found.pk)}, [found])]


def portal_contact_targets(world: World, org: Organization) -> list[Target]:
    found = contact(org)
    return [Target({"contact_id": found.pk}, [found])]


def dnc(org: Organization) -> DoNotContact:
    return dnc_add(organization=org, phone_e164=phone(), reason="manual")


def sms_dnc_targets(world: World, org: Organization) -> list[Target]:
    entry = dnc(org)
    return [Target({"pk": str(entry.pk)}, [entry])]


def portal_dnc_targets(world: World, org: Organization) -> list[Target]:
    entry = dnc(org)
    return [Target({"entry_id": entry.pk}, [entry])]


def sms_template_targets(world: World, org: Organization) -> list[Target]:
    found = template(org)
    return [Target({"pk": str(found.pk)}, [found])]


def portal_template_targets(world: World, org: Organization) -> list[Target]:
    found = template(org)
    return [Target({"template_id": found.pk}, [found])]


def sms_number_targets(world: World, org: Organization) -> list[Target]:
    found = number(org)
    return [Target({"pk": str(found.pk)}, [found])]


def campaign_targets(status: str, kwarg: str = "pk") -> Build:
    def build(world: World, org: Organization) -> list[Target]:
        found = campaign(org, status)
        return [Target({kwarg: str(found.pk) if kwarg == "pk" else found.pk}, [found])]

    return build


def message_targets(world: World, org: Organization) -> list[Target]:
    found = campaign(org, CampaignStatus.RUNNING)
    job = SendJob.objects.create(organization=org, campaign=found, contact=contact(org), body="Payday moved")
    return [Target({"pk": str(job.pk)}, [job, found])]


def inbound_targets(world: World, org: Organization) -> list[Target]:
    sender = contact(org)
    message = InboundMessage.objects.create(
        organization=org, contact=sender, provider_sid=f"SM{serial():032d}", from_e164=sender.phone_e164,
        to_e164=phone(), body="Is payday moved?", kind=InboundKind.REPLY,
    )  # fmt: skip
    return [Target({"pk": str(message.pk)}, [message])]


def import_targets(world: World, org: Organization) -> list[Target]:
    """A preview kept in the acting person's own session but made in ``org``, and one in carol's session."""
    token = secrets.token_urlsafe(24)
    session = world.client.session
    report = {"created": 1, "updated": 0, "unchanged": 0, "invalid": [], "invalid_count": 0, "invalid_rows": 0}
    session[IMPORTS_KEY] = {
        token: {"organization": str(org.pk), "user": str(world.person.pk), "path": "", "sha256": "", "region": "AU",
                "name": "payroll.csv", "at": timezone.now().isoformat(), "preview": report, "imported": None},
    }  # fmt: skip
    session.save()
    targets = [Target({"token": token})]
    if org != world.acme:
        carols = APIClient()
        carols.force_login(world.carol)
        upload = SimpleUploadedFile("payroll.csv", f"phone,first_name\n{phone()},Payroll\n".encode(), "text/csv")
        response = carols.post(reverse("portal:messaging_import"), {"file": upload, "default_region": "AU"})
        assert response.status_code == 302, response.content
        targets.append(Target({"token": response["Location"].rstrip("/").rsplit("/", 1)[-1]}))
    return targets


# webhooks

HOOK_URL = "https://hooks.example.test/keel"


def endpoint(org: Organization | None = None, partner: Partner | None = None) -> WebhookEndpoint:
    owner = org.name if org else partner.name if partner else ""
    return endpoint_create(organization=org, partner=partner, url=HOOK_URL, event_types=["*"],
                           description=f"{owner} payroll")[0]  # fmt: skip


def delivery(found: WebhookEndpoint) -> WebhookDelivery:
    event = Event.objects.create(organization=found.organization, type="ticket.created", payload={"number": 7})
    return WebhookDelivery.objects.create(endpoint=found, event=event)


def other_partner() -> Partner:
    return PartnerFactory(name="Apex Partners", slug="apex")


def webhook_targets(kwarg: str) -> Build:
    """The organization's endpoint and, beside Globex's, an endpoint of a partner that is not Summit."""

    def build(world: World, org: Organization) -> list[Target]:
        found = endpoint(org)
        targets = [Target({kwarg: str(found.pk) if kwarg == "pk" else found.pk}, [found])]
        if org != world.acme:
            theirs = endpoint(partner=other_partner())
            targets.append(Target({kwarg: str(theirs.pk) if kwarg == "pk" else theirs.pk}, [theirs]))
        return targets

    return build


def delivery_targets(kwarg: str, child: str) -> Build:
    def build(world: World, org: Organization) -> list[Target]:
        found = endpoint(org)
        sent = delivery(found)
        mine = endpoint(world.acme)
        ident = str(found.pk) if kwarg == "pk" else found.pk
        return [
            Target({kwarg: ident, child: sent.pk}, [found, sent]),
            Target({kwarg: str(mine.pk) if kwarg == "pk" else mine.pk, child: sent.pk}, [sent]),
        ]

    return build


# notifications


def notification(org: Organization, user: User) -> Notification:
    notice = Notice.objects.create(organization=org, event_type="ticket.created")
    return Notification.objects.create(organization=org, notice=notice, user=user, event_type="ticket.created",
                                       title=f"{org.name} payroll ticket")  # fmt: skip


def notification_targets(kwarg: str) -> Build:
    """One addressed to the acting person (as if they had belonged to ``org``) and one to someone of ``org``."""

    def build(world: World, org: Organization) -> list[Target]:
        found = [notification(org, world.person), notification(org, outsider(org))]
        return [Target({kwarg: str(item.pk) if kwarg == "pk" else item.pk}, [item]) for item in found]

    return build


def entries(build: Build, names: list[str], body: dict[str, Any] | None = None) -> dict[str, Entry]:
    return {name: Entry(build, body or {}) for name in names}


ISOLATED: dict[str, Entry] = {
    **entries(organization_targets, ["api-organization-detail", "api-organization-branding"],
              {"brand_display_name": "Hijacked"}),
    **entries(ticket_targets, ["api-ticket-detail", "api-ticket-comments", "api-ticket-time-entries"],
              {"body": "Hello", "minutes": 30, "status": "RESOLVED", "subject": "Hijacked"}),
    **entries(contract_targets, ["api-contract-detail", "api-contract-activate", "api-contract-lines",
                                 "api-contract-usage"],
              {"name": "Hijacked", "description": "Extra", "pricing_model": "FLAT", "amount": "1.00",
               "metric": "devices", "quantity": "1"}),
    **entries(contract_line_targets, ["api-contract-line-detail"], {"amount": "1.00"}),
    **entries(invoice_targets, ["api-invoice-detail", "api-invoice-void", "api-invoice-send",
                                "api-invoice-retry-payment", "api-invoice-credit-notes", "api-invoice-pdf"],
              {"reason": "Hijacked", "amount": "1.00"}),
    **entries(draft_invoice_targets, ["api-invoice-lines", "api-invoice-finalize"], LINE),
    **entries(invoice_line_targets, ["api-invoice-line-detail"], {"unit_price": "1.00"}),
    **entries(sms_contact_targets, ["api-sms-contact-detail"], {"first_name": "Hijacked"}),
    **entries(sms_dnc_targets, ["api-sms-dnc-detail"]),
    **entries(sms_template_targets, ["api-sms-template-detail"], {"name": "Hijacked"}),
    **entries(sms_number_targets, ["api-sms-number-detail"]),
    **entries(campaign_targets(CampaignStatus.DRAFT), ["api-sms-campaign-detail", "api-sms-campaign-launch",
                                                       "api-sms-campaign-cancel"]),
    **entries(campaign_targets(CampaignStatus.RUNNING), ["api-sms-campaign-pause", "api-sms-campaign-stats"]),
    **entries(campaign_targets(CampaignStatus.PAUSED), ["api-sms-campaign-resume"]),
    **entries(message_targets, ["api-sms-message-detail"]),
    **entries(inbound_targets, ["api-sms-inbound-detail"]),
    **entries(webhook_targets("pk"), ["api-webhook-detail", "api-webhook-rotate-secret", "api-webhook-test",
                                      "api-webhook-deliveries"], {"description": "Hijacked"}),
    **entries(delivery_targets("pk", "delivery"), ["api-webhook-redeliver"]),
    **entries(notification_targets("pk"), ["api-notification-read"]),
    # the portal
    **entries(switch_targets, ["portal:switch_org"]),
    **entries(portal_invoice_targets, ["portal:billing_invoice", "portal:billing_invoice_pay",
                                       "portal:billing_invoice_pdf"]),
    **entries(support_targets, ["portal:support_ticket", "portal:support_reply", "portal:support_status",
                                "portal:support_rate"], {"body": "Hello", "status": "RESOLVED", "rating": "1"}),
    **entries(attachment_targets, ["portal:support_attachment"]),
    **entries(notification_targets("notification_id"), ["portal:notification_read"]),
    **entries(import_targets, ["portal:messaging_import_preview", "portal:messaging_import_confirm"]),
    **entries(portal_contact_targets, ["portal:messaging_contact", "portal:messaging_contact_edit",
                                       "portal:messaging_contact_consent", "portal:messaging_contact_dnc"],
              {"first_name": "Hijacked", "action": "withdraw", "source": "call"}),
    **entries(portal_dnc_targets, ["portal:messaging_dnc_remove"]),
    **entries(portal_template_targets, ["portal:messaging_template_edit"], {"name": "Hijacked", "body": "Hi"}),
    **entries(campaign_targets(CampaignStatus.RUNNING, "campaign_id"), ["portal:messaging_campaign",
                                                                         "portal:messaging_campaign_action",
                                                                         "portal:messaging_campaign_export"],
              {"action": "pause"}),
    **entries(membership_targets, ["portal:settings_member_role", "portal:settings_member_remove"],
              {"role": Role.ADMIN}),
    **entries(invitation_targets, ["portal:settings_invitation_revoke"]),
    **entries(api_key_targets, ["portal:settings_api_key_revoke", "portal:settings_api_key_rotate"]),
    **entries(webhook_targets("endpoint_id"), ["portal:settings_webhook", "portal:settings_webhook_delete",
                                               "portal:settings_webhook_rotate", "portal:settings_webhook_test",
                                               "portal:settings_webhook_deliveries"],
              {"url": HOOK_URL, "event_types": "*", "description": "Hijacked"}),
    **entries(delivery_targets("endpoint_id", "delivery_id"), ["portal:settings_webhook_delivery",
                                                                "portal:settings_webhook_redeliver"]),
}  # fmt: skip

# Reachable by design with the token alone, without signing in; an unknown token gets the status given.
PUBLIC_BY_TOKEN: dict[str, tuple[str, int]] = {
    "api-qualify-status": ("a prospect polls their qualification by its unguessable id", 404),
    "api-quote-detail": ("a quote is shared by its quote key", 404),
    "portal:qualification_status": ("the prospect's status page, linked by the qualification's id", 404),
    "portal:qualification_quote": ("asks for the quote from the prospect's status page", 404),
    "portal:quote": ("the shareable quote page", 404),
    "portal:quote_checkout": ("checkout from the shareable quote page", 404),
    "portal:brand_logo": ("logos are not secret: emails and sign-in pages show them", 404),
    "portal:invite_accept": ("the emailed invitation link; an unknown or used one is 410 Gone by design", 410),
    "portal:password_reset_confirm": ("the emailed reset link; Django shows an invalid-link page (200)", 200),
    "billing:sandbox_checkout": ("the sandbox payment provider's checkout page, by session token", 404),
    "billing:sandbox_invoice_checkout": ("the sandbox payment provider's invoice payment page, by token", 404),
    "billing:sandbox_portal": ("the sandbox payment provider's billing portal, by token", 404),
    "sms-short-link": ("a campaign's short link, opened by whoever got the message", 404),
}

# -- who asks -----------------------------------------------------------------------------------------------------

ROLES = {"owner": Role.OWNER, "admin": Role.ADMIN, "manager": Role.MANAGER, "member": Role.MEMBER}
PEOPLE = (*ROLES, "staff", "partner-admin")
KEYS = ("key-all", "key-read", "partner-key-acme", "partner-key-globex", "partner-key")
CONTROLS = {True: ("key-all", "partner-key-acme", "staff", "owner"), False: ("owner", "partner-admin")}


def is_api(route: str) -> bool:
    return route.startswith("api-")


def principals_for(route: str) -> tuple[str, ...]:
    return (*PEOPLE, *KEYS) if is_api(route) else PEOPLE


@dataclass
class Cast:
    acme: Organization
    globex: Organization
    initech: Organization
    summit: Partner
    carol: User
    people: dict[str, User]  # by principal: who acts, or whose key acts
    keys: dict[str, str]  # the raw keys of the key principals


def named(email: str, full_name: str, organization: Organization, role: str, *, is_staff: bool = False) -> User:
    user = UserFactory(email=email, full_name=full_name, is_staff=is_staff)
    MembershipFactory(user=user, organization=organization, role=role)
    return user


@pytest.fixture(scope="module")
def cast(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Cast]:
    """The organizations and named people of tests/conftest.py, made as it makes them, with the other callers and
    their keys; made once for the module, in a transaction each test's own transaction nests in (as
    ``setUpTestData`` does), and rolled back when the module ends."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            made = make_cast()
        except BaseException:
            outer.__exit__(None, None, None)
            raise
    try:
        yield made
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def make_cast() -> Cast:
    summit = PartnerFactory(name="Summit IT", slug="summit")
    acme = OrganizationFactory(name="Acme Pty Ltd", slug="acme", partner=summit)
    initech = OrganizationFactory(name="Initech", slug="initech", partner=summit, timezone="Australia/Perth")
    globex = OrganizationFactory(name="Globex Corporation", slug="globex", timezone="America/New_York",
                                 currency="USD", country="US")  # fmt: skip
    alice = named("alice@acme.test", "Alice Owner", acme, Role.OWNER)
    carol = named("carol@globex.test", "Carol Outsider", globex, Role.OWNER)
    pat = UserFactory(email="pat@summit.test", full_name="Pat Partner")
    PartnerMembershipFactory(user=pat, partner=summit)
    people: dict[str, User] = {"owner": alice, "partner-admin": pat, "key-all": alice, "key-read": alice}
    for principal, role in ROLES.items():
        if principal not in people:
            people[principal] = named(f"{principal}@acme.test", principal.title(), acme, role)
    people["staff"] = named("tess@keel.test", "Tess Tech", acme, Role.MEMBER, is_staff=True)
    every = sorted(API_SCOPES)
    reads = [scope for scope in every if scope.endswith("read")]
    keys = {
        "key-all": api_key_create(name="all", scopes=every, organization=acme, created_by=alice)[1],
        "key-read": api_key_create(name="read", scopes=reads, organization=acme, created_by=alice)[1],
    }
    partner_key = api_key_create(name="partner", scopes=every, partner=summit, created_by=pat)[1]
    for principal in ("partner-key-acme", "partner-key-globex", "partner-key"):
        keys[principal], people[principal] = partner_key, pat
    return Cast(acme, globex, initech, summit, carol, people, keys)


def act_as(principal: str, cast: Cast) -> World:
    person = cast.people[principal]
    client = APIClient()
    if principal in PEOPLE:
        client.force_login(person)
    else:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {cast.keys[principal]}"}
        if principal in ("partner-key-acme", "partner-key-globex"):
            headers["HTTP_X_ORGANIZATION"] = principal.rsplit("-", 1)[-1]
        client.credentials(**headers)
    return World(cast.acme, cast.globex, cast.initech, cast.summit, cast.carol, person, client)


def send(client: APIClient, method: str, path: str, body: dict[str, Any], *, api: bool) -> HttpResponse:
    if method == "GET":
        return client.get(path)
    if api:
        return client.generic(method, path, json.dumps(body), content_type="application/json")
    return client.generic(method, path, urlencode(body, doseq=True), content_type="application/x-www-form-urlencoded")


def unknown(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The same parameters naming nothing: a fresh UUID for a UUID, a large number for a number, else a token."""
    nothing: dict[str, Any] = {}
    for name, value in kwargs.items():
        text = str(value)
        if isinstance(value, uuid.UUID) or re.fullmatch(r"[0-9a-f]{8}-[0-9a-f-]{27}", text):
            nothing[name] = uuid.uuid4() if isinstance(value, uuid.UUID) else str(uuid.uuid4())
        elif isinstance(value, int) or text.isdigit():
            nothing[name] = UNKNOWN_NUMBER if isinstance(value, int) else str(UNKNOWN_NUMBER)
        else:
            nothing[name] = f"nothing-{secrets.token_hex(6)}"
    return nothing


PROJECT_APPS = {"tenancy", "events", "qualification", "quotes", "billing", "tickets", "sms", "notifications",
                "integrations"}  # fmt: skip


@cache
def counting_sql() -> str:
    tables = sorted(
        model._meta.db_table
        for model in apps.get_models()
        if model._meta.app_label in PROJECT_APPS and model._meta.managed and not model._meta.proxy
    )
    quote = connection.ops.quote_name
    return " UNION ALL ".join(f"SELECT '{table}', COUNT(*) FROM {quote(table)}" for table in tables)  # noqa: S608 - names from the models


def row_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(counting_sql())
        return dict(cursor.fetchall())


def state(targets: list[Target]) -> tuple[dict[str, int], list[Any]]:
    """The row count of every table of the project's apps, and each target row as stored."""
    rows = [type(row)._base_manager.filter(pk=row.pk).values().first() for target in targets for row in target.rows]
    return row_counts(), rows


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[None]:
    """Sandbox providers, host names that resolve to a public address, and any outgoing HTTP answered 200."""
    settings.STRIPE_PROVIDER = "sandbox"
    settings.SMS_PROVIDER = "sandbox"

    real = socket.getaddrinfo

    def resolve_public(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host == "localhost" or re.fullmatch(r"[\d.]+|[\da-fA-F:]*:[\da-fA-F:]*", str(host)):
            return real(host, port, *args, **kwargs)  # addresses, and the database's host, as they are
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve_public)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in METHODS:
            mock.add(method, re.compile(r"https?://.*"), body="ok")
        yield


# -- the tests ----------------------------------------------------------------------------------------------------

MATRIX = [(route, principal) for route in sorted(ISOLATED) for principal in principals_for(route)]


@pytest.mark.parametrize(("route", "principal"), MATRIX, ids=[f"{route}|{who}" for route, who in MATRIX])
def test_another_organizations_object_is_404(route: str, principal: str, cast: Cast, offline: None) -> None:
    entry = ISOLATED[route]
    world = act_as(principal, cast)
    targets = entry.build(world, cast.globex)
    before = state(targets)
    declared = declared_methods(route)
    documented = documented_methods(route)
    api = is_api(route)
    nowhere = reverse(route, kwargs=unknown(targets[0].kwargs))
    baselines: dict[str, HttpResponse] = {}
    leaks: list[str] = []
    for target in targets:
        path = reverse(route, kwargs=target.kwargs)
        for method in methods_to_try(declared):
            response = send(world.client, method, path, entry.body, api=api)
            status = response.status_code
            if b"globex" in response.content.lower():
                leaks.append(f"{method} {path}: {status} shows Globex")
            if status == 404:
                continue
            if status == 405 and method in documented:
                leaks.append(f"{method} {path}: 405, but the schema documents {method}")
                continue
            if status == 405 and declared is not None and method not in declared:
                continue  # refused by the framework before the view runs
            if method not in baselines:
                baselines[method] = send(world.client, method, nowhere, entry.body, api=api)
            baseline = baselines[method]
            if status in OBJECT_INDEPENDENT and (status, response.content) == (baseline.status_code, baseline.content):
                continue
            leaks.append(
                f"{method} {path}: {status} (an unknown id: {baseline.status_code}) {response.content[:200]!r}"
            )
    assert leaks == []
    assert state(targets) == before, "a request changed another organization's data"


@pytest.mark.parametrize("route", sorted(ISOLATED))
def test_own_objects_are_reachable(route: str, cast: Cast, offline: None) -> None:
    """The builders' objects exist and the route finds them for their own organization: some caller of Acme gets,
    for Acme's object, an answer other than the 404 an unknown id gets."""
    entry = ISOLATED[route]
    api = is_api(route)
    answers: dict[str, list[tuple[int, int]]] = {}
    for principal in CONTROLS[api]:
        world = act_as(principal, cast)
        target = entry.build(world, cast.acme)[0]
        path = reverse(route, kwargs=target.kwargs)
        nowhere = reverse(route, kwargs=unknown(target.kwargs))
        for method in methods_to_try(declared_methods(route)):
            mine = send(world.client, method, path, entry.body, api=api).status_code
            absent = send(world.client, method, nowhere, entry.body, api=api).status_code
            answers.setdefault(principal, []).append((mine, absent))
            if absent == 404 and mine != 404:
                return
    pytest.fail(f"{route}: no caller of Acme reaches Acme's own object (answers, an unknown id's): {answers}")


def test_keys_open_no_portal_page(cast: Cast, offline: None) -> None:
    """Keys are tried on the API only because the portal does not take them: with a bearer key a portal page
    answers as to anyone not signed in, with the way to the sign-in page."""
    world = act_as("key-all", cast)
    login = reverse("portal:login")
    answers = {}
    for route, entry in sorted(ISOLATED.items()):
        if not is_api(route):
            response = world.client.get(reverse(route, kwargs=entry.build(world, cast.globex)[0].kwargs))
            answers[route] = (response.status_code, response.get("Location", "").split("?")[0])
    assert answers and set(answers.values()) == {(302, login)}, answers


@pytest.mark.parametrize("route", sorted(PUBLIC_BY_TOKEN))
def test_an_unknown_token_is_refused(route: str) -> None:
    _, expected = PUBLIC_BY_TOKEN[route]
    kwargs = {name: unknown_value(name) for name in served_routes()[route].params}
    path = reverse(route, kwargs=kwargs)
    answers = {APIClient().get(path).status_code, APIClient().post(path, {}).status_code}
    assert expected in answers and answers <= {expected, 405}, (path, answers)


def unknown_value(name: str) -> Any:
    if name.endswith("_id") or name == "pk":
        return uuid.uuid4()
    if name == "uidb64":
        return "MTIzNDU"
    return secrets.token_urlsafe(16)


def test_every_route_with_parameters_is_covered() -> None:
    missing = sorted(routes_with_parameters() - set(ISOLATED) - set(PUBLIC_BY_TOKEN))
    assert missing == [], f"routes with path parameters in neither ISOLATED nor PUBLIC_BY_TOKEN: {missing}"


def test_registry_names_real_routes_with_parameters() -> None:
    listed = set(ISOLATED) | set(PUBLIC_BY_TOKEN)
    gone = sorted(listed - routes_with_parameters())
    assert gone == [], f"registry entries naming no route with path parameters: {gone}"
    assert set(ISOLATED).isdisjoint(PUBLIC_BY_TOKEN)


def test_every_documented_operation_with_parameters_is_covered() -> None:
    covered = set(ISOLATED) | set(PUBLIC_BY_TOKEN)
    missing = sorted(f"{method} {template}" for method, template, route in openapi_operations() if route not in covered)
    assert missing == [], f"documented operations with path parameters not covered: {missing}"
    unserved = []
    for method, template, route in openapi_operations():
        declared = declared_methods(route) if route else None
        if declared is not None and method not in declared:
            unserved.append(f"{method} {template}")
    assert unserved == [], f"documented operations their view does not serve: {unserved}"
    assert openapi_operations(), "the schema documents no operation with path parameters"


def test_the_api_is_where_the_routes_say() -> None:
    """Keys are tried on the routes named ``api-…``: those, and only those, are under /api/."""
    served = served_routes()
    assert sorted(route for route in ISOLATED if served[route].pattern.startswith("api/") != is_api(route)) == []


def test_the_callers_hold_every_role_and_scope() -> None:
    assert set(ROLES.values()) == set(Role.values), "a membership role no caller of the matrix holds"
    # key-all and key-read are the scope sets that act as roles: every scope reads or writes.
    assert sorted(scope for scope in API_SCOPES if not scope.endswith(("read", "write"))) == []
