"""Keel's busiest HTTP endpoints under load, next to a bare Django view on the same server (the floor).

gunicorn (2 sync workers, bench.settings, DEBUG off) serves Keel on the benchmark database; wrk drives it on
loopback with 32 connections from 2 threads, one endpoint at a time, after a warm-up run of it:

- the partner API's ticket list (``GET /api/tickets/``, a partner key acting for one organization, first page),
- the partner API's invoice list (``GET /api/invoices/``, the same key),
- the portal dashboard (``GET /dashboard/``, 32 signed-in sessions of the organization's owner, in turn),
- a Core+ questionnaire submission (``POST /api/qualify/core-plus``, a new email address each time),
- Twilio's status callback (``POST /webhooks/twilio/status/``, signed, ``sent`` then ``delivered`` for 2,000
  messages the organization sent),
- the short-link redirect (``GET /s/<token>``, 500 links of those messages, a phone browser's user agent).

The organization (slug ``bench-http``, managed by the partner ``bench-http-partner``, with a 16 KB logo for its
white-label portal) holds 500 tickets and 200 invoices: a realistic page, whatever else the database holds (other
benchmarks keep 1,000,000 tickets of other organizations in it). Everything is made on first use and kept, except
the tickets, which are written for each run and deleted afterwards (the ticket benchmarks expect the table to hold
exactly their own rows), and what a run creates (questionnaires, their events and the jobs queued for them).

The ticket and invoice lists are what a partner's system polling them meets: the same key and query again, so all
but about one request a second is answered from the list cache (``API_LIST_CACHE_SECONDS``, ``tenancy/api_cache.py``)
after the key, its organization and its rate are checked. The 1,000,000-ticket benchmark (``api_ticket_list``)
measures the list's queries instead: its partner-wide lists are never reused.

Each endpoint is asked once before it is measured, and its answer checked, so a misconfigured endpoint fails the run
instead of measuring error pages. For each endpoint three rows: requests per second against the floor's (target:
at least 40 %), the 99th percentile latency against a 100 ms budget, and the errors (responses of 400 or more and
socket errors; target: none). The floor runs for 5 s before the first endpoint and after each one: an endpoint is
judged against the mean of the two floor runs around it (the machine is shared, its load drifts), and the floor's
own rows are the median of its runs.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import statistics
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from bench import wrk
from bench.core import LOOPBACK, Context, Result

SLUG = "bench-http"
PARTNER_SLUG = "bench-http-partner"
DOMAIN = "bench-http.example"
OWNER_EMAIL = f"owner@{DOMAIN}"
TICKETS = 500
INVOICES = 200
MESSAGES = 2_000
LINKS = 500
SESSIONS = 32
SID_PREFIX = "SMbenchhttp"
LINK_PREFIX = "bh"
LOGO_SEED = 16
LINK_URL = "https://shop.bench-http.example/offer"
CONNECTIONS = 32
THREADS = 2
THROUGHPUT_TARGET = 0.4
P99_BUDGET_MS = 100.0
USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
CORE_PLUS_ANSWERS = {  # scores 90: approved automatically (no sales rep to assign and notify)
    "name": "Sam Prospect",
    "company_name": "Prospect Pty Ltd",
    "phone": "+61 2 9000 0000",
    "business_type": "small_business",
    "current_it_support": ["another_msp"],
    "tech_comfort_level": 3,
    "pain_point": "security",
    "timeline": "immediately",
}


@dataclass
class Endpoint:
    name: str
    requests: list[wrk.Request]
    check: Callable[[int], None]  # asks the server on that port once and raises unless the answer is right
    reset: Callable[[], None] | None = None  # puts the data back before the measured run


# -- data ------------------------------------------------------------------------------------------------------------


def _logo() -> bytes:
    """A white-label logo of about 16 KB (a 120x45 PNG of noise, which does not compress), a plausible size for a
    customer's portal branding; it is kept in the organization's row."""
    rnd = random.Random(LOGO_SEED)  # noqa: S311 - reproducible pixels, not a secret
    width, height = 120, 45
    pixels = b"".join(b"\x00" + rnd.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels, 9)) + chunk(b"IEND", b"")
    )


def _organization() -> tuple[Any, Any, Any]:
    """The partner, its organization and the organization's owner, with some colleagues and an audit trail."""
    from django.utils import timezone

    from tenancy.models import AuditEvent, Membership, Organization, Partner, Role, User

    partner, _ = Partner.objects.get_or_create(slug=PARTNER_SLUG, defaults={"name": "Bench HTTP partner"})
    org, _ = Organization.objects.get_or_create(
        slug=SLUG, defaults={"name": "Bench HTTP Pty Ltd", "tier": "PREMIUM", "partner": partner}
    )
    logo = _logo()
    version = hashlib.sha256(logo).hexdigest()[:12]
    if org.brand_logo_version != version:
        Organization.objects.filter(pk=org.pk).update(
            brand_logo=logo, brand_logo_type="image/png", brand_logo_version=version
        )
    owner = User.objects.filter(email=OWNER_EMAIL).first() or User.objects.create_user(
        OWNER_EMAIL, None, full_name="Olive Owner"
    )
    Membership.objects.get_or_create(user=owner, organization=org, defaults={"role": Role.OWNER})
    for n, role in enumerate((Role.ADMIN, Role.MANAGER, Role.MEMBER, Role.MEMBER, Role.MEMBER)):
        email = f"staff{n}@{DOMAIN}"
        user = User.objects.filter(email=email).first() or User.objects.create_user(email, None, full_name=f"Staff {n}")
        Membership.objects.get_or_create(user=user, organization=org, defaults={"role": role})
    if not AuditEvent.objects.filter(organization=org).exists():
        now = timezone.now()
        AuditEvent.objects.bulk_create(
            AuditEvent(
                organization=org,
                actor=owner,
                actor_label=owner.email,
                action=("member.invited", "member.role_changed", "api_key.created", "branding.updated")[n % 4],
                target_type="tenancy.Membership",
                target_id=str(n),
                target_label=f"staff{n % 5}@{DOMAIN}",
                changes={"n": n},
                created_at=now - timedelta(hours=n),
            )
            for n in range(40)
        )
    return partner, org, owner


