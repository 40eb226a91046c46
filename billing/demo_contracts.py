"""Contracts and invoices for the demo organizations, for `manage.py seed_demo` (idempotent: an organization that
has contracts is left alone).

Every pricing model and cycle appears, the contracts started months ago so that invoicing catches up and leaves a
history: paid invoices (Acme's saved card), overdue and uncollectible ones (Initech's card is declined for
insufficient funds, retried until the attempts ran out), drafts waiting for review (Globex reviews its invoices) and a
voided one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import BillingSettings, Contract, Invoice, InvoiceStatus, PaymentAttempt
from billing.services.collection import invoice_charge
from billing.services.contracts import ContractTerms, contract_create, usage_record
from billing.services.invoices import invoice_create, invoice_finalize, invoice_void
from billing.services.invoicing import invoices_generate
from tenancy.models import Organization


def _months_ago(today: date, months: int) -> date:
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return date(year, month + 1, 1)


def _contracts(today: date) -> dict[str, list[tuple[ContractTerms, list[dict[str, Any]]]]]:
    start = _months_ago(today, 4)
    return {
        "acme": [
            (
                ContractTerms(
                    name="Managed IT",
                    start_date=start,
                    cycle="MONTHLY",
                    timing="ADVANCE",
                    end_date=_months_ago(today, -8),
                    auto_renew=True,
                    renewal_term_months=12,
                ),
                [
                    {"description": "Managed services", "pricing_model": "FLAT", "amount": "1500.00"},
                    {
                        "description": "Microsoft 365 seats",
                        "pricing_model": "PER_UNIT",
                        "unit_price": "22.50",
                        "quantity": "12",
                    },
                    {
                        "description": "Support retainer (10 h a month)",
                        "pricing_model": "HOURS_BLOCK",
                        "amount": "1650.00",
                        "included_quantity": "10",
                        "overage_rate": "165.00",
                    },
                ],
            ),
            (
                ContractTerms(name="Backup and devices", start_date=start, cycle="QUARTERLY", timing="ARREARS"),
                [
                    {
                        "description": "Cloud backup",
                        "pricing_model": "USAGE",
                        "metric": "backup_gb",
                        "tiers": [{"up_to": "500", "unit_price": "0.10"}, {"up_to": None, "unit_price": "0.05"}],
                    },
                    {
                        "description": "Managed devices",
                        "pricing_model": "TIERED_GRADUATED",
                        "quantity": "35",
                        "tiers": [{"up_to": "20", "unit_price": "12.00"}, {"up_to": None, "unit_price": "9.00"}],
                    },
                ],
            ),
        ],
        "initech": [
            (
                ContractTerms(
                    name="Security monitoring",
                    start_date=start,
                    cycle="ANNUAL",
                    timing="ADVANCE",
                    end_date=start.replace(year=start.year + 1),
                    auto_renew=True,
                    renewal_term_months=12,
                ),
                [
                    {
                        "description": "Endpoint detection",
                        "pricing_model": "TIERED_VOLUME",
                        "quantity": "60",
                        "tiers": [
                            {"up_to": "50", "unit_price": "9.00"},
                            {"up_to": None, "unit_price": "7.50", "flat_fee": "50.00"},
                        ],
                    },
                ],
            ),
            (
                ContractTerms(
                    name="Onsite support", start_date=start, cycle="WEEKLY", timing="ARREARS", payment_terms_days=7
                ),
                [{"description": "Onsite technician, one day a week", "pricing_model": "FLAT", "amount": "880.00"}],
            ),
        ],
        "globex": [
            (
                ContractTerms(
                    name="Cloud hosting",
                    start_date=start,
                    cycle="MONTHLY",
                    timing="ARREARS",
                    tax_rate=Decimal("0"),
                    tax_label="",
                ),
                [
                    {
                        "description": "Virtual machines",
                        "pricing_model": "USAGE",
                        "metric": "vm_hours",
                        "unit_price": "0.12",
                    },
                    {"description": "Hosting platform", "pricing_model": "FLAT", "amount": "400.00"},
                ],
            ),
        ],
    }


# slug -> the card charged automatically (Stripe's test payment methods, which the sandbox answers alike)
CARDS = {"acme": "pm_card_visa", "initech": "pm_card_chargeDeclinedInsufficientFunds"}


def _usage(contract: Contract, today: date) -> None:
    for line in contract.lines.filter(pricing_model="USAGE"):
        for week in range(18):
            day = today - timedelta(weeks=week)
            quantity = 180 + 15 * (week % 5) if line.metric == "backup_gb" else 410 + 37 * (week % 4)
            usage_record(
                contract=contract,
                metric=line.metric,
                quantity=quantity,
                idempotency_key=f"demo-{contract.pk}-{week}",
                recorded_at=datetime.combine(day, time(12), tzinfo=UTC),
            )


def _collect(organization: Organization) -> None:
    """Charge the organization's open invoices as the hourly run would, until each is paid or out of attempts."""
    for invoice in Invoice.objects.for_org(organization).filter(status=InvoiceStatus.OPEN).order_by("issue_date"):
        for _ in range(settings.BILLING_MAX_PAYMENT_ATTEMPTS):
            attempt = invoice_charge(invoice_id=invoice.pk, organization_id=organization.pk, trigger="retry")
            invoice.refresh_from_db()
            if attempt is None or invoice.status != InvoiceStatus.OPEN or invoice.next_payment_at is None:
                break
        if organization.slug == "initech" and invoice.status == InvoiceStatus.UNCOLLECTIBLE:
            break  # one uncollectible invoice shows the story; the rest stay open and overdue


@transaction.atomic
def seed() -> list[str]:
    lines = []
    today = timezone.localdate()
    for slug, contracts in _contracts(today).items():
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            continue
        if not Contract.objects.for_org(organization).exists():
            BillingSettings.objects.update_or_create(
                organization=organization,
                defaults={
                    "review_drafts": slug == "globex",
                    "payment_method_id": CARDS.get(slug, ""),
                    "payment_method_label": "Visa ending 4242" if slug in CARDS else "",
                    "autopay": False,  # charged below, synchronously, instead of by the worker
                    "late_fee_percent": Decimal("2.00") if slug == "initech" else Decimal("0"),
                    "suspend_after_days": 30 if slug == "initech" else None,
                },
            )
            if slug in CARDS and not organization.stripe_customer_id:
                Organization.objects.filter(pk=organization.pk).update(stripe_customer_id=f"cus_demo_{slug}")
                organization.refresh_from_db()
            for terms, contract_lines in contracts:
                contract = contract_create(organization=organization, terms=terms, lines=contract_lines, activate=True)
                _usage(contract, today)
            invoices_generate(organization=organization)
            _collect(organization)
            BillingSettings.objects.filter(organization=organization).update(autopay=slug in CARDS)
            if slug == "acme":  # an invoice issued twice by mistake, voided with its credit note
                duplicate = invoice_create(
                    organization=organization,
                    lines=[{"description": "Onsite visit", "quantity": "2", "unit_price": "165.00", "kind": "time"}],
                )
                invoice_void(invoice=invoice_finalize(invoice=duplicate), reason="Issued twice by mistake")
        counts = {
            status: Invoice.objects.for_org(organization).filter(status=status).count()
            for status in InvoiceStatus.values
        }
        attempts = PaymentAttempt.objects.for_org(organization).count()
        lines.append(
            f"{organization.name:20} {Contract.objects.for_org(organization).count()} contracts; invoices "
            + ", ".join(f"{count} {status.lower()}" for status, count in counts.items() if count)
            + f"; {attempts} payment attempts"
        )
    return lines
