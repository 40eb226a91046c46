"""The contract rows the billing benchmarks share: ``total`` ACTIVE contracts with three lines each, spread over
``organizations`` organizations whose slugs begin with ``bench-billing-``, each owing exactly one period on
``THROUGH``.

The mix is an MSP's book: monthly contracts most, then weekly, quarterly and annual ones; two in three billed in
advance; lines priced flat, per unit, in graduated or volume tiers, by metered usage (with usage records inside the
period) and as blocks of hours. Organizations bill in five currencies and time zones, some of them review drafts
first, and all of them have numbered invoices before (their counters do not start at zero).

Lines are built by ``billing.services.contracts.line_check``, the validator ``contract_create`` runs, and a
contract's position is ``position_after(contract, start_date)``, what ``contract_activate`` stores; the audit rows
both services write are written too. Only the writes are bulk (``bulk_create``), so the state is the services' own.
A contract's start date and anchor are drawn until the position owes the first period on or before ``THROUGH`` and
the next one after it (checked with the same functions), so one generation run through ``THROUGH`` creates exactly
one invoice per contract.

Blocks of hours bill their fee alone here: ticket time would mean adding tickets, and the ticket benchmarks count
theirs.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

SLUG_PREFIX = "bench-billing-"
THROUGH = date(2026, 6, 15)  # the generation date: every contract owes one period by then
SEED = 20260615
USAGE_RECORDS = 3  # per metered contract
CYCLE_DAYS = {"WEEKLY": 7, "MONTHLY": 30, "QUARTERLY": 91, "ANNUAL": 365}
# (currency, time zone, tax label, tax rate) by organization, in turn.
LOCALES = (
    ("AUD", "Australia/Sydney", "GST", Decimal("10.00")),
    ("USD", "America/New_York", "Sales tax", Decimal("8.88")),
    ("GBP", "Europe/London", "VAT", Decimal("20.00")),
    ("EUR", "Europe/Berlin", "VAT", Decimal("19.00")),
    ("NZD", "Pacific/Auckland", "GST", Decimal("15.00")),
)


def organization_ids() -> list[Any]:
    from tenancy.models import Organization

    return list(Organization.objects.filter(slug__startswith=SLUG_PREFIX).values_list("pk", flat=True))


def clean() -> None:
    """Delete every row of the benchmark organizations (their billing, events and audit log), then the
    organizations. Raw deletes in foreign key order: an invoice protects its contract from Django's cascade, and
    whatever refers to an invoice (lines, credit notes, payments, billed usage) goes before it."""
    from django.apps import apps
    from django.db import connection, transaction

    from billing.models import Invoice

    ids = organization_ids()
    if not ids:
        return
    inside = "organization_id = ANY(%s)"
    invoices = f"SELECT id FROM billing_invoice WHERE {inside}"  # noqa: S608 - constant fragments
    tables = set(connection.introspection.table_names())
    statements = [
        f"DELETE FROM events_delivery WHERE event_id IN (SELECT id FROM events_event WHERE {inside})",  # noqa: S608
        f"DELETE FROM events_event WHERE {inside}",  # noqa: S608
    ]
    for model in apps.get_models():
        if model is Invoice or model._meta.db_table not in tables:
            continue
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is Invoice:
                table = model._meta.db_table
                statements.append(f"DELETE FROM {table} WHERE {field.column} IN ({invoices})")  # noqa: S608 - names
    statements += [
        f"DELETE FROM billing_invoice WHERE {inside}",  # noqa: S608
        f"DELETE FROM billing_usagerecord WHERE {inside}",  # noqa: S608
        f"DELETE FROM billing_contractadjustment WHERE {inside}",  # noqa: S608
        f"DELETE FROM billing_contractline WHERE {inside}",  # noqa: S608
        f"DELETE FROM billing_contract WHERE {inside}",  # noqa: S608
        f"DELETE FROM billing_documentcounter WHERE {inside}",  # noqa: S608
        f"DELETE FROM billing_billingsettings WHERE {inside}",  # noqa: S608
        f"DELETE FROM tenancy_auditevent WHERE {inside}",  # noqa: S608
        "DELETE FROM tenancy_organization WHERE id = ANY(%s)",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, [ids] * statement.count("%s"))


def _organizations(count: int) -> list[Any]:
    from billing.models import BillingSettings, DocumentCounter
    from tenancy.models import Organization

    orgs = []
    for n in range(count):
        currency, zone, _, _ = LOCALES[n % len(LOCALES)]
        orgs.append(
            Organization(
                slug=f"{SLUG_PREFIX}{n}", name=f"Bench billing {n}", tier="PREMIUM", currency=currency, timezone=zone
            )
        )
    Organization.objects.bulk_create(orgs)
    # One in seven reviews drafts first (in every currency); about four in ten have a settings row at all.
    BillingSettings.objects.bulk_create(
        BillingSettings(organization=org, review_drafts=n % 7 == 0)
        for n, org in enumerate(orgs)
        if n % 7 == 0 or n % 3 == 0
    )
    DocumentCounter.objects.bulk_create(
        DocumentCounter(organization=org, kind="invoice", last_number=100 + n) for n, org in enumerate(orgs)
    )
    return orgs


def _tiers(*steps: tuple[str | None, str]) -> list[dict[str, str | None]]:
    return [{"up_to": up_to, "unit_price": price, "flat_fee": "0"} for up_to, price in steps]


def _base_line(rnd: random.Random) -> dict[str, Any]:
    if rnd.random() < 0.5:
        return {"description": "Managed services", "pricing_model": "FLAT", "amount": f"{rnd.randint(300, 9000)}.00"}
    return {
        "description": "Per-seat support",
        "pricing_model": "PER_UNIT",
        "unit_price": f"{rnd.randint(25, 95)}.50",
        "quantity": str(rnd.randint(5, 250)),
        "included_quantity": str(rnd.choice([0, 0, 5])),
    }


def _device_line(rnd: random.Random) -> dict[str, Any]:
    pick = rnd.random()
    if pick < 0.4:
        return {
            "description": "Endpoint protection",
            "pricing_model": "TIERED_GRADUATED",
            "quantity": str(rnd.randint(3, 400)),
            "tiers": _tiers(("10", "12.00"), ("50", "9.50"), ("250", "7.25"), (None, "5.00")),
        }
    if pick < 0.7:
        return {
            "description": "Backup storage (TB)",
            "pricing_model": "TIERED_VOLUME",
            "quantity": f"{rnd.randint(1, 80)}.5",
            "tiers": _tiers(("5", "60.00"), ("20", "45.00"), (None, "30.00")),
        }
    return {
        "description": "Microsoft 365 licences",
        "pricing_model": "PER_UNIT",
        "unit_price": "32.40",
        "quantity": str(rnd.randint(5, 300)),
    }


def _extra_line(rnd: random.Random, *, metered: bool) -> dict[str, Any]:
    if metered:
        if rnd.random() < 0.5:
            return {
                "description": "Cloud backup (GB)",
                "pricing_model": "USAGE",
                "metric": "backup_gb",
                "unit_price": "0.0125",
                "included_quantity": "500",
            }
        return {
            "description": "API calls",
            "pricing_model": "USAGE",
            "metric": "api_calls",
            "included_quantity": "1000",
            "tiers": _tiers(("10000", "0.01"), (None, "0.005")),
        }
    if rnd.random() < 0.6:
        return {
            "description": "Support block",
            "pricing_model": "HOURS_BLOCK",
            "amount": f"{rnd.choice([800, 1000, 1500])}.00",
            "included_quantity": str(rnd.choice([5, 10, 20])),
            "overage_rate": "150.00",
        }
    return {"description": "Monitoring", "pricing_model": "FLAT", "amount": f"{rnd.randint(50, 400)}.00"}


def _due_once(contract: Any) -> date | None:
    """The end of the one period ``contract`` owes on ``THROUGH``, or None unless it owes exactly one."""
    from billing import periods
    from billing.services.planning import position_after, schedule_of

    start, due = position_after(contract, contract.start_date)
    if start is None or due is None or due > THROUGH:
        return None
    cycle_period = periods.period_containing(schedule_of(contract), start)
    end = min(cycle_period.end, contract.end_date) if contract.end_date else cycle_period.end
    _, following = position_after(contract, end)
    if following is None or following <= THROUGH:
        return None
    contract.next_period_start, contract.next_invoice_on = start, due
    return end


def _draw(contract: Any, rnd: random.Random) -> date:
    """Set the contract's start date and anchor (and its position) so that it owes one period on ``THROUGH``."""
    days = CYCLE_DAYS[contract.cycle]
    arrears = contract.timing == "ARREARS"
    explicit_anchor = rnd.random() < 0.3  # else the start day, what contract_create picks when none is given
    for _ in range(40):
        back = rnd.randrange(days) + (days if arrears else 0)
        start = THROUGH - timedelta(days=back)
        contract.start_date = start
        if contract.cycle == "WEEKLY":
            contract.anchor_day = rnd.randint(1, 7) if explicit_anchor else start.isoweekday()
        else:
            contract.anchor_day = rnd.choice([1, 1, 1, 15, 20, 28, 31]) if explicit_anchor else start.day
        if contract.end_date is not None:
            contract.end_date = start + timedelta(days=3 * 365)
        end = _due_once(contract)
        if end is not None:
            return end
    raise RuntimeError(f"no start date owes one {contract.cycle} {contract.timing} period on {THROUGH}")


