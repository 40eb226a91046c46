"""Real threads against PostgreSQL: a quote is sent, and expired, exactly once however many workers race."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from events.models import Event
from quotes import services
from quotes.models import Quote, QuoteStatus
from tests.helpers import race
from tests.quotes.conftest import PROSPECT

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]

WORKERS = 8


def race_all(work: Callable[[], Any]) -> list[Any]:
    return race(work, workers=WORKERS)


def test_concurrent_sends_email_once(price_book, prospect):
    quote = services.quote_create(email=PROSPECT, tier="core_plus", configuration={"users": 1, "devices": 1})
    results = race_all(lambda: services.quote_send(quote=Quote.objects.get(pk=quote.pk)))
    assert sorted(results, key=str) == [False] * (WORKERS - 1) + [True]
    assert len(mail.outbox) == 1
    assert Event.objects.filter(type="quote.sent").count() == 1
    assert Quote.objects.get(pk=quote.pk).status == QuoteStatus.SENT


def test_concurrent_expiry_runs_expire_each_quote_once(price_book, prospect, monkeypatch):
    monkeypatch.setattr(services, "EXPIRY_BATCH", 3)
    for _ in range(20):
        services.quote_create(email=PROSPECT, tier="core_plus", configuration={"users": 1, "devices": 1})
    Quote.objects.update(expires_at=timezone.now() - timedelta(hours=1))
    results = race(services.quotes_expire)
    assert all(isinstance(count, int) for count in results), results
    assert sum(results) == 20
    assert Quote.objects.filter(status=QuoteStatus.EXPIRED).count() == 20
    assert Event.objects.filter(type="quote.expired").count() == 20