def _tickets(org: Any, owner: Any) -> None:
    """Exactly ``TICKETS`` tickets of the organization, made as ticket_create makes them (targets and clocks)."""
    from django.utils import timezone

    from tickets.clocks import clocks_refresh, targets_apply
    from tickets.models import Ticket, TicketCounter

    Ticket.objects.filter(organization=org).delete()
    now = timezone.now()
    statuses = ["CLOSED"] * 6 + ["RESOLVED"] * 2 + ["OPEN", "OPEN", "NEW", "PENDING_CUSTOMER", "ON_HOLD"]
    rows = []
    for n in range(TICKETS):
        created = now - timedelta(minutes=41 * n + 5)
        ticket = Ticket(
            organization=org,
            number=1001 + n,
            subject=f"Outlook keeps asking for a password on laptop {n}",
            description="Since this morning Outlook asks for the password again every few minutes.",
            requester=owner if n % 3 == 0 else None,
            requester_email=owner.email if n % 3 == 0 else f"user{n % 40}@{DOMAIN}",
            status=statuses[n % len(statuses)] if n >= 10 else "OPEN",
            priority=("P1", "P2", "P3", "P3", "P4")[n % 5],
            category=("email", "hardware", "network", "accounts")[n % 4],
            channel=("portal", "email", "api", "phone")[n % 4],
            tags=["vip"] if n % 7 == 0 else [],
            sla_started_at=created,
            created_at=created,
        )
        targets_apply(ticket)
        if ticket.status != "NEW":
            ticket.first_responded_at = created + timedelta(minutes=20)
        if ticket.status in ("RESOLVED", "CLOSED"):
            ticket.resolved_at = created + timedelta(hours=5)
        if ticket.status == "CLOSED":
            ticket.closed_at = created + timedelta(days=3)
        clocks_refresh(ticket, now)
        rows.append(ticket)
    Ticket.objects.bulk_create(rows)
    TicketCounter.objects.update_or_create(organization=org, defaults={"last_number": 1000 + TICKETS})