def populate(total: int, organizations: int) -> int:
    """Write ``total`` active contracts (three lines each, usage for the metered ones) over ``organizations`` new
    benchmark organizations. Call ``clean`` first. Returns the number of usage records written."""
    from django.db import connection, transaction
    from django.utils import timezone

    from billing.models import Contract, ContractLine, UsageRecord
    from billing.services.contracts import line_check
    from tenancy.models import AuditEvent

    rnd = random.Random(SEED + total)  # noqa: S311 - reproducible benchmark data, not a secret
    now = timezone.now()
    with transaction.atomic():
        orgs = _organizations(organizations)
        contracts: list[Any] = []
        lines: list[Any] = []
        usage: list[Any] = []
        for n in range(total):
            org = orgs[n % organizations]
            _, zone, tax_label, tax_rate = LOCALES[(n % organizations) % len(LOCALES)]
            cycle = rnd.choices(["MONTHLY", "WEEKLY", "QUARTERLY", "ANNUAL"], weights=[55, 15, 15, 15])[0]
            timing = "ARREARS" if rnd.random() < 0.35 else "ADVANCE"
            term = rnd.random() < 0.3  # a fixed term, renewing yearly for half of them
            renews = term and rnd.random() < 0.5
            contract = Contract(
                organization=org,
                name=f"{cycle.title()} managed IT {n}",
                status="ACTIVE",
                cycle=cycle,
                timing=timing,
                end_date=THROUGH if term else None,  # placed three years after the start by _draw
                payment_terms_days=rnd.choice([7, 14, 14, 30]),
                tax_rate=tax_rate,
                tax_label=tax_label,
                auto_renew=renews,
                renewal_term_months=12 if renews else None,
                created_at=now,
            )
            piece_end = _draw(contract, rnd)
            metered = rnd.random() < (0.7 if timing == "ARREARS" else 0.25)  # else a block of hours or a flat fee
            data = [_base_line(rnd), _device_line(rnd), _extra_line(rnd, metered=metered)]
            for position, values in enumerate(data):
                line = line_check(org, values, prefix=f"lines[{position}].")
                line.contract, line.position = contract, position
                lines.append(line)
            if metered:
                # Inside the period due: billed by it in arrears; after its start (so next period's) in advance.
                last = piece_end - timedelta(days=1) if timing == "ARREARS" else THROUGH
                span = max((last - contract.start_date).days, 0)
                for k in range(USAGE_RECORDS):
                    day = contract.start_date + timedelta(days=rnd.randint(0, span))
                    usage.append(
                        UsageRecord(
                            organization=org,
                            contract=contract,
                            metric=data[2]["metric"],
                            quantity=Decimal(rnd.randint(10, 9000)),
                            recorded_at=datetime.combine(day, time(12), tzinfo=ZoneInfo(zone)),
                            idempotency_key=f"bench-{n}-{k}",
                            created_at=now,
                        )
                    )
            contracts.append(contract)
        Contract.objects.bulk_create(contracts, batch_size=2000)
        ContractLine.objects.bulk_create(lines, batch_size=2000)
        UsageRecord.objects.bulk_create(usage, batch_size=2000)
        audit = [
            AuditEvent(
                action=action,
                organization_id=contract.organization_id,
                target_type=contract._meta.label,
                target_id=str(contract.pk),
                target_label=str(contract)[:200],
                changes=changes,
                created_at=now,
            )
            for contract in contracts
            for action, changes in (("contract.created", {"lines": 3}), ("contract.activated", {}))
        ]
        AuditEvent.objects.bulk_create(audit, batch_size=2000)
    with connection.cursor() as cursor:
        for table in ("tenancy_organization", "billing_contract", "billing_contractline", "billing_usagerecord"):
            cursor.execute(f"ANALYZE {table}")
    return len(usage)
