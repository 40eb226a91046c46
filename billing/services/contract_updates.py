"""Changes to a contract after it is made: its terms, a new line, and a line's quantity or price from a given day.

Each function is one transaction on the locked contract and writes an audit event. An ended contract no longer
changes (409): its last invoice is out, so a change would bill nothing or need a new contract.

Moving the end date of a running contract moves where invoicing stands (``next_period_start``, ``next_invoice_on``):
the periods already invoiced stay as they are, so the end may not fall before the first day not yet invoiced; a
contract left with nothing to invoice and not renewing ends, as the generator would end it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max

from billing.models import Contract, ContractAdjustment, ContractLine, ContractStatus
from billing.services.contracts import LINE_FIELDS, contract_line_change, decimal_field, line_check
from billing.services.planning import position_after
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import User

CHANGEABLE = ("name", "payment_terms_days", "tax_label", "tax_rate", "end_date", "auto_renew", "renewal_term_months")
PRICE_FIELDS = ("quantity", "unit_price", "amount")
MAX_RENEWAL_MONTHS = 1200


def _locked(contract: Contract) -> Contract:
    locked = (
        Contract.objects.for_org(contract.organization_id)
        .select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=contract.pk)
    )
    if locked.status == ContractStatus.ENDED:
        raise ConflictError("This contract has ended; create a new one or renew it.", field="status")
    return locked


def _plain(value: Any) -> Any:
    """A value as the audit log's JSON holds it."""
    if isinstance(value, date | Decimal):
        return str(value)
    return value


def _whole(value: Any, field: str, low: int, high: int, errors: dict[str, list[str]]) -> int | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors[field] = [f"Must be a whole number from {low} to {high}."]
        return None
    return value


def _first_uninvoiced(contract: Contract) -> date | None:
    """The first day of a running contract not yet invoiced (None for a draft, which has invoiced nothing)."""
    if contract.status == ContractStatus.DRAFT:
        return None
    return contract.next_period_start or contract.end_date


