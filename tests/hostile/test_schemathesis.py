"""Schemathesis over the partner API, in process: every operation of the OpenAPI schema (as ``/api/schema/`` serves
it), fuzzed with valid and invalid data under all of Schemathesis's default checks (no server errors, documented
status codes, content types and headers, responses that match their schema, invalid data refused, valid data
accepted, authentication enforced), once with an organization key and once with a partner key acting for Acme
through ``X-Organization``. Both keys hold every scope.

Each example runs in a savepoint rolled back after it, so examples do not see each other's writes and a failing one
is replayed exactly (and a database error cannot leave the test's transaction aborted for the next one). Path ids
of positive examples are swapped for those of real rows, so the operations reach their serializers and services
rather than stopping at 404."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import responses
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.fields import BooleanField
from schemathesis.core.mutations import OperatorKind
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoverageScenario, TestPhase
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from billing.services.contracts import ContractTerms, contract_create
from billing.services.invoices import credit_note_create, invoice_create, invoice_finalize
from events.models import Event, WebhookDelivery
from events.webhooks import endpoint_create
from notifications.models import Notice, Notification
from qualification.models import Qualification
from quotes.models import Plan
from quotes.services import quote_create
from sms.models import SendingNumber, SendJob
from sms.services.campaigns import campaign_create, campaign_launch, template_create
from sms.services.contacts import contact_create, dnc_add
from tenancy.models import Organization, User
from tenancy.services.api_keys import API_SCOPES, api_key_create
from tests.factories import UserFactory
from tickets.services import comment_add, ticket_create, time_entry_add

HOOKS = "https://hooks.example.com/keel"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Australia/Sydney"))  # a Monday morning at Acme


def schema_document() -> dict[str, Any]:
    """The schema ``/api/schema/`` serves (see the last test), generated without a request, so at import time."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return dict(json.loads(OpenApiJsonRenderer().render(document)))


def load_schema() -> Any:
    loaded = schemathesis.openapi.from_dict(schema_document())
    loaded.app = WSGIHandler()  # requests go to the application in this process
    return loaded


schema = load_schema()
# The partner key runs the same requests through X-Organization: examples and random data are enough to walk that
# path, while the coverage phase's hundreds of boundary cases per operation would only repeat the organization run.
partner_schema = load_schema()
partner_schema.config.phases.update(phases=["examples", "fuzzing"])
FUZZ = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    database=None,
    # Function-scoped fixtures (the database, the keys) are set up once per operation, on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture
def _connection_kept() -> Iterator[None]:
    """The WSGI handler closes the database connection after each request, as it should in production; here the
    connection holds the test's transaction, so it stays open (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No network: webhook addresses under example.com resolve to a public address and everything else does not;
    the one webhook receiver answers 204, and any other outgoing HTTP request fails as if the host were down."""

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        host.encode("idna")  # the real resolver's first step, with its UnicodeError
        if not host.endswith("example.com"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("93.184.215.14", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, re.compile(re.escape(HOOKS) + ".*"), status=204)
        yield


@pytest.fixture
def world(
    acme: Organization, globex: Organization, alice: User, bob: User, settings: Any, time_machine: Any, _offline: None
) -> dict[str, str]:
    """A little of everything at Acme (and a ticket at Globex, which neither key may see); the ids by kind."""
    time_machine.move_to(NOW, tick=False)  # due dates, SLA clocks and overdue invoices read the same on every run
    settings.STRIPE_PROVIDER = "sandbox"
    tess = UserFactory(email="tess@keel.test", full_name="Tess Tech", is_staff=True)
    ticket = ticket_create(organization=acme, subject="Printer on fire", requester=bob, priority="P2")
    ticket_create(organization=acme, subject="VPN drops", requester=bob, priority="P1")
    ticket_create(organization=globex, subject="Globex payroll server down", priority="P1")
    comment_add(ticket=ticket, body="Still smoking.", author=bob)
    time_entry_add(ticket=ticket, technician=tess, minutes=30, note="Replaced the fuser.")

    today = timezone.localdate()
    contract = contract_create(
        organization=acme,
        terms=ContractTerms(name="Managed services", start_date=today.replace(day=1)),
        lines=[{"description": "Per device", "pricing_model": "PER_UNIT", "unit_price": "15.00", "quantity": "10"}],
        activate=True,
    )
    draft = invoice_create(organization=acme, lines=[{"description": "Setup", "unit_price": "150.00"}])
    issued = invoice_create(organization=acme, lines=[{"description": "Onsite visit", "unit_price": "220.00"}])
    invoice_finalize(invoice=issued)
    credit_note_create(invoice=issued, amount="20.00", reason="Goodwill")

    number = SendingNumber.objects.create(organization=acme, phone_e164="+61491570001", warmup_start=date(2026, 1, 1))
    consent = {"source": "web form"}
    contact = contact_create(organization=acme, phone="0412000001", data={"tags": ["vip"]}, consent=consent)
    contact_create(organization=acme, phone="0412000002", data={"tags": ["vip"]}, consent=consent)
    dnc = dnc_add(organization=acme, phone_e164="+61412000009", reason="manual")
    template = template_create(organization=acme, name="Hello", body="Hi {first_name}, see {link}")
    launched = campaign_create(organization=acme, name="Spring", template_ids=[template.pk], number_ids=[number.pk],
                               audience_tags=["vip"], link_url="https://acme.example.com/spring")  # fmt: skip
    campaign_launch(campaign=launched, actor=alice)
    campaign = campaign_create(organization=acme, name="Autumn", template_ids=[template.pk], number_ids=[number.pk],
                               audience_tags=["vip"], link_url="https://acme.example.com/autumn")  # fmt: skip
    message = SendJob.objects.filter(campaign=launched).first()
    assert message is not None

    endpoint, _ = endpoint_create(url=HOOKS, event_types=["*"], organization=acme, actor=alice)
    event = Event.objects.create(organization=acme, type="ticket.created", payload={"id": str(ticket.pk)})
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event)

    notice = Notice.objects.create(organization=acme, event_type="ticket.created")
    notification = Notification.objects.create(organization=acme, notice=notice, user=alice,
                                               event_type="ticket.created", title="A new ticket")  # fmt: skip

    qualification = Qualification.objects.create(tier="core_plus", customer_email="dana@prospect.test",
                                                  status="AUTO_APPROVED", auto_score=90)  # fmt: skip
    # The plan as migrations seed it; a transactional test elsewhere in the run may have flushed the seeded rows.
    Plan.objects.update_or_create(
        tier="core_plus",
        defaults={"name": "Core+", "base_monthly": Decimal("499.00"), "per_user": Decimal("45.00"),
                  "per_device": Decimal("15.00"), "included_users": 10, "included_devices": 15, "custom_quote": False,
                  "active": True},
    )  # fmt: skip
    quote = quote_create(email="dana@prospect.test", tier="core_plus", configuration={"users": 12, "devices": 15})
    return {
        "staff": str(tess.pk),
        "organization": str(acme.pk),
        "ticket": str(ticket.pk),
        "contract": str(contract.pk),
        "contract_line": str(contract.lines.get().pk),
        "draft": str(draft.pk),
        "draft_line": str(draft.lines.get().pk),
        "invoice": str(issued.pk),
        "contact": str(contact.pk),
        "dnc": str(dnc.pk),
        "template": str(template.pk),
        "number": str(number.pk),
        "campaign": str(campaign.pk),
        "message": str(message.pk),
        "webhook": str(endpoint.pk),
        "delivery": str(delivery.pk),
        "notification": str(notification.pk),
        "qualification": str(qualification.pk),
        "quote_key": quote.quote_key,
    }


