"""Fixtures for notifications: a frozen clock, a clean SMS sandbox, an Acme sending number, dan (Acme manager),
and a helper that runs ``notify`` and everything it queues on commit (Celery is eager in tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.db import transaction

from notifications.models import Notice
from notifications.services import notify
from sms.models import SendingNumber
from sms.providers.sandbox import SandboxProvider
from tenancy.models import Organization, Role, User
from tests.factories import MembershipFactory, UserFactory
from tests.quotes.conftest import staff, staff_client  # noqa: F401 (the staff admin's fixtures)

NOW = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)  # 12:00 in Sydney
ACME_NUMBER = "+61491570001"


@pytest.fixture(autouse=True)
def _sandbox() -> Iterator[None]:
    SandboxProvider.reset()
    yield
    SandboxProvider.reset()


@pytest.fixture
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def number(acme: Organization) -> SendingNumber:
    return SendingNumber.objects.create(organization=acme, phone_e164=ACME_NUMBER, warmup_start=date(2026, 1, 1))


@pytest.fixture
def dan(acme: Organization) -> User:
    """A manager at Acme."""
    user = UserFactory(email="dan@acme.test", full_name="Dan Manager", phone="0412 345 678")
    MembershipFactory(user=user, organization=acme, role=Role.MANAGER)
    return user


@pytest.fixture
def send(django_capture_on_commit_callbacks: Any) -> Callable[..., Notice]:
    """``notify`` in a transaction, with the sends it queues on commit run (eagerly) before it returns."""

    def run(**kwargs: Any) -> Notice:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return notify(**kwargs)

    return run