def _checked_terms(contract: Contract, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (every changeable term, changed or not) cleaned; ServiceValidationError names each bad field."""
    errors: dict[str, list[str]] = {}
    clean = dict(values)
    name = str(values["name"] or "").strip()
    if not name or len(name) > 200:
        errors["name"] = ["A name of 1 to 200 characters is required."]
    clean["name"] = name
    clean["payment_terms_days"] = _whole(values["payment_terms_days"], "payment_terms_days", 0, 365, errors)
    label = str(values["tax_label"] or "").strip()
    if len(label) > 20:
        errors["tax_label"] = ["At most 20 characters."]
    clean["tax_label"] = label
    rate = decimal_field(values["tax_rate"], "tax_rate", errors)
    if rate is not None and (rate > 100 or rate != rate.quantize(Decimal("0.01"))):
        errors["tax_rate"] = ["Must be a percentage from 0 to 100, to two decimals at most."]
    clean["tax_rate"] = rate
    end = values["end_date"]
    if end is not None and not isinstance(end, date):
        errors["end_date"] = ["Must be a date (YYYY-MM-DD) or null."]
    elif end is not None and end <= contract.start_date:
        errors["end_date"] = [f"Must be after the start date, {contract.start_date}."]
    elif end is not None and (first := _first_uninvoiced(contract)) is not None and end < first:
        errors["end_date"] = [f"Invoiced until {first} already: end on {first} or later (credit the invoice instead)."]
    if not isinstance(values["auto_renew"], bool):
        errors["auto_renew"] = ["Must be true or false."]
    term = values["renewal_term_months"]
    if term is not None:
        term = _whole(term, "renewal_term_months", 1, MAX_RENEWAL_MONTHS, errors)
    if values["auto_renew"] is True and not term and "renewal_term_months" not in errors:
        errors["renewal_term_months"] = ["An auto-renewing contract needs a renewal term."]
    if values["auto_renew"] is True and end is None and "end_date" not in errors:
        errors["end_date"] = ["An auto-renewing contract needs an end date to renew at."]
    if errors:
        raise ServiceValidationError(errors)
    return clean


def contract_update(*, contract: Contract, changes: dict[str, Any], actor: User | None = None) -> Contract:
    """Change a contract's terms (``CHANGEABLE``); the others are fixed once it is made. All of it, or nothing."""
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise ServiceValidationError({name: ["This term cannot be changed."] for name in unknown})
    with transaction.atomic():
        locked = _locked(contract)
        before = {name: getattr(locked, name) for name in CHANGEABLE}
        after = _checked_terms(locked, {**before, **changes})
        changed = [name for name in CHANGEABLE if after[name] != before[name]]
        if not changed:
            return locked
        first = _first_uninvoiced(locked)
        for name in changed:
            setattr(locked, name, after[name])
        fields = [*changed, "updated_at"]
        if first is not None and {"end_date", "auto_renew"} & set(changed):
            locked.next_period_start, locked.next_invoice_on = position_after(locked, first)
            fields += ["next_period_start", "next_invoice_on"]
            if locked.next_period_start is None and not locked.auto_renew and locked.status == ContractStatus.ACTIVE:
                locked.status = ContractStatus.ENDED
                fields.append("status")
        locked.save(update_fields=fields)
        audit_record(
            action="contract.updated",
            organization=locked.organization,
            actor=actor,
            target=locked,
            changes={name: [_plain(before[name]), _plain(after[name])] for name in changed},
        )
    return locked


def contract_line_add(*, contract: Contract, data: dict[str, Any], actor: User | None = None) -> ContractLine:
    """Add a line, priced from the next period not yet invoiced (invoiced periods are not charged again)."""
    line = line_check(contract.organization, data)
    with transaction.atomic():
        locked = _locked(contract)
        last = ContractLine.objects.for_org(locked.organization_id).filter(contract=locked).aggregate(Max("position"))
        line.contract = locked
        line.position = 0 if last["position__max"] is None else last["position__max"] + 1
        line.save()
        audit_record(
            action="contract.line_added",
            organization=locked.organization,
            actor=actor,
            target=locked,
            changes={"line": line.description, "pricing_model": line.pricing_model},
        )
    return line


def contract_line_revise(
    *,
    line: ContractLine,
    effective_on: date,
    quantity: Any = None,
    unit_price: Any = None,
    amount: Any = None,
    actor: User | None = None,
) -> tuple[ContractLine, ContractAdjustment | None]:
    """Change a line's quantity, unit price or amount from ``effective_on``: returns the line as it now is and the
    adjustment charged or credited for the rest of a period already invoiced (``contract_line_change``). A draft
    has invoiced nothing, so its line simply changes."""
    given = dict(zip(PRICE_FIELDS, (quantity, unit_price, amount), strict=True))
    errors: dict[str, list[str]] = {}
    changes = {}
    for name, value in given.items():
        if value is not None and (number := decimal_field(value, name, errors)) is not None:
            changes[name] = number
    if not changes and not errors:
        errors["quantity"] = ["Give a new quantity, unit price or amount."]
    if errors:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        contract = _locked(line.contract)
        if effective_on < contract.start_date or (contract.end_date is not None and effective_on >= contract.end_date):
            raise ServiceValidationError({"effective_on": ["Must be a day the contract runs."]})
        current = ContractLine.objects.for_org(contract.organization_id).select_for_update().get(pk=line.pk)
        before = {name: getattr(current, name) for name in changes}
        adjustment = None
        if contract.status == ContractStatus.DRAFT:
            for name, value in changes.items():
                setattr(current, name, value)
            line_check(contract.organization, {name: getattr(current, name) for name in LINE_FIELDS})
            current.save(update_fields=list(changes))
        else:
            adjustment = contract_line_change(line=current, effective_on=effective_on, **changes)
            current = ContractLine.objects.for_org(contract.organization_id).get(pk=line.pk)
        audit_record(
            action="contract.line_changed",
            organization=contract.organization,
            actor=actor,
            target=contract,
            changes={
                "line": current.description,
                "effective_on": str(effective_on),
                **{name: [_plain(before[name]), _plain(getattr(current, name))] for name in changes},
                **({"adjustment": _plain(adjustment.amount)} if adjustment is not None else {}),
            },
        )
    return current, adjustment
