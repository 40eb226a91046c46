"""The staff revenue page (``/admin/billing/revenue/``): the admin's guard (staff with a second factor and the invoice
view permission), the forecast table and MRR figures per currency, the SVG charts (no script, no styles), the ageing
table with each bucket's invoices, narrowing to one organization, the form's errors, the link from the billing admin
and query counts that do not grow with the rows.

The books are those of ``test_forecast_api`` (time stands still on Tuesday 10 March 2026, 10:00 in Sydney).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.staff_views import grid_step
from tests.billing.test_forecast_api import (  # noqa: F401 - fixtures
    acme_books,
    books,
    contract,
    d,
    flat,
    globex_books,
    initech_books,
    invoice,
    receivables,
)
from tests.factories import OrganizationFactory, UserFactory
from tests.helpers import admin_client

ROUTE = "staff-billing-revenue"
PAGE = "/admin/billing/revenue/"


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tuesday_morning")]


@pytest.fixture
def sam(db: Any) -> Any:
    return UserFactory(email="sam@keel.test", full_name="Sam Staff", is_staff=True, is_superuser=True)


def charts(body: str) -> dict[str, str]:
    """The page's charts by id (the admin draws icons as SVG too)."""
    found = re.finditer(r'<svg[^>]*\bid="([a-z]+-chart-[a-z]+)".*?</svg>', body, flags=re.DOTALL)
    return {match.group(1): match.group(0) for match in found}


