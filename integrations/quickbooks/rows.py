"""Asking for QuickBooks to be brought up to date: the ``QboSync`` rows a change needs, created due now (or made due
again), and their run queued once the caller's transaction commits. ``integrations.quickbooks.sync`` runs them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.quickbooks.models import QboSync, SyncKind, SyncState
from tenancy.models import Organization

logger = logging.getLogger(__name__)


def sync_enqueue(*, kind: str, organization_id: Any, object_id: Any, again: bool = False,
                 now: datetime | None = None) -> QboSync:  # fmt: skip
    """The object's row, created due now when new. ``again``: push it once more even if it was pushed or gave up
    (a fresh run of attempts); a row being pushed right now is left to finish."""
    now = now or timezone.now()
    row, created = QboSync.objects.get_or_create(
        kind=kind, object_id=str(object_id), defaults={"organization_id": organization_id, "next_attempt_at": now}
    )
    if again and not created:
        syncs_again(sync_ids=[row.pk], now=now)
        row.refresh_from_db()
    return row


def invoice_push_enqueue(*, organization_id: Any, invoice_id: Any) -> list[int]:
    """Rows for a finalized invoice, and for its organization's customer when it has none in QuickBooks yet; their
    ids in the order to push them."""
    ids = []
    customer_id = Organization.objects.filter(pk=organization_id).values_list("qbo_customer_id", flat=True).first()
    if customer_id is None:
        return []
    if not customer_id:
        ids.append(sync_enqueue(kind=SyncKind.CUSTOMER, organization_id=organization_id, object_id=organization_id).pk)
    ids.append(sync_enqueue(kind=SyncKind.INVOICE, organization_id=organization_id, object_id=invoice_id).pk)
    return ids


def run_after_commit(sync_ids: list[int]) -> None:
    """Push the rows once the caller's transaction commits (the beat picks them up should the broker be down)."""
    if not sync_ids:
        return

    def enqueue() -> None:
        from integrations.quickbooks.tasks import run_syncs

        try:
            run_syncs.delay(sync_ids)
        except Exception:
            logger.warning("could not queue QuickBooks sync of %s; the beat will run it", sync_ids, exc_info=True)

    transaction.on_commit(enqueue)


def syncs_again(
    *, sync_ids: Iterable[int], states: Iterable[str] | None = None, now: datetime | None = None
) -> list[int]:
    """Make rows due now with a fresh run of attempts (staff's "Retry now" on rows in ``states``, "Push again" on
    any); rows being pushed are left alone. Returns the ids reset."""
    now = now or timezone.now()
    rows = QboSync.objects.filter(pk__in=list(sync_ids)).exclude(state=SyncState.RUNNING)
    if states is not None:
        rows = rows.filter(state__in=list(states))
    ids = list(rows.values_list("pk", flat=True))
    QboSync.objects.filter(pk__in=ids).update(state=SyncState.PENDING, attempts=0, next_attempt_at=now, claimed_at=None)
    return ids


def receipt_push_enqueue(*, organization_id: Any, attempt_id: Any, invoice_id: Any) -> list[int]:
    """Rows to push a payment Keel received: its invoice's (and customer's) when QuickBooks does not have them yet,
    and the payment's."""
    rows = invoice_push_enqueue(organization_id=organization_id, invoice_id=invoice_id)
    receipt = sync_enqueue(kind=SyncKind.RECEIPT, organization_id=organization_id, object_id=attempt_id)
    return [*rows, receipt.pk]


def refund_object_id(attempt_id: Any, refunded_total: Decimal, amount: Decimal) -> str:
    """A refund row's ``object_id``: the payment, what had been refunded of it so far and what this refund gave back,
    in cents. Each refund of a payment raises that total, so each has a row of its own (a refund reported twice has
    one), and each row knows its own amount whatever order the rows are made or pushed in."""
    return f"{attempt_id}:{_cents(refunded_total)}:{_cents(amount)}"


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def refund_push_enqueue(*, organization_id: Any, attempt_id: Any, invoice_id: Any, refunded_total: Decimal,
                        amount: Decimal) -> list[int]:  # fmt: skip
    """Rows to push a refund Keel made of a payment: the payment's (and its invoice's and customer's) when QuickBooks
    does not have them yet, and the refund's."""
    rows = receipt_push_enqueue(organization_id=organization_id, attempt_id=attempt_id, invoice_id=invoice_id)
    refund = sync_enqueue(kind=SyncKind.REFUND, organization_id=organization_id,
                          object_id=refund_object_id(attempt_id, refunded_total, amount))  # fmt: skip
    return [*rows, refund.pk]


def refunds_waiting() -> list[int]:
    """Refund rows not yet pushed (those waiting for staff to choose the refund account among them), made due now."""
    waiting = QboSync.objects.filter(kind=SyncKind.REFUND, state__in=[SyncState.PENDING, SyncState.RETRYING])
    return syncs_again(sync_ids=waiting.values_list("pk", flat=True), states=[SyncState.PENDING, SyncState.RETRYING])
