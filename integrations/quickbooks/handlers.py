"""What Keel's events ask of QuickBooks (registered with the outbox when the app is ready).

Only while a QuickBooks company is connected (or waiting to be reconnected, when the rows wait for it) does an event
get a delivery at all: a Keel that never connected QuickBooks keeps no rows for it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from events.models import Event
from events.registry import subscribe
from integrations.quickbooks.models import ConnectionStatus, QboConnection, QboSync, SyncKind
from integrations.quickbooks.rows import (
    invoice_push_enqueue,
    receipt_push_enqueue,
    refund_push_enqueue,
    run_after_commit,
    sync_enqueue,
)
from integrations.quickbooks.sync import SOURCE
from tenancy.models import Organization


def _connected(event: Event) -> bool:
    return event.organization_id is not None and (
        QboConnection.objects.exclude(status=ConnectionStatus.DISCONNECTED).exists()
    )


@subscribe("invoice.finalized", name="integrations.quickbooks.invoice_finalized", when=_connected)
def invoice_finalized(event: Event) -> None:
    """Push the issued invoice, and its organization as a customer first when QuickBooks does not know it yet."""
    invoice_id = event.payload.get("id")
    if event.organization_id is None or not invoice_id:
        return
    run_after_commit(invoice_push_enqueue(organization_id=event.organization_id, invoice_id=invoice_id))


@subscribe("organization.updated", name="integrations.quickbooks.organization_updated", when=_connected)
def organization_updated(event: Event) -> None:
    """A renamed organization that is a QuickBooks customer is renamed there too; new invoice addresses become its
    email there."""
    changes = event.payload.get("changes") or {}
    if not {"name", "invoice_emails"} & set(changes) or event.organization_id is None:
        return
    known = Organization.objects.filter(pk=event.organization_id).exclude(qbo_customer_id="").exists()
    if known:
        row = sync_enqueue(kind=SyncKind.CUSTOMER, organization_id=event.organization_id,
                           object_id=event.organization_id, again=True)  # fmt: skip
        run_after_commit([row.pk])


@subscribe("payment.succeeded", name="integrations.quickbooks.payment_succeeded", when=_connected)
def payment_succeeded(event: Event) -> None:
    """A payment Keel received (a card charge, a transfer recorded by staff) is applied to its invoice in QuickBooks;
    one QuickBooks received itself is there already."""
    attempt_id, invoice_id = event.payload.get("id"), event.payload.get("invoice")
    if event.organization_id is None or not attempt_id or not invoice_id or event.payload.get("source") == SOURCE:
        return
    run_after_commit(receipt_push_enqueue(organization_id=event.organization_id, attempt_id=attempt_id,
                                          invoice_id=invoice_id))  # fmt: skip


@subscribe("payment.refunded", name="integrations.quickbooks.payment_refunded", when=_connected)
def payment_refunded(event: Event) -> None:
    """A refund of a payment Keel received (made in Stripe) is recorded in QuickBooks as a refund receipt, after the
    payment it gives back."""
    payload = event.payload
    attempt_id, invoice_id = payload.get("id"), payload.get("invoice")
    try:
        amount, total = Decimal(str(payload.get("amount"))), Decimal(str(payload.get("total_refunded")))
    except InvalidOperation:
        return
    if event.organization_id is None or not attempt_id or not invoice_id or not amount.is_finite() or amount <= 0:
        return
    run_after_commit(refund_push_enqueue(organization_id=event.organization_id, attempt_id=attempt_id,
                                         invoice_id=invoice_id, refunded_total=total, amount=amount))  # fmt: skip


@subscribe("invoice.voided", name="integrations.quickbooks.invoice_voided", when=_connected)
def invoice_voided(event: Event) -> None:
    """A voided invoice QuickBooks has (or is about to have) is voided there too."""
    invoice_id = event.payload.get("id")
    if event.organization_id is None or not invoice_id:
        return
    if QboSync.objects.filter(kind=SyncKind.INVOICE, object_id=str(invoice_id)).exists():
        row = sync_enqueue(kind=SyncKind.INVOICE, organization_id=event.organization_id, object_id=invoice_id,
                           again=True)  # fmt: skip
        run_after_commit([row.pk])