# Checks that cannot hold for an operation, with the reason. Each is a rule the schema cannot state, so a request
# that matches the schema can still be refused with a 400 naming the field.
_RULES_BEYOND_THE_SCHEMA = (positive_data_acceptance,)
EXCLUDED: dict[str, tuple[Any, ...]] = {
    # The range must run forwards and span at most 366 days.
    "GET /api/tickets/sla-report/": _RULES_BEYOND_THE_SCHEMA,
    # A contract ends after it starts, and which of amount, unit price, quantity, tiers and metric a line needs
    # depends on its pricing model.
    "POST /api/contracts/": _RULES_BEYOND_THE_SCHEMA,
    "PATCH /api/contracts/{id}/": _RULES_BEYOND_THE_SCHEMA,
    "POST /api/contracts/{id}/lines/": _RULES_BEYOND_THE_SCHEMA,
    "PATCH /api/contracts/{id}/lines/{line_id}/": _RULES_BEYOND_THE_SCHEMA,
    # return_url must be an address Django's URL validator takes (http or https, a real host name).
    "POST /api/billing/portal/": _RULES_BEYOND_THE_SCHEMA,
    # The logo must decode to a PNG or JPEG image.
    "PUT /api/organizations/{id}/branding/": _RULES_BEYOND_THE_SCHEMA,
    "PATCH /api/organizations/{id}/branding/": _RULES_BEYOND_THE_SCHEMA,
    # A phone number must be one that can exist in its region (libphonenumber's metadata).
    "POST /api/sms/contacts/": _RULES_BEYOND_THE_SCHEMA,
    "POST /api/sms/dnc/": _RULES_BEYOND_THE_SCHEMA,
    # The file must be a CSV with a phone column, the region one libphonenumber knows.
    "POST /api/sms/contacts/import/": _RULES_BEYOND_THE_SCHEMA,
    # The address must resolve, in DNS at the time, to public addresses only.
    "POST /api/webhooks/": _RULES_BEYOND_THE_SCHEMA,
    "PATCH /api/webhooks/{id}/": _RULES_BEYOND_THE_SCHEMA,
    # A campaign whose template uses {link} needs link_url.
    "POST /api/sms/campaigns/": _RULES_BEYOND_THE_SCHEMA,
    # The idempotency key may come in the body or in the Idempotency-Key header, but must come in one.
    "POST /api/contracts/{id}/usage/": _RULES_BEYOND_THE_SCHEMA,
    # A credit note is more than zero and at most what the invoice still has due.
    "POST /api/invoices/{id}/credit-notes/": _RULES_BEYOND_THE_SCHEMA,
    # An invoice's lines must add up to what an invoice can hold (quantity times price, summed), with quantities of
    # zero or more; a changed line, merged with what it was, must still be a valid line.
    "POST /api/invoices/": _RULES_BEYOND_THE_SCHEMA,
    "POST /api/invoices/{id}/lines/": _RULES_BEYOND_THE_SCHEMA,
    "PATCH /api/invoices/{id}/lines/{line_id}/": _RULES_BEYOND_THE_SCHEMA,
    # Core+: 'none' stands alone among the kinds of IT support, and pain_point 'other' needs pain_point_detail.
    # Premium: the website must be an address a browser could open.
    "POST /api/qualify/core-plus/": _RULES_BEYOND_THE_SCHEMA,
    "POST /api/qualify/premium/": _RULES_BEYOND_THE_SCHEMA,
    # Invoicing runs up to a day at most a year from today.
    "POST /api/invoices/generate/": _RULES_BEYOND_THE_SCHEMA,
    # A template's body must use only known placeholders, with its braces closed.
    "POST /api/sms/templates/": _RULES_BEYOND_THE_SCHEMA,
    "PATCH /api/sms/templates/{id}/": _RULES_BEYOND_THE_SCHEMA,
    # A time zone must be one of the IANA database's names, an email address one that can receive mail.
    "PATCH /api/sms/contacts/{id}/": _RULES_BEYOND_THE_SCHEMA,
    # Who may do what depends on the caller: an organization key replies as the customer (no internal notes), and
    # names the staff member who worked (a staff session defaults to itself).
    "POST /api/tickets/{id}/comments/": _RULES_BEYOND_THE_SCHEMA,
    "POST /api/tickets/{id}/time-entries/": _RULES_BEYOND_THE_SCHEMA,
}


# Which row each path's parameters name, by the start of the path (the first match wins).
PATH_ROWS: list[tuple[str, dict[str, str]]] = [
    ("/api/tickets/", {"id": "ticket"}),
    ("/api/contracts/", {"id": "contract", "line_id": "contract_line"}),
    ("/api/invoices/{id}/lines/", {"id": "draft", "line_id": "draft_line"}),
    ("/api/invoices/{id}/finalize/", {"id": "draft"}),
    ("/api/invoices/", {"id": "invoice"}),
    ("/api/sms/contacts/", {"id": "contact"}),
    ("/api/sms/dnc/", {"id": "dnc"}),
    ("/api/sms/templates/", {"id": "template"}),
    ("/api/sms/numbers/", {"id": "number"}),
    ("/api/sms/campaigns/", {"id": "campaign"}),
    ("/api/sms/messages/", {"id": "message"}),
    ("/api/webhooks/", {"id": "webhook", "delivery": "delivery"}),
    ("/api/notifications/", {"id": "notification"}),
    ("/api/organizations/", {"id": "organization"}),
    ("/api/qualify/status/", {"id": "qualification"}),
    ("/api/quotes/", {"quote_key": "quote_key"}),
]