def text(body: str) -> str:
    """The page's text with tags and runs of white space collapsed, to find figures in table cells."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


# -- the guard ---------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("books")
@pytest.mark.isolation(ROUTE)
def test_customers_and_staff_without_a_second_factor_are_sent_to_the_admin_sign_in(
    client_for, alice, carol, sam, client
):
    for visitor in (client, client_for(alice), client_for(carol), client_for(sam)):
        response = visitor.get(PAGE)
        assert response.status_code == 302
        assert response["Location"].startswith(f"/admin/login/?next={PAGE}")
        assert b"559.00" not in response.content and b"999.00" not in response.content


@pytest.mark.usefixtures("books")
def test_staff_without_the_invoice_permission_are_refused():
    clerk = UserFactory(email="clerk@keel.test", is_staff=True)
    staff = admin_client(clerk)
    assert staff.get(PAGE).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_invoice", content_type__app_label="billing"))
    assert staff.get(PAGE).status_code == 200


# -- the figures -------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("books", "receivables")
def test_staff_read_every_organizations_revenue_per_currency(sam):
    response = admin_client(sam).get(PAGE)
    assert response.status_code == 200
    report = response.context["report"]
    assert [part.currency for part in report.currencies] == ["AUD", "USD"]
    body = response.content.decode()
    words = text(body)
    # AUD: Acme and Initech. MRR 559.00, ARR 6708.00, Initech's 200.00 churned, 559.00 of 710.00 retained.
    assert "559.00 6708.00 200.00 78.7 %" in words
    # USD: Globex, new this year: no retention to show.
    assert "999.00 11988.00 0.00 -" in words
    # The forecast tables: July 2026 in AUD is 1510.00 of contracts, 78.00 of subscriptions, 28.33 of usage.
    assert "Jul 2026 1510.00 78.00 28.33 1616.33" in words
    assert "Mar 2026 0.00 0.00 0.00 0.00" in words  # USD: March was invoiced on the 1st
    assert "Total 5454.57 936.00 309.00 6699.57" in words  # AUD, 12 months
    assert "Total 10989.00 0.00 0.00 10989.00" in words  # USD
    # The MRR movements: Initech's churn at the end of August.
    assert "31 Aug 2025 510.00 0.00 0.00 0.00 200.00" in words


@pytest.mark.usefixtures("books")
def test_the_charts_are_inline_svg_without_scripts_or_styles(sam):
    body = admin_client(sam).get(PAGE).content.decode()
    drawn = charts(body)
    assert set(drawn) == {"forecast-chart-aud", "mrr-chart-aud", "forecast-chart-usd", "mrr-chart-usd"}
    bars = drawn["forecast-chart-aud"]
    # One titled bar per month, stacked from contracts, subscriptions and usage.
    assert bars.count("<g><title>") == 12
    assert "July 2026: 1616.33 AUD (contracts 1510.00, subscriptions 78.00, usage 28.33)" in bars
    # The tallest month, July, sets the scale: grid lines every 500 up to 2,000.
    assert ">2,000<" in bars and ">500<" in bars
    line = drawn["mrr-chart-aud"]
    assert line.count("<circle") == 12 and "<polyline" in line
    assert "31 Aug 2025: MRR 510.00 AUD" in line and "10 Mar 2026: MRR 559.00 AUD" in line
    for chart in drawn.values():
        assert "style=" not in chart and "<script" not in chart and "href" not in chart
    assert "<script>" not in body and "https://" not in body.split('id="content-main"')[1]


@pytest.mark.usefixtures("receivables")
def test_the_ageing_lists_each_buckets_invoices(sam):
    response = admin_client(sam).get(PAGE)
    body = response.content.decode()
    (aud, usd) = response.context["ageing"]
    assert [str(row["amount"]) for row in aud["rows"]] == ["160.00", "200.00", "290.00", "330.00", "180.00"]
    listed = {row["bucket"]: [item["aged"].invoice.number for item in row["invoices"]] for row in aud["rows"]}
    # Oldest due first: INV-8 91 days, INV-7 90, INV-6 61 (uncollectible), ...; INV-9 is not due for ten days.
    assert listed == {"current": [1, 9], "1-30": [3, 2], "31-60": [5, 4], "61-90": [7, 6], "90+": [8]}
    assert [item["aged"].days_overdue for row in aud["rows"] for item in row["invoices"]] == [
        0, -10, 30, 1, 60, 31, 90, 61, 91
    ]  # fmt: skip
    words = text(body)
    assert "160.00 200.00 290.00 330.00 180.00 1160.00" in words
    assert "INV-00006 (uncollectible) Acme Pty Ltd 8 Jan 2026 61 160.00" in words
    assert "INV-00002 Acme Pty Ltd 9 Mar 2026 1 100.00" in words  # 120.00 less 20.00 paid
    assert "75.00 25.00 0.00 0.00 0.00 100.00" in words  # Globex, on New York's today
    # Each invoice links to its admin page.
    first = aud["rows"][0]["invoices"][0]
    url = reverse("admin:billing_invoice_change", args=[first["aged"].invoice.pk])
    assert first["url"] == url and f'href="{url}">INV-00001</a>' in body
    assert usd["part"].total == sum(usd["part"].buckets.values())


@pytest.mark.usefixtures("books")
def test_staff_narrow_the_page_to_one_organization(sam, globex):
    response = admin_client(sam).get(f"{PAGE}?organization={globex.pk}&months=3")
    assert response.status_code == 200
    (usd,) = response.context["report"].currencies
    assert usd.currency == "USD" and [str(month.total) for month in usd.months] == ["0.00", "999.00", "999.00"]
    body = response.content.decode()
    assert "Globex Corporation: 3 months from March 2026" in text(body)
    assert "AUD" not in "".join(charts(body))


def test_bad_input_is_a_form_error(sam):
    staff = admin_client(sam)
    response = staff.get(f"{PAGE}?months=37&organization=nobody")
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"months", "organization"}
    assert "report" not in response.context
    assert "Ensure this value is less than or equal to 36." in response.content.decode()


def test_the_billing_admin_links_to_the_page(sam):
    response = admin_client(sam).get("/admin/billing/")
    assert response.status_code == 200
    assert f'href="{PAGE}"' in response.content.decode()


def test_grid_steps_are_round():
    steps = [grid_step(Decimal(value)) for value in ("1587.33", "400", "0", "9", "0.2", "1000000")]
    assert steps == [Decimal(step) for step in ("500", "100", "1", "2.5", "0.05", "250000")]


# -- queries -----------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("books", "receivables")
def test_the_page_queries_do_not_grow_with_the_rows(sam, django_assert_max_num_queries):
    staff = admin_client(sam)
    staff.get(PAGE)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(PAGE).status_code == 200
        return len(captured)

    few = count()
    for index in range(6):
        organization = OrganizationFactory(currency="NZD" if index % 2 else "AUD", timezone="Pacific/Auckland")
        contract(organization, f"Contract {index}", flat("100.00"), start_date=d("2025-01-01"), timing="ADVANCE",
                 next_period_start=d("2026-04-01"))  # fmt: skip
        invoice(organization, 1, d("2026-02-01"), "10.00")
    # The same queries for six more organizations, in two currencies, with their contracts and invoices.
    assert count() == few
    # The user and the second factor; the forecast's zones and currencies, contracts, their lines, subscriptions and
    # usage; the ageing's zones and currencies, invoices and their credit notes; the form's organizations; the
    # session's save (a savepoint, the UPDATE, its release).
    with django_assert_max_num_queries(14):
        staff.get(PAGE)
