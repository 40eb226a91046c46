"""Keel's customers and invoices as QuickBooks Online entities, and QuickBooks' payments as Keel amounts. Pure: plain
values in, plain values out.

A customer is the organization: ``DisplayName`` (unique in QuickBooks across customers, vendors and employees) is its
name without the characters QuickBooks refuses. An invoice keeps Keel's number as ``DocNumber`` and Keel's dates;
each line becomes a ``SalesItemLineDetail`` line on one configured product/service item with Keel's quantity, unit
price and amount (already rounded to the cent). Tax is kept simple: Keel has worked it out, so it is one more line
(labelled like "GST 10%") on the tax item, and ``GlobalTaxCalculation`` is ``NotApplicable`` so that QuickBooks adds
no tax of its own. The QuickBooks invoice totals exactly what Keel's does.

A payment Keel received (a card charge it collected, or a transfer staff recorded in Keel) becomes a QuickBooks
payment applied to the invoice, its ``PaymentRefNum`` ``KEEL-<invoice number>-<attempt>``: that is how Keel finds it
again after a lost answer, and how the pull of QuickBooks' payments knows not to record it in Keel a second time. A
refund Keel made of such a payment becomes a refund receipt (``DocNumber`` ``KEEL-R<sync row>``) split as the invoice
was: its share of tax on the tax item, the rest on the service item.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
RECEIPT_PREFIX = "KEEL-"  # PaymentRefNum of the payments Keel pushes
REFUND_PREFIX = "KEEL-R"  # DocNumber of the refund receipts Keel pushes
NAME_LIMIT = 100
DOC_NUMBER_LIMIT = 21
MEMO_LIMIT = 1000
_REFUSED_IN_NAMES = re.compile(r"[:\t\r\n]+")


@dataclass(frozen=True)
class LineDoc:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class InvoiceDoc:
    keel_id: str
    number: str
    issue_date: date
    due_date: date
    currency: str
    lines: list[LineDoc]
    tax: Decimal
    tax_label: str
    tax_rate: Decimal
    memo: str = ""


@dataclass(frozen=True)
class ReceiptDoc:
    """A payment Keel received, to be applied to its invoice in QuickBooks."""

    reference: str  # PaymentRefNum: receipt_reference()
    received_on: date
    amount: Decimal
    currency: str
    note: str


@dataclass(frozen=True)
class RefundDoc:
    """A refund Keel made of a payment it received, to be recorded in QuickBooks as a refund receipt."""

    reference: str  # DocNumber: refund_reference()
    refunded_on: date
    amount: Decimal  # what went back, tax included
    tax: Decimal  # the share of ``amount`` that was tax
    tax_label: str
    tax_rate: Decimal
    currency: str
    note: str


@dataclass(frozen=True)
class PaymentPart:
    """What a QuickBooks payment paid of one invoice."""

    invoice_id: str  # QuickBooks' invoice id
    amount: Decimal


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def display_name(name: str) -> str:
    """The organization's name as QuickBooks accepts it: no colons, tabs or line breaks, at most 100 characters."""
    return " ".join(_REFUSED_IN_NAMES.sub(" - ", name).split())[:NAME_LIMIT].strip()


def customer_body(*, name: str, email: str, currency: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "DisplayName": display_name(name),
        "CompanyName": display_name(name),
        "CurrencyRef": {"value": currency},
    }
    if email:
        body["PrimaryEmailAddr"] = {"Address": email}
    return body


def customer_update(body: dict[str, Any], *, qbo_id: str, sync_token: str) -> dict[str, Any]:
    """A sparse update of an existing customer: its currency is fixed once it has transactions, so it is left out."""
    return {key: value for key, value in body.items() if key != "CurrencyRef"} | {"Id": qbo_id, "SyncToken": sync_token}


def _line(description: str, item_id: str, quantity: Decimal, unit_price: Decimal, amount: Decimal) -> dict[str, Any]:
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": cents(amount),
        "Description": description,
        "SalesItemLineDetail": {"ItemRef": {"value": item_id}, "Qty": quantity.normalize(), "UnitPrice": unit_price},
    }


def tax_description(label: str, rate: Decimal) -> str:
    return f"{label or 'Tax'} {rate.normalize():f}%"