def _tickets_delete(org: Any) -> None:
    from tickets.models import Ticket

    Ticket.objects.filter(organization=org).delete()


def _invoices(org: Any) -> None:
    """``INVOICES`` issued invoices, newest first a few open (two overdue), some voided, the rest paid."""
    from django.utils import timezone

    from billing.models import CreditNote, DocumentCounter, Invoice, InvoiceLine

    if Invoice.objects.filter(organization=org).count() == INVOICES:
        return
    CreditNote.objects.filter(organization=org).delete()
    InvoiceLine.objects.filter(organization=org).delete()
    Invoice.objects.filter(organization=org).delete()
    now = timezone.now()
    today = now.date()
    invoices: list[Invoice] = []
    lines: list[InvoiceLine] = []
    notes: list[CreditNote] = []
    prices = ((Decimal("1850.00"), Decimal(1)), (Decimal("32.40"), Decimal(24)), (Decimal("150.00"), Decimal(3)))
    for n in range(INVOICES):
        issued = today - timedelta(days=7 * n + 2)
        status = "OPEN" if n < 4 else "VOID" if n % 25 == 0 else "PAID"
        subtotal = sum((price * quantity for price, quantity in prices), Decimal(0))
        tax = (subtotal * Decimal("0.10")).quantize(Decimal("0.01"))
        invoice = Invoice(
            organization=org,
            number=INVOICES - n,
            period_start=issued,
            period_end=issued + timedelta(days=7),
            status=status,
            currency=org.currency,
            issue_date=issued,
            due_date=issued + timedelta(days=14),
            subtotal=subtotal,
            tax=tax,
            total=subtotal + tax,
            amount_paid=subtotal + tax if status == "PAID" else Decimal(0),
            tax_rate=Decimal("10.00"),
            tax_label="GST",
            finalized_at=now - timedelta(days=7 * n + 2),
            sent_at=now - timedelta(days=7 * n + 2),
            paid_at=now - timedelta(days=7 * n) if status == "PAID" else None,
            voided_at=now - timedelta(days=7 * n) if status == "VOID" else None,
            created_at=now - timedelta(days=7 * n + 2),
        )
        invoices.append(invoice)
        for position, (price, quantity) in enumerate(prices):
            lines.append(
                InvoiceLine(
                    organization=org,
                    invoice=invoice,
                    position=position,
                    description=("Managed services", "Microsoft 365 licences", "Onsite hours")[position],
                    quantity=quantity,
                    unit_price=price,
                    amount=price * quantity,
                )
            )
        if status == "VOID":
            notes.append(
                CreditNote(
                    organization=org,
                    number=len(notes) + 1,
                    invoice=invoice,
                    kind="void",
                    reason="Issued twice.",
                    subtotal=subtotal,
                    tax=tax,
                    total=subtotal + tax,
                    currency=org.currency,
                )
            )
    Invoice.objects.bulk_create(invoices)
    InvoiceLine.objects.bulk_create(lines)
    CreditNote.objects.bulk_create(notes)
    for kind, last in (("invoice", INVOICES), ("credit_note", len(notes))):
        DocumentCounter.objects.update_or_create(organization=org, kind=kind, defaults={"last_number": last})


def _sid(n: int) -> str:
    return f"{SID_PREFIX}{n:021d}"


