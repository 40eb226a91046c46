"""Writes to contracts: creating and activating them, changing a line mid-period, and recording metered usage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing import periods, proration, rating
from billing.models import (
    BillingSettings,
    Contract,
    ContractAdjustment,
    ContractLine,
    ContractStatus,
    Cycle,
    PricingModel,
    Timing,
    UsageRecord,
)
from billing.selectors import billing_contacts
from billing.services.invoicing import adjustments_invoice
from billing.services.planning import position_after, renewed_end, schedule_of, terms_of
from notifications.services import notify
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization, User

# Prices and quantities stay below a billion, and a line's charge for one period below a hundred billion, so every
# amount an invoice derives from them fits its columns (16 digits, 4 after the point).
LIMIT = Decimal("1e9")
CHARGE_LIMIT = Decimal("1e11")
LINE_FIELDS = (
    "description",
    "pricing_model",
    "amount",
    "unit_price",
    "quantity",
    "included_quantity",
    "tiers",
    "metric",
    "overage_rate",
)


def decimal_field(value: Any, field: str, errors: dict[str, list[str]], *, negative: bool = False) -> Decimal | None:
    """``value`` as a Decimal, or None with the reason added to ``errors[field]``."""
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        errors.setdefault(field, []).append("A number is required.")
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        errors.setdefault(field, []).append("Must be a number.")
        return None
    if not number.is_finite() or abs(number) >= LIMIT:
        errors.setdefault(field, []).append("Must be a finite number below a billion.")
        return None
    if number < 0 and not negative:
        errors.setdefault(field, []).append("Must be a number of zero or more.")
        return None
    return number


def _tiers(value: Any, field: str, errors: dict[str, list[str]]) -> list[dict[str, str | None]]:
    """Tiers as stored: a list of {"up_to", "unit_price", "flat_fee"} with numbers as strings (up_to may be null)."""
    if not isinstance(value, list):
        errors.setdefault(field, []).append('Must be a list of {"up_to", "unit_price", "flat_fee"} objects.')
        return []
    tiers: list[dict[str, str | None]] = []
    for index, tier in enumerate(value):
        if not isinstance(tier, dict) or set(tier) - {"up_to", "unit_price", "flat_fee"}:
            errors.setdefault(field, []).append(f'tiers[{index}]: give "up_to", "unit_price" and "flat_fee" only.')
            continue
        clean: dict[str, str | None] = {"up_to": None}
        for name in ("up_to", "unit_price", "flat_fee"):
            raw = tier.get(name)
            if raw is None or raw == "":
                if name == "unit_price":
                    errors.setdefault(field, []).append(f"tiers[{index}]: unit_price is required.")
                continue
            number = decimal_field(raw, field, errors)
            if number is not None:
                clean[name] = str(number)
        tiers.append(clean)
    return tiers


def _field_of(message: str) -> str:
    """The line field a pricing error is about: rating's messages begin with it ("tiers[1]: up_to must ...")."""
    name = message.split(":", 1)[0].split("[", 1)[0].strip()
    return name if name in LINE_FIELDS else "pricing_model"


def line_check(organization: Organization, data: dict[str, Any], prefix: str = "") -> ContractLine:
    """A contract line from ``data``, validated by pricing it for one period; ServiceValidationError names the field
    (``lines[0].tiers`` with ``prefix="lines[0]."``) and the reason."""
    errors: dict[str, list[str]] = {}
    line = ContractLine(organization=organization)
    line.description = str(data.get("description") or "").strip()[:200]
    if not line.description:
        errors[f"{prefix}description"] = ["A description is required."]
    model = data.get("pricing_model", PricingModel.FLAT)
    if model not in PricingModel.values:
        errors[f"{prefix}pricing_model"] = [f"Must be one of {', '.join(PricingModel.values)}."]
    line.pricing_model = model
    for name in ("amount", "unit_price", "quantity", "included_quantity", "overage_rate"):
        if name in data and data[name] is not None:
            value = decimal_field(data[name], f"{prefix}{name}", errors)
            if value is not None:
                setattr(line, name, value)
    line.tiers = _tiers(data.get("tiers") or [], f"{prefix}tiers", errors)
    line.metric = str(data.get("metric") or "").strip()[:60]
    if model == PricingModel.USAGE and not line.metric:
        errors[f"{prefix}metric"] = ["A usage line needs the metric its usage records carry."]
    if not errors:
        try:
            charges = rating.rate(terms_of(line, organization.currency))
        except (ValueError, TypeError, InvalidOperation, AttributeError) as bad:
            errors[f"{prefix}{_field_of(str(bad))}"] = [str(bad)]
        else:
            if sum(abs(charge.amount) for charge in charges) >= CHARGE_LIMIT:
                errors[f"{prefix}quantity"] = ["The line would cost a hundred billion or more a period."]
    if errors:
        raise ServiceValidationError(errors)
    return line


