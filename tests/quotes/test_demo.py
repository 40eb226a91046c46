"""Demo quotes: every status, one accepted quote per demo organization, and the same data when run again."""

from __future__ import annotations

import pytest

from qualification import demo as qualification_demo
from quotes import demo
from quotes.models import Quote, QuoteStatus
from tenancy import demo as tenancy_demo
from tenancy.models import Organization

pytestmark = pytest.mark.django_db


def test_demo_quotes_cover_every_status_and_are_idempotent():
    tenancy_demo.seed()
    qualification_demo.seed()
    first = demo.seed()
    count = Quote.objects.count()
    again = demo.seed()
    assert Quote.objects.count() == count
    assert first == again
    assert set(Quote.objects.values_list("status", flat=True)) == set(QuoteStatus.values)
    for org in Organization.objects.all():
        quote = Quote.objects.get(organization=org)
        assert quote.status == QuoteStatus.ACCEPTED
        assert quote.tier == org.tier.lower()
        assert quote.currency == org.currency
    assert Quote.objects.filter(email="cio@megacorp.test", tier="enterprise", is_custom=True).exists()
    assert not any(line.startswith("(skipped") for line in first), first
