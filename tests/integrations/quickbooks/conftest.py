"""QuickBooks fixtures: Intuit's endpoints recorded with ``responses`` (any request not recorded fails), time standing
still on Monday 2 March 2026 at noon in Sydney, a connected company with known tokens, and Acme's invoice to push."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import time_machine
from responses import RequestsMock

from billing.models import Invoice
from billing.services.invoices import invoice_create, invoice_finalize
from integrations.quickbooks.models import QboConnection
from integrations.quickbooks.providers import sandbox
from tenancy.crypto import encrypt
from tenancy.models import Organization

REALM = "9130355377531234"
API = f"https://sandbox-quickbooks.api.intuit.com/v3/company/{REALM}"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 12:00 in Sydney
ACCESS = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.access-1"
REFRESH = "AB11785162330tXdDgkGqPDFplx1m1a2b3c4d5e6f7g8h9"


@pytest.fixture(autouse=True)
def _quickbooks_settings(settings: Any) -> None:
    settings.QBO_PROVIDER = "quickbooks"
    settings.QBO_CLIENT_ID = "ABqbo-client-id"
    settings.QBO_CLIENT_SECRET = "qbo-client-secret"
    settings.QBO_ENVIRONMENT = "sandbox"
    settings.SITE_URL = "https://keel.example.com"
    sandbox.reset()


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def intuit() -> Iterator[RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def connection(db: Any, clock: Any) -> QboConnection:
    return QboConnection.objects.create(
        realm_id=REALM,
        access_token_encrypted=encrypt(ACCESS),
        refresh_token_encrypted=encrypt(REFRESH),
        access_expires_at=NOW + timedelta(minutes=50),
        refresh_expires_at=NOW + timedelta(days=100),
        connected_at=NOW - timedelta(days=1),
        payments_pulled_through=NOW - timedelta(hours=1),
        default_item_id="1",
    )


def issue(organization: Organization, *, tax_rate: str = "10.00", memo: str = "") -> Invoice:
    """An issued invoice: 12 users at 49.95 and 1.5 TB of backup at 33.33 (49.995, so 50.00 on the line); 649.40
    before tax, 64.94 of GST, 714.34 in all."""
    draft = invoice_create(
        organization=organization,
        lines=[
            {"description": "Managed services, 12 users", "quantity": "12", "unit_price": "49.95"},
            {"description": "Backup, 1.5 TB", "quantity": "1.5", "unit_price": "33.33"},
        ],
        issue_date=date(2026, 3, 2),
        tax_rate=Decimal(tax_rate),
        memo=memo,
    )
    invoice = invoice_finalize(invoice=draft, now=NOW)
    invoice.refresh_from_db()
    return invoice


def body(call: Any) -> Any:
    """A recorded request's JSON body, numbers as Decimal."""
    return json.loads(call.request.body, parse_float=Decimal)


def query_of(call: Any) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(call.request.url).query).items()}


def token_reply(access: str = "access-2", refresh: str = "refresh-2") -> dict[str, Any]:
    return {"token_type": "bearer", "access_token": access, "refresh_token": refresh, "expires_in": 3600,
            "x_refresh_token_expires_in": 8726400}  # fmt: skip


def fault(code: str, message: str, detail: str = "", kind: str = "ValidationFault") -> dict[str, Any]:
    return {"Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind},
            "time": "2026-03-01T17:00:00.000-08:00"}  # fmt: skip