# Body fields that name rows (people, templates, numbers), and the row each names in valid examples.
BODY_ROWS = {"assignee": "staff", "technician": "staff", "template_ids": "template", "number_ids": "number"}


def _negative_at(case: Any, location: ParameterLocation) -> bool:
    return case.meta is not None and case.meta.is_negative_at(location)


def point_at_real_rows(case: Any, ids: dict[str, str]) -> None:
    if case.path_parameters and not _negative_at(case, ParameterLocation.PATH):
        for prefix, names in PATH_ROWS:
            if case.operation.path.startswith(prefix):
                for name, kind in names.items():
                    if name in case.path_parameters:
                        case.path_parameters[name] = ids[kind]
                break
    if isinstance(case.body, dict) and not _negative_at(case, ParameterLocation.BODY):
        for name, kind in BODY_ROWS.items():
            value = case.body.get(name)
            if isinstance(value, list) and value:
                case.body[name] = [ids[kind]]
            elif isinstance(value, str):
                case.body[name] = ids[kind]


# DRF reads JSON leniently, for every media type alike: a string field takes a number (as its digits), a number field
# a numeric string, a boolean field 1, 0, "true", "no" and the like. The schema gives the canonical types; a negative
# example whose only fault is one of these values is converted, not bad data, so it is not held against the API.
# Every other kind of invalid data still must be refused.
BOOLEAN_WORDS = frozenset(BooleanField.TRUE_VALUES | BooleanField.FALSE_VALUES)
WHOLE_NUMBER = re.compile(r"\s*[-+]?\d+(\.0*)?\s*")
NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _coerced(declared: Any, value: Any) -> bool:
    if declared == "string":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if declared == "integer":
        return isinstance(value, str) and WHOLE_NUMBER.fullmatch(value) is not None
    if declared == "number":
        return isinstance(value, str) and NUMBER.fullmatch(value) is not None
    if declared == "boolean":
        return isinstance(value, str | int) and value in BOOLEAN_WORDS
    return False


def _values_at(value: Any, path: list[str | int | None]) -> list[Any]:
    """The values at ``path`` in ``value``; None in the path stands for every item of a list."""
    values = [value]
    for step in path:
        found = []
        for item in values:
            if step is None:
                if isinstance(item, list):
                    found.extend(item)
            elif isinstance(item, dict):
                if step in item:
                    found.append(item[step])
            elif isinstance(item, list) and isinstance(step, int) and 0 <= step < len(item):
                found.append(item[step])
        values = found
    return values


