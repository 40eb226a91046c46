"""A fresh database has a price book: the data migration seeds the plans and add-ons."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quotes.models import AddOn, AddOnKind, Plan

pytestmark = pytest.mark.django_db


def test_fresh_database_has_a_price_book():
    plans = {plan.tier: plan for plan in Plan.objects.all()}
    assert set(plans) == {"core_plus", "premium", "enterprise"}
    assert plans["core_plus"].base_monthly == Decimal("499.00")
    assert plans["premium"].base_monthly == Decimal("1299.00")
    assert plans["enterprise"].custom_quote
    assert {plan.currency for plan in plans.values()} == {"AUD"}
    sms = {add_on.sms_credits for add_on in AddOn.objects.filter(kind=AddOnKind.SMS_PACK)}
    assert sms == {250, 1000}
    assert AddOn.objects.filter(kind=AddOnKind.BACKUP_TB).exists()
    assert AddOn.objects.filter(kind=AddOnKind.STORAGE).exists()