def _messages(org: Any) -> None:
    """A completed campaign of ``MESSAGES`` sent messages (sids ``_sid(0)`` on), the first ``LINKS`` with a link."""
    from django.utils import timezone

    from sms.models import (
        Campaign,
        CampaignNumber,
        CampaignTemplate,
        Contact,
        SendingNumber,
        SendJob,
        ShortLink,
        Template,
    )

    if SendJob.objects.filter(organization=org, provider_sid__startswith=SID_PREFIX).count() == MESSAGES:
        return
    now = timezone.now()
    ShortLink.objects.filter(organization=org).delete()
    SendJob.objects.filter(organization=org).delete()
    Campaign.objects.filter(organization=org).delete()
    Contact.objects.filter(organization=org).delete()
    number, _ = SendingNumber.objects.get_or_create(
        phone_e164="+61491590001", defaults={"organization": org, "warmup_start": date(2026, 1, 1)}
    )
    template, _ = Template.objects.get_or_create(
        organization=org, name="Offer", defaults={"body": "Hi {first_name}, 20% off this week: {link}"}
    )
    campaign = Campaign.objects.create(
        organization=org, name="Winter offer", status="COMPLETED", link_url=LINK_URL, launched_at=now,
        completed_at=now,
    )  # fmt: skip
    CampaignTemplate.objects.create(campaign=campaign, template=template)
    CampaignNumber.objects.create(campaign=campaign, number=number)
    contacts = Contact.objects.bulk_create(
        Contact(organization=org, phone_e164=f"+61412{n:06d}", first_name=f"Person{n}", consent_at=now)
        for n in range(MESSAGES)
    )
    jobs = SendJob.objects.bulk_create(
        SendJob(
            organization=org,
            campaign=campaign,
            contact=contact,
            position=n,
            state="SENT",
            number=number,
            body=f"Hi Person{n}, 20% off this week",
            segments=1,
            cost=Decimal("0.0500"),
            provider_sid=_sid(n),
            attempts=1,
            sent_at=now,
        )
        for n, contact in enumerate(contacts)
    )
    ShortLink.objects.bulk_create(
        ShortLink(
            organization=org, token=f"{LINK_PREFIX}{n:08d}", job=job, url=LINK_URL, expires_at=now + timedelta(days=90)
        )
        for n, job in enumerate(jobs[:LINKS])
    )


def _messages_reset(org: Any) -> None:
    """Forget the status callbacks of the messages (and their clicks): each run applies them afresh."""
    from sms.models import Click, SendJob, StatusCallback

    StatusCallback.objects.filter(sid__startswith=SID_PREFIX).delete()
    SendJob.objects.filter(organization=org).update(state="SENT", delivered_at=None, provider_price=None)
    Click.objects.filter(organization=org).delete()


def _partner_key(partner: Any) -> str:
    from tenancy.models import ApiKey
    from tenancy.services.api_keys import api_key_create

    ApiKey.objects.filter(partner=partner, name="bench http").delete()
    _, raw = api_key_create(name="bench http", scopes=["read", "tickets:read", "billing:read"], partner=partner)
    return raw


def _session_cookies(owner: Any) -> list[str]:
    """Cookies of ``SESSIONS`` signed-in sessions of ``owner``: what a browser sends after signing in and seeing a
    page, the session and the CSRF cookie its forms set."""
    from django.conf import settings
    from django.test import Client

    cookies = []
    for _ in range(SESSIONS):
        client = Client(HTTP_HOST=LOOPBACK)
        client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
        page = client.get("/dashboard/")  # sets the CSRF cookie, as the sign-in page does for a browser
        if page.status_code != 200:
            raise RuntimeError(f"dashboard: {page.status_code} for a signed-in session, not 200")
        names = [settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME]
        cookies.append("; ".join(f"{name}={client.cookies[name].value}" for name in names))
    return cookies


def _sessions_delete(cookies: list[str]) -> None:
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore
    for cookie in cookies:
        store(cookie.partition(";")[0].partition("=")[2]).delete()


def _submissions_delete() -> list[str]:
    """Delete the questionnaires the runs submitted and their events; the ids of those events."""
    from events.models import Event
    from qualification.models import Qualification

    submitted = Qualification.objects.filter(customer_email__endswith=f"@{DOMAIN}")
    ids = [str(pk) for pk in submitted.values_list("pk", flat=True)]
    events = Event.objects.filter(organization=None, type="qualification.submitted", payload__id__in=ids)
    event_ids = [str(pk) for pk in events.values_list("pk", flat=True)]
    events.delete()  # and their deliveries
    submitted.delete()
    return event_ids