def _resolved(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    if isinstance(node, dict) and "type" not in node and len(node.get("allOf", ())) == 1:
        return _resolved(document, node["allOf"][0])
    return node


def _coverage_retype(case: Any) -> tuple[Any, list[Any]] | None:
    """For a coverage example that gives one body field a value of another type: the declared type and the values."""
    data = case.meta.phase.data
    if data.scenario != CoverageScenario.INCORRECT_TYPE or data.parameter_location != ParameterLocation.BODY:
        return None
    steps = (data.location or "").strip("/").split("/")[:-1]  # ".../properties/<name>/type"
    document = case.operation.schema.raw_schema
    content = case.operation.definition.raw.get("requestBody", {}).get("content", {})
    node = _resolved(document, content.get("application/json", {}).get("schema"))
    path: list[str | int | None] = []
    previous = ""
    for step in steps:
        node = _resolved(document, node)
        if not isinstance(node, dict) or step not in node:
            return None
        if previous == "properties":
            path.append(step)
        elif step == "items":
            path.append(None)
        node, previous = node[step], step
    node = _resolved(document, node)
    return (node.get("type") if isinstance(node, dict) else None), _values_at(case.body, path)


SENT = {"authorization", "x-organization"}  # the headers ``run`` sends with every request


def only_coercions(case: Any) -> bool:
    if case.meta is None:
        return False
    if case.meta.phase.name == TestPhase.COVERAGE:
        retyped = _coverage_retype(case)
        return retyped is not None and bool(retyped[1]) and all(_coerced(retyped[0], value) for value in retyped[1])
    mutations = getattr(case.meta.phase.data, "mutations", ())
    if not mutations:
        return False
    for mutation in mutations:
        if mutation.parameter_location == ParameterLocation.HEADER and (mutation.parameter or "").lower() in SENT:
            continue  # replaced by the key's own header when sent
        if mutation.operator != OperatorKind.CHANGE_TYPE or mutation.parameter_location != ParameterLocation.BODY:
            return False
        path: list[str | int | None] = list(mutation.path)
        if mutation.schema_pointer.endswith("/items"):
            path.append(None)
        values = _values_at(case.body, path)
        if not values or not all(_coerced(mutation.original_value, value) for value in values):
            return False
    return True


def negative_data_rejection_drf(ctx: Any, response: Any, case: Any) -> bool | None:
    if only_coercions(case):
        return None
    return negative_data_rejection(ctx, response, case)


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


def positive_data_acceptance_drf(ctx: Any, response: Any, case: Any) -> bool | None:
    """No text anywhere in the API may hold a NUL (DRF refuses it in every string field, and PostgreSQL could not
    store it), a rule the schema does not repeat for each string: such a request is refused with a 400."""
    sent = (case.body, case.query, case.path_parameters, case.headers)
    if response.status_code == 400 and any(_holds_nul(part) for part in sent if isinstance(part, dict | list | str)):
        return None
    return positive_data_acceptance(ctx, response, case)


def run(case: Any, headers: dict[str, str], ids: dict[str, str]) -> None:
    point_at_real_rows(case, ids)
    skipped = EXCLUDED.get(case.operation.label, ())
    refined = [negative_data_rejection_drf]
    if positive_data_acceptance not in skipped:
        refined.append(positive_data_acceptance_drf)
    cache.clear()  # the keys' rate limits: a few hundred requests per operation
    with transaction.atomic():
        case.call_and_validate(
            headers=headers,
            excluded_checks=[negative_data_rejection, positive_data_acceptance, *skipped],
            additional_checks=refined,
        )
        transaction.set_rollback(True)


@pytest.fixture
def organization_key(acme: Organization, alice: User) -> dict[str, str]:
    _, raw = api_key_create(name="fuzz", scopes=list(API_SCOPES), organization=acme, created_by=alice)
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def partner_key(acme: Organization, pat: User) -> dict[str, str]:
    assert acme.partner is not None
    _, raw = api_key_create(name="fuzz", scopes=list(API_SCOPES), partner=acme.partner, created_by=pat)
    return {"Authorization": f"Bearer {raw}", "X-Organization": acme.slug}


@pytest.mark.django_db
@schema.parametrize()
@FUZZ
def test_organization_key(
    case: Any, organization_key: dict[str, str], world: dict[str, str], _connection_kept: None
) -> None:
    run(case, organization_key, world)


@pytest.mark.django_db
@partner_schema.parametrize()
@FUZZ
def test_partner_key(case: Any, partner_key: dict[str, str], world: dict[str, str], _connection_kept: None) -> None:
    run(case, partner_key, world)


@pytest.mark.django_db
def test_the_fuzzed_schema_is_the_one_served(client: Any) -> None:
    served = client.get("/api/schema/?format=json")
    assert served.status_code == 200
    assert json.loads(served.content) == schema_document()


# Requests the fuzzing above once answered with a 500, kept as they were found.
FOUND = [
    # A page number far past the data overflowed the database's LIMIT.
    ("get", "/api/organizations/?page=375031881140716544&page_size=147", None, 404),
    # A NUL in a filter reached PostgreSQL, which refuses it in a query.
    ("get", "/api/sms/dnc/?reason=%00", None, 400),
    # The checkout's return address was built from a key no quote can have.
    ("post", "/api/checkout/", {"quote_key": "a/b"}, 404),
    # Invoicing through the year 9999 ran the periods' arithmetic past the calendar.
    ("post", "/api/invoices/generate/", {"date": "9999-12-31", "dry_run": True}, 400),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body", "status"), FOUND)
def test_once_a_server_error(
    method: str, path: str, body: Any, status: int, api: Any, partner_key: dict[str, str], world: dict[str, str]
) -> None:
    client = api(partner_key["Authorization"].removeprefix("Bearer "), organization=partner_key["X-Organization"])
    response = getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)
    assert response.status_code == status, response.content