@dataclass(frozen=True)
class ContractTerms:
    name: str
    start_date: date
    cycle: str = Cycle.MONTHLY
    anchor_day: int | None = None
    timing: str = Timing.ADVANCE
    end_date: date | None = None
    payment_terms_days: int = 14
    tax_rate: Decimal = Decimal("10.00")
    tax_label: str = "GST"
    auto_renew: bool = False
    renewal_term_months: int | None = None


def terms_check(terms: ContractTerms) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not terms.name.strip():
        errors["name"] = ["A name is required."]
    if terms.cycle not in Cycle.values:
        errors["cycle"] = [f"Must be one of {', '.join(Cycle.values)}."]
    if terms.timing not in Timing.values:
        errors["timing"] = [f"Must be one of {', '.join(Timing.values)}."]
    if terms.end_date is not None and terms.end_date <= terms.start_date:
        errors["end_date"] = ["Must be after the start date."]
    if terms.anchor_day is not None:
        high = 7 if terms.cycle == Cycle.WEEKLY else 31
        if not 1 <= terms.anchor_day <= high:
            errors["anchor_day"] = [f"Must be from 1 to {high}."]
    if not 0 <= terms.payment_terms_days <= 365:
        errors["payment_terms_days"] = ["Must be from 0 to 365 days."]
    if not Decimal("0") <= terms.tax_rate <= Decimal("100"):
        errors["tax_rate"] = ["Must be a percentage from 0 to 100."]
    if terms.auto_renew and not terms.renewal_term_months:
        errors["renewal_term_months"] = ["An auto-renewing contract needs a renewal term."]
    if terms.renewal_term_months is not None and not 1 <= terms.renewal_term_months <= 120:
        errors["renewal_term_months"] = ["Must be from 1 to 120 months."]
    if terms.auto_renew and terms.end_date is None:
        errors["end_date"] = ["An auto-renewing contract needs an end date to renew at."]
    return errors


def contract_create(
    *,
    organization: Organization,
    terms: ContractTerms,
    lines: list[dict[str, Any]],
    activate: bool = False,
    actor: User | None = None,
) -> Contract:
    """A contract with its lines, as a draft or active at once. Nothing is written unless all of it is valid."""
    errors = terms_check(terms)
    checked: list[ContractLine] = []
    for index, data in enumerate(lines):
        try:
            checked.append(line_check(organization, data, prefix=f"lines[{index}]."))
        except ServiceValidationError as bad:
            errors.update(bad.message_dict)
    if errors:
        raise ServiceValidationError(errors)
    anchor = terms.anchor_day or (
        terms.start_date.isoweekday() if terms.cycle == Cycle.WEEKLY else terms.start_date.day
    )
    with transaction.atomic():
        contract = Contract.objects.create(
            organization=organization,
            name=terms.name.strip(),
            start_date=terms.start_date,
            end_date=terms.end_date,
            cycle=terms.cycle,
            anchor_day=anchor,
            timing=terms.timing,
            payment_terms_days=terms.payment_terms_days,
            tax_rate=terms.tax_rate,
            tax_label=terms.tax_label,
            auto_renew=terms.auto_renew,
            renewal_term_months=terms.renewal_term_months,
        )
        for position, line in enumerate(checked):
            line.contract = contract
            line.position = position
        ContractLine.objects.bulk_create(checked)
        audit_record(
            action="contract.created",
            organization=organization,
            actor=actor,
            target=contract,
            changes={"lines": len(checked)},
        )
        if activate:
            contract_activate(contract=contract, actor=actor)
    return contract


def contract_activate(*, contract: Contract, actor: User | None = None) -> Contract:
    """Start invoicing a draft (or resume a suspended) contract from where it stands."""
    with transaction.atomic():
        locked = Contract.objects.for_org(contract.organization_id).select_for_update().get(pk=contract.pk)
        if locked.status == ContractStatus.ENDED:
            raise ConflictError("This contract has ended; create a new one or renew it.", field="status")
        if locked.status == ContractStatus.DRAFT:
            locked.next_period_start, locked.next_invoice_on = position_after(locked, locked.start_date)
        locked.status = ContractStatus.ACTIVE
        locked.save(update_fields=["status", "next_period_start", "next_invoice_on", "updated_at"])
        audit_record(action="contract.activated", organization=locked.organization, actor=actor, target=locked)
    return locked