def invoice_body(doc: InvoiceDoc, *, customer_id: str, item_id: str, tax_item_id: str = "") -> dict[str, Any]:
    lines = [_line(line.description, item_id, line.quantity, line.unit_price, line.amount) for line in doc.lines]
    if doc.tax:
        tax = cents(doc.tax)
        lines.append(_line(tax_description(doc.tax_label, doc.tax_rate), tax_item_id or item_id, Decimal(1), tax, tax))
    body: dict[str, Any] = {
        "DocNumber": doc.number[:DOC_NUMBER_LIMIT],
        "TxnDate": doc.issue_date.isoformat(),
        "DueDate": doc.due_date.isoformat(),
        "CustomerRef": {"value": customer_id},
        "CurrencyRef": {"value": doc.currency},
        "GlobalTaxCalculation": "NotApplicable",
        "Line": lines,
        "PrivateNote": f"Keel invoice {doc.keel_id}",
    }
    if doc.memo:
        body["CustomerMemo"] = {"value": doc.memo[:MEMO_LIMIT]}
    return body


def receipt_reference(invoice_number: int, attempt_number: int) -> str:
    """The ``PaymentRefNum`` of a payment Keel pushes: unique per customer (invoice numbers are per organization)."""
    return f"{RECEIPT_PREFIX}{invoice_number}-{attempt_number}"[:DOC_NUMBER_LIMIT]


def receipt_body(doc: ReceiptDoc, *, customer_id: str, invoice_id: str) -> dict[str, Any]:
    amount = cents(doc.amount)
    return {
        "CustomerRef": {"value": customer_id},
        "CurrencyRef": {"value": doc.currency},
        "TotalAmt": amount,
        "TxnDate": doc.received_on.isoformat(),
        "PaymentRefNum": doc.reference,
        "PrivateNote": doc.note[:MEMO_LIMIT],
        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}],
    }


def refund_reference(sync_id: int) -> str:
    """The ``DocNumber`` of a refund receipt Keel pushes: its sync row's id, unique and fixed before the first try."""
    return f"{REFUND_PREFIX}{sync_id}"[:DOC_NUMBER_LIMIT]


def refund_body(doc: RefundDoc, *, customer_id: str, item_id: str, tax_item_id: str, account_id: str) -> dict[str, Any]:
    """A refund receipt paid from ``account_id``: what went back less its tax on the service item, its tax on the tax
    item (as the invoice was booked), so the receipt totals exactly the refund."""
    amount, tax = cents(doc.amount), cents(doc.tax)
    lines = [_line("Refund", item_id, Decimal(1), amount - tax, amount - tax)]
    if tax:
        lines.append(_line(f"Refund of {tax_description(doc.tax_label, doc.tax_rate)}", tax_item_id or item_id,
                           Decimal(1), tax, tax))  # fmt: skip
    return {
        "DocNumber": doc.reference,
        "TxnDate": doc.refunded_on.isoformat(),
        "CustomerRef": {"value": customer_id},
        "CurrencyRef": {"value": doc.currency},
        "DepositToAccountRef": {"value": account_id},
        "GlobalTaxCalculation": "NotApplicable",
        "PrivateNote": doc.note[:MEMO_LIMIT],
        "Line": lines,
    }


def voided(invoice: dict[str, Any]) -> bool:
    """A QuickBooks invoice already voided: QuickBooks zeroes its total and notes "Voided"."""
    total = _amount(invoice.get("TotalAmt"))
    return total == 0 and "Voided" in str(invoice.get("PrivateNote") or "")


def pushed_by_keel(payment: dict[str, Any]) -> bool:
    """A QuickBooks payment Keel made itself from a payment it received (so already recorded in Keel)."""
    return str(payment.get("PaymentRefNum") or "").startswith(RECEIPT_PREFIX)


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return cents(amount) if amount.is_finite() else None


def payment_parts(payment: dict[str, Any]) -> Iterator[PaymentPart]:
    """Each invoice a QuickBooks payment pays and how much of it (lines applied to other kinds of transaction, such as
    credit memos, and lines of nothing are left out)."""
    for line in payment.get("Line") or []:
        if not isinstance(line, dict):
            continue
        amount = _amount(line.get("Amount"))
        if amount is None or amount <= 0:
            continue
        # A line applies its amount to one transaction; the first invoice it names is the one paid.
        invoices = [linked for linked in line.get("LinkedTxn") or [] if isinstance(linked, dict)
                    and linked.get("TxnType") == "Invoice" and linked.get("TxnId")]  # fmt: skip
        if invoices:
            yield PaymentPart(str(invoices[0]["TxnId"]), amount)
