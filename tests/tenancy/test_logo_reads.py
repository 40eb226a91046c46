"""An organization's logo (up to 256 KB, kept in its row) is read where it is shown, never on the way to something
else: not when an API key is looked up, nor when X-Organization picks the organization, nor for each row of the
ticket and invoice lists, which carry their organization."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from billing.services.invoices import invoice_create
from tenancy.models import Organization
from tickets.services import ticket_create

pytestmark = pytest.mark.django_db

SCOPES = ("read", "tickets:read", "billing:read")
LOGO_COLUMN = '."brand_logo"'  # the column itself: brand_logo_type and brand_logo_version are quoted apart


def png_logo() -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (300, 100), "#1f4e79").save(buffer, "PNG")
    return buffer.getvalue()


def reads_logo(captured: CaptureQueriesContext) -> bool:
    return any(LOGO_COLUMN in query["sql"] for query in captured.captured_queries)


@pytest.fixture
def acme_rows(acme: Organization, alice: Any) -> None:
    Organization.objects.filter(pk=acme.pk).update(
        brand_logo=png_logo(), brand_logo_type="image/png", brand_logo_version="v1"
    )
    for n in range(3):
        ticket_create(organization=acme, subject=f"Printer {n} jammed", requester=alice)
        invoice_create(organization=acme, lines=[{"description": "Onsite hours", "quantity": "2", "unit_price": "150"}])


@pytest.mark.usefixtures("acme_rows")
@pytest.mark.parametrize("path", ["/api/tickets/", "/api/invoices/"])
@pytest.mark.parametrize("owner", ["organization", "partner"])
def test_the_lists_carry_the_organization_without_its_logo(
    path: str,
    owner: str,
    acme: Organization,
    summit: Any,
    api: Callable[..., Any],
    api_key_for: Callable[..., Any],
    settings: Any,
) -> None:
    settings.API_LIST_CACHE_SECONDS = 0  # every request builds its list
    if owner == "organization":
        client = api(api_key_for(organization=acme, scopes=SCOPES)[1])
    else:
        client = api(api_key_for(partner=summit, scopes=SCOPES)[1], organization="acme")
    client.get(path)  # the key's first use of the minute records it

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)

    assert response.status_code == 200, response.content
    assert [row["organization"] for row in response.json()["results"]] == ["acme"] * 3
    assert captured.captured_queries, "no queries captured"
    assert not reads_logo(captured)


@pytest.mark.usefixtures("acme_rows")
def test_the_invoice_pdf_still_draws_the_logo(acme: Organization, api: Callable[..., Any], api_key_for: Any) -> None:
    client = api(api_key_for(organization=acme, scopes=SCOPES)[1])
    invoice = client.get("/api/invoices/").json()["results"][0]

    response = client.get(f"/api/invoices/{invoice['id']}/pdf")

    assert response.status_code == 200, response.content
    assert b"/Subtype /Image" in response.content