def contract_line_change(
    *, line: ContractLine, effective_on: date, quantity: Any = None, unit_price: Any = None, amount: Any = None
) -> ContractAdjustment | None:
    """Change a line's quantity, unit price or amount from ``effective_on``. When that day falls in a period already
    invoiced, the rest of that period is charged (an increase) or credited (a decrease) on the next invoice."""
    errors: dict[str, list[str]] = {}
    changes = {}
    for name, value in (("quantity", quantity), ("unit_price", unit_price), ("amount", amount)):
        if value is not None:
            number = decimal_field(value, name, errors)
            if number is not None:
                changes[name] = number
    if not changes and not errors:
        errors["quantity"] = ["Give a new quantity, unit price or amount."]
    if errors:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        contract = Contract.objects.for_org(line.organization_id).select_for_update().get(pk=line.contract_id)
        locked = ContractLine.objects.for_org(line.organization_id).select_for_update().get(pk=line.pk)
        currency = contract.organization.currency
        before = _recurring(locked, currency)
        for name, value in changes.items():
            setattr(locked, name, value)
        line_check(contract.organization, {name: getattr(locked, name) for name in LINE_FIELDS})
        after = _recurring(locked, currency)
        locked.save(update_fields=list(changes))
        # Invoiced up to the next period start (or the end, once the last period is); a draft has none invoiced.
        invoiced_until = (
            None if contract.status == ContractStatus.DRAFT else contract.next_period_start or contract.end_date
        )
        if invoiced_until is None or effective_on >= invoiced_until or before == after:
            return None  # the next invoice prices the line as it now is
        cycle_period = periods.period_containing(schedule_of(contract), effective_on)
        difference = proration.change_adjustment(before, after, effective_on, cycle_period, currency)
        last = cycle_period.end - timedelta(days=1)
        adjustment = ContractAdjustment.objects.create(
            organization=contract.organization,
            contract=contract,
            amount=difference,
            effective_on=effective_on,
            description=f"{locked.description}: changed from {effective_on:%-d %b %Y} to {last:%-d %b %Y}",
        )
        if BillingSettings.objects.filter(organization=contract.organization, immediate_proration=True).exists():
            adjustments_invoice(contract=contract)
    return adjustment


def _recurring(line: ContractLine, currency: str) -> Decimal:
    """The line's recurring charges for a full period (what proration scales)."""
    charges = rating.rate(terms_of(line, currency))
    return sum((charge.amount for charge in charges if charge.kind == "recurring"), Decimal("0"))


def usage_record(
    *, contract: Contract, metric: str, quantity: Any, idempotency_key: str, recorded_at: datetime | None = None
) -> tuple[UsageRecord, bool]:
    """Record metered usage once per idempotency key: returns (record, created). The same key again returns the first
    record; the same key with different values is a conflict."""
    errors: dict[str, list[str]] = {}
    number = decimal_field(quantity, "quantity", errors)
    key = str(idempotency_key or "").strip()
    if not key or len(key) > 200:
        errors["idempotency_key"] = ["An idempotency key of 1 to 200 characters is required."]
    metric = str(metric or "").strip()
    if not metric or len(metric) > 60:
        errors["metric"] = ["A metric of 1 to 60 characters is required."]
    if errors or number is None:
        raise ServiceValidationError(errors)
    recorded_at = recorded_at or timezone.now()
    existing = UsageRecord.objects.for_org(contract.organization_id).filter(idempotency_key=key).first()
    if existing is None:
        try:
            with transaction.atomic():
                return UsageRecord.objects.create(
                    organization_id=contract.organization_id,
                    contract=contract,
                    metric=metric,
                    quantity=number,
                    recorded_at=recorded_at,
                    idempotency_key=key,
                ), True
        except IntegrityError:  # a concurrent request with the same key won
            existing = UsageRecord.objects.for_org(contract.organization_id).get(idempotency_key=key)
    if (existing.contract_id, existing.metric, existing.quantity) != (contract.pk, metric, number):
        raise ConflictError("This idempotency key was used for different usage.", field="idempotency_key")
    return existing, False


RENEWAL_NOTICE_DAYS = 30


def contracts_renewal_notices(*, today: date) -> int:
    """Tell each auto-renewing contract's billing contacts, 30 days before its end, that it will renew (once per end
    date). Returns how many contracts were noticed."""
    due = (
        Contract.objects.select_related("organization")
        .filter(
            status=ContractStatus.ACTIVE,
            auto_renew=True,
            renewal_term_months__isnull=False,
            end_date__gt=today,
            end_date__lte=today + timedelta(days=RENEWAL_NOTICE_DAYS),
        )
        .exclude(renewal_notice_for=F("end_date"))
    )
    noticed = 0
    for contract in due:
        with transaction.atomic():
            claimed = (
                Contract.objects.filter(pk=contract.pk)
                .exclude(renewal_notice_for=F("end_date"))
                .update(renewal_notice_for=F("end_date"))
            )
            if not claimed:  # another run told them
                continue
            term = contract.renewal_term_months or 0
            contacts = billing_contacts(contract.organization)
            if contacts:
                notify(
                    organization=contract.organization,
                    event_type="contract.renewal",
                    addresses=contacts,
                    template="contract_renewal",
                    key=f"contract:{contract.pk}:renewal:{contract.end_date}",
                    context={
                        "contract_name": contract.name,
                        "end_date": f"{contract.end_date:%-d %B %Y}",
                        "next_end": f"{renewed_end(contract):%-d %B %Y}",
                        "term": f"{term} month{'s' if term != 1 else ''}",
                    },
                )
            noticed += 1
    return noticed
