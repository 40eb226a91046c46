"""The contract billing demo (``billing.demo_contracts``, part of ``manage.py seed_demo``): contracts of every pricing
model and cycle, invoices in every status, failed payment attempts; running it again creates nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from billing import demo_contracts
from billing.models import Contract, ContractLine, Cycle, Invoice, InvoiceStatus, PaymentAttempt, PricingModel
from tenancy import demo as tenancy_demo

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("now", [datetime(2026, 11, 21, 3, tzinfo=UTC), datetime(2027, 3, 1, 13, tzinfo=UTC)])
def test_every_model_cycle_and_status_once(now):
    with time_machine.travel(now, tick=False):
        tenancy_demo.seed()
        demo_contracts.seed()
        counts = (Contract.objects.count(), Invoice.objects.count(), PaymentAttempt.objects.count())
        assert set(ContractLine.objects.values_list("pricing_model", flat=True)) == set(PricingModel.values)
        assert set(Contract.objects.values_list("cycle", flat=True)) == set(Cycle.values)
        assert set(Invoice.objects.values_list("status", flat=True)) == set(InvoiceStatus.values)
        failed = PaymentAttempt.objects.filter(status="FAILED")
        assert failed.count() >= 2 and not failed.filter(hard_decline=True).exists()
        overdue = Invoice.objects.filter(status="OPEN", due_date__lt=now.date())
        assert overdue.exists()
        demo_contracts.seed()
        assert (Contract.objects.count(), Invoice.objects.count(), PaymentAttempt.objects.count()) == counts