def _broker_forget(redis_url: str | None, event_ids: list[str]) -> int:
    """Take the jobs the server queued for ``event_ids`` (their fan-out) off the broker's queue, which is shared
    with whoever else uses this Redis: no worker reads it during a benchmark, and the events are gone. Without Redis
    the broker is a folder of the run's own, deleted with it. Returns how many jobs were removed. (With Redis the
    server queues one relay run, with no arguments, rather than a job per event: it is left, as it fans out only
    events that still wait.)"""
    if not redis_url or not event_ids:
        return 0
    import redis

    from msp.celery import app

    queue, wanted, removed = app.conf.task_default_queue, set(event_ids), 0
    client = redis.Redis.from_url(redis_url)
    try:
        for item in client.lrange(queue, 0, -1):
            raw = item.decode() if isinstance(item, bytes) else item
            try:
                headers = json.loads(raw)["headers"]
            except (ValueError, KeyError, TypeError):
                continue
            event_id = str(headers.get("argsrepr", "")).strip("(),' ")
            if headers.get("task") == "events.tasks.fan_out" and event_id in wanted:
                removed += int(client.lrem(queue, 1, raw))
    finally:
        client.close()
    return removed


# -- endpoints -------------------------------------------------------------------------------------------------------


def _ask(port: int, request: wrk.Request) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` once (with a token of its own where its body wants one); status, headers and body."""
    body = request.body.replace(wrk.UNIQUE, f"check-{time.time_ns()}") if request.body is not None else None
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        connection.request(request.method, request.path, body=body, headers=dict(request.headers))
        response = connection.getresponse()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
    finally:
        connection.close()


def _expect(
    name: str, answer: tuple[int, dict[str, str], bytes], status: int, what: str, ok: Callable[..., bool]
) -> None:
    got, headers, body = answer
    try:
        good = got == status and ok(headers, body)
    except (ValueError, KeyError, TypeError):
        good = False
    if not good:
        raise RuntimeError(f"{name}: expected {status} with {what}; got {got}: {body[:500]!r}")


def _json(body: bytes) -> Any:
    return json.loads(body)


def _endpoints(org: Any, owner: Any, key: str, cookies: list[str]) -> tuple[Endpoint, list[Endpoint]]:
    """The floor and the endpoints, with their requests and checks."""
    from urllib.parse import urlencode

    from django.conf import settings

    from sms.models import SendJob
    from sms.signatures import twilio_signature

    api = {"Authorization": f"Bearer {key}", "Accept": "application/json", "X-Organization": SLUG}
    bare = wrk.Request("/bench/bare")
    tickets = wrk.Request("/api/tickets/", headers=api)
    invoices = wrk.Request("/api/invoices/", headers=api)
    dashboards = [wrk.Request("/dashboard/", headers={"Cookie": cookie, "Accept": "text/html"}) for cookie in cookies]
    answers = {**CORE_PLUS_ANSWERS, "customer_email": f"prospect-{wrk.UNIQUE}@{DOMAIN}"}
    qualify = wrk.Request(
        "/api/qualify/core-plus",
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        body=json.dumps(answers),
    )
    status_path = "/webhooks/twilio/status/"
    signed_url = settings.SITE_URL.rstrip("/") + status_path  # the public address Twilio signs

    def callback(n: int, status: str) -> wrk.Request:
        sid = _sid(n)
        params = {
            "SmsSid": sid, "SmsStatus": status, "MessageStatus": status, "To": f"+61412{n:06d}",
            "MessageSid": sid, "AccountSid": settings.TWILIO_ACCOUNT_SID, "From": "+61491590001",
            "ApiVersion": "2010-04-01",
        }  # fmt: skip
        return wrk.Request(
            status_path,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(signed_url, params, settings.TWILIO_AUTH_TOKEN),
            },
            body=urlencode(params),
        )

    # Message 0 is the check's; the load sends each other message's "sent", then its "delivered".
    callbacks = [callback(n, status) for status in ("sent", "delivered") for n in range(1, MESSAGES)]
    links = [
        wrk.Request(f"/s/{LINK_PREFIX}{n:08d}", headers={"User-Agent": USER_AGENT, "Accept": "text/html"})
        for n in range(LINKS)
    ]

    def check_bare(port: int) -> None:
        _expect("bare view", _ask(port, bare), 200, '{"ok": true}', lambda h, b: _json(b) == {"ok": True})

    def check_tickets(port: int) -> None:
        _expect(
            "ticket list", _ask(port, tickets), 200, f"{TICKETS} tickets of {SLUG}",
            lambda h, b: _json(b)["count"] == TICKETS and len(_json(b)["results"]) > 0
            and {row["organization"] for row in _json(b)["results"]} == {SLUG},
        )  # fmt: skip

    def check_invoices(port: int) -> None:
        _expect(
            "invoice list", _ask(port, invoices), 200, f"{INVOICES} invoices of {SLUG}, newest first",
            lambda h, b: _json(b)["count"] == INVOICES and _json(b)["results"][0]["number"] == INVOICES
            and {row["organization"] for row in _json(b)["results"]} == {SLUG},
        )  # fmt: skip

    def check_dashboard(port: int) -> None:
        _expect(
            "dashboard", _ask(port, dashboards[0]), 200, f"the dashboard of {org.name}",
            lambda h, b: org.name.encode() in b and b"Recent activity" in b,
        )  # fmt: skip

    def check_qualify(port: int) -> None:
        _expect(
            "questionnaire", _ask(port, qualify), 201, "an automatically approved questionnaire",
            lambda h, b: _json(b)["qualification_status"] == "AUTO_APPROVED" and _json(b)["auto_score"] == 90,
        )  # fmt: skip

    def check_callback(port: int) -> None:
        _expect("twilio status", _ask(port, callback(0, "delivered")), 200, "an empty body", lambda h, b: b == b"")
        state = SendJob.objects.filter(provider_sid=_sid(0)).values_list("state", flat=True).first()
        if state != "DELIVERED":
            raise RuntimeError(f"twilio status: the callback left message {_sid(0)} {state}, not DELIVERED")

    def check_link(port: int) -> None:
        _expect(
            "short link", _ask(port, links[0]), 302, f"a redirect to {LINK_URL}",
            lambda h, b: h["location"] == LINK_URL,
        )  # fmt: skip

    def reset() -> None:
        _messages_reset(org)

    return Endpoint("GET /bench/bare (floor)", [bare], check_bare), [
        Endpoint("GET /api/tickets/", [tickets], check_tickets),
        Endpoint("GET /api/invoices/", [invoices], check_invoices),
        Endpoint("GET /dashboard/", dashboards, check_dashboard),
        Endpoint("POST /api/qualify/core-plus", [qualify], check_qualify),
        Endpoint("POST /webhooks/twilio/status/", callbacks, check_callback, reset),
        Endpoint("GET /s/<token>", links, check_link, reset),
    ]


# -- the run ---------------------------------------------------------------------------------------------------------


@contextmanager
def _seeded(ctx: Context) -> Iterator[tuple[Any, Any, str, list[str]]]:
    """The organization and its rows; the tickets and what the run submitted are removed afterwards."""
    partner, org, owner = _organization()
    _broker_forget(ctx.redis_url, _submissions_delete())  # left by a run that was interrupted
    _tickets(org, owner)
    _invoices(org)
    _messages(org)
    _messages_reset(org)
    cookies: list[str] = []
    try:
        cookies = _session_cookies(owner)
        yield org, owner, _partner_key(partner), cookies
    finally:
        _sessions_delete(cookies)
        _tickets_delete(org)
        _broker_forget(ctx.redis_url, _submissions_delete())


def _rows(name: str, load: wrk.Load, floors: tuple[wrk.Load, wrk.Load]) -> list[Result]:
    floor_rps = statistics.mean(floor.rps for floor in floors)
    return [
        Result(
            name=f"{name} throughput", value=load.rps, unit="req/s", floor=floor_rps, target=THROUGHPUT_TARGET,
            note=f"{load.requests:,} requests in {load.seconds:.1f}s; floor: GET /bench/bare just before and after "
            f"({floors[0].rps:,.0f} and {floors[1].rps:,.0f} req/s)",
        ),
        Result(
            name=f"{name} p99", value=load.p99_ms, unit="ms", floor=P99_BUDGET_MS, target=1.0, higher_is_better=False,
            note=f"median {load.p50_ms:.1f} ms, p90 {load.p90_ms:.1f} ms, max {load.max_ms:.1f} ms",
        ),
        Result(
            name=f"{name} errors", value=load.errors, unit="errors", floor=1, target=0, higher_is_better=False,
            note=f"{load.status_errors} responses >= 400, {load.socket_errors} socket errors",
        ),
    ]  # fmt: skip


def _floor_rows(name: str, floors: list[wrk.Load]) -> list[Result]:
    rps = statistics.median(floor.rps for floor in floors)
    p99 = statistics.median(floor.p99_ms for floor in floors)
    errors = sum(floor.errors for floor in floors)
    runs = ", ".join(f"{floor.rps:,.0f}" for floor in floors)
    return [
        Result(
            name=f"{name} throughput", value=rps, unit="req/s", floor=rps, target=1.0,
            note=f"median of {len(floors)} runs between the endpoints ({runs} req/s); 2 sync workers, "
            f"{CONNECTIONS} connections",
        ),
        Result(
            name=f"{name} p99", value=p99, unit="ms", floor=P99_BUDGET_MS, target=1.0, higher_is_better=False,
            note=f"median of the runs' p99; their medians {', '.join(f'{floor.p50_ms:.1f}' for floor in floors)} ms",
        ),
        Result(
            name=f"{name} errors", value=errors, unit="errors", floor=1, target=0, higher_is_better=False,
            note=f"{sum(floor.status_errors for floor in floors)} responses >= 400, "
            f"{sum(floor.socket_errors for floor in floors)} socket errors",
        ),
    ]  # fmt: skip


def run(ctx: Context) -> list[Result]:
    ctx.setup_django()
    seconds, floor_seconds, warm_up = (3, 2, 1) if ctx.quick else (10, 5, 3)
    with _seeded(ctx) as (org, owner, key, cookies):
        floor, endpoints = _endpoints(org, owner, key, cookies)
        with ctx.gunicorn(workers=2) as port:
            base = f"http://{LOOPBACK}:{port}"
            for endpoint in [floor, *endpoints]:
                if endpoint.reset:
                    endpoint.reset()
                endpoint.check(port)

            def load(endpoint: Endpoint, duration: float) -> wrk.Load:
                return wrk.run(base, endpoint.requests, seconds=duration, connections=CONNECTIONS, threads=THREADS)

            def idle() -> None:
                # The server still works through the requests wrk left queued when it stopped; this one is answered
                # once they are, so the next run starts on an idle server.
                _ask(port, wrk.Request("/bench/bare"))

            def measure(endpoint: Endpoint) -> wrk.Load:
                load(endpoint, warm_up)
                idle()
                if endpoint.reset:
                    endpoint.reset()
                measured = load(endpoint, seconds)
                idle()
                print(
                    f"    {endpoint.name}: {measured.rps:,.0f} req/s, p50 {measured.p50_ms:.1f} ms, "
                    f"p99 {measured.p99_ms:.1f} ms, {measured.errors} errors",
                    flush=True,
                )
                return measured

            def measure_floor() -> wrk.Load:
                measured = load(floor, floor_seconds)
                idle()
                return measured

            # The floor runs before and after each endpoint, so that changes in the machine's load (it is shared)
            # reach each endpoint and the floor it is judged by alike.
            load(floor, warm_up)
            idle()
            floors = [measure_floor()]
            loads = []
            for endpoint in endpoints:
                loads.append(measure(endpoint))
                floors.append(measure_floor())
    results = _floor_rows(floor.name, floors)
    for n, (endpoint, measured) in enumerate(zip(endpoints, loads, strict=True)):
        results.extend(_rows(endpoint.name, measured, (floors[n], floors[n + 1])))
    return results
