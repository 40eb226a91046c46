"""The revenue forecast (``GET /api/billing/forecast``) and the ageing of receivables (``GET /api/billing/ageing``),
end to end from database rows: contracts of every kind, Stripe subscriptions and metered usage to the money of each
month to the cent; the MRR metrics; the ageing buckets at their edges with credit notes and partial payments; who
sees which organizations (staff, organization and partner keys, customers by role); scopes; ``months`` checked;
query counts that do not grow with the rows.

Time stands still on Tuesday 10 March 2026, 10:00 in Sydney: Acme's and Initech's (Perth, 07:00) today is 10 March,
Globex's (New York, 19:00 the day before) is 9 March. Acme and Initech bill in AUD, Globex in USD.

The books (``books``):
- Acme: "Managed IT", monthly in advance from 1 Jan 2025, 310.00 plus API calls beyond 1000 at 0.02, invoiced up to
  March; "Backup", quarterly in arrears from 1 Feb 2025 (quarters Feb, May, Aug, Nov) until 15 Oct 2026, 10 devices
  at 30.00 plus storage beyond 300 GB a quarter at 0.50, invoiced up to January; "Security", annual in advance from
  1 Jul 2024, 1200.00, renewing for 12 months at its end on 1 Jul 2026; a draft contract (never revenue); a Stripe
  subscription of 49.00 a month since 15 Sep 2025, next charged on 25 March.
- Initech: a monthly contract of 200.00 that ended on 1 Aug 2025; a Stripe subscription trialing until 20 March.
- Globex: a monthly contract of 999.00 from 1 Jun 2025, in advance, invoiced up to March.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing.models import (
    Contract,
    ContractLine,
    ContractStatus,
    CreditNote,
    CreditNoteKind,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Subscription,
    SubscriptionStatus,
    UsageRecord,
)
from billing.services.planning import position_after
from tenancy.models import Organization, Tier
from tests.billing.api_support import SYDNEY, count_queries, session

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tuesday_morning")]

FORECAST = "/api/billing/forecast"
AGEING = "/api/billing/ageing"
PERTH = ZoneInfo("Australia/Perth")
NEW_YORK = ZoneInfo("America/New_York")
READ_SCOPES = ("read", "billing:read")


def d(text: str) -> date:
    return date.fromisoformat(text)


# -- the books ---------------------------------------------------------------------------------------------------------


def flat(amount: str, description: str = "Managed services") -> dict[str, Any]:
    return {"description": description, "pricing_model": "FLAT", "amount": Decimal(amount)}


def metered(metric: str, unit_price: str, included: str) -> dict[str, Any]:
    return {
        "description": metric.replace("_", " ").capitalize(),
        "pricing_model": "USAGE",
        "metric": metric,
        "unit_price": Decimal(unit_price),
        "included_quantity": Decimal(included),
    }


def contract(organization: Organization, name: str, *lines: dict[str, Any], **terms: Any) -> Contract:
    """A contract as the rows stand after invoicing up to ``next_period_start``, and its lines."""
    values: dict[str, Any] = {"status": ContractStatus.ACTIVE, "anchor_day": 1, "cycle": "MONTHLY", **terms}
    made = Contract(organization=organization, name=name, **values)
    made.next_period_start, made.next_invoice_on = position_after(made, made.next_period_start)
    made.save()
    for position, line in enumerate(lines):
        ContractLine.objects.create(organization=organization, contract=made, position=position, **line)
    return made


def subscription(organization: Organization, price: str, **fields: Any) -> Subscription:
    values: dict[str, Any] = {
        "stripe_subscription_id": f"sub_{organization.slug}_{price}",
        "stripe_customer_id": f"cus_{organization.slug}",
        "tier": Tier.CORE_PLUS,
        "plan_name": "Core+",
        "status": SubscriptionStatus.ACTIVE,
        "currency": organization.currency,
        **fields,
    }
    return Subscription.objects.create(organization=organization, price_monthly=Decimal(price), **values)


def usage(made: Contract, metric: str, quantity: int | str, at: datetime) -> None:
    UsageRecord.objects.create(
        organization=made.organization,
        contract=made,
        metric=metric,
        quantity=Decimal(quantity),
        recorded_at=at,
        idempotency_key=f"{metric}-{at.isoformat()}-{quantity}",
    )


def sydney(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SYDNEY)


@pytest.fixture
def acme_books(acme: Organization) -> dict[str, Contract]:
    managed = contract(
        acme,
        "Managed IT",
        flat("310.00"),
        metered("api_calls", "0.02", "1000"),
        start_date=d("2025-01-01"),
        timing="ADVANCE",
        next_period_start=d("2026-04-01"),
    )
    backup = contract(
        acme,
        "Backup",
        {"description": "Devices", "pricing_model": "PER_UNIT", "unit_price": Decimal("30.00"), "quantity": 10},
        metered("storage_gb", "0.50", "300"),
        cycle="QUARTERLY",
        start_date=d("2025-02-01"),
        end_date=d("2026-10-15"),
        timing="ARREARS",
        next_period_start=d("2026-02-01"),
    )
    security = contract(
        acme,
        "Security",
        flat("1200.00", "Security suite"),
        cycle="ANNUAL",
        start_date=d("2024-07-01"),
        end_date=d("2026-07-01"),
        auto_renew=True,
        renewal_term_months=12,
        timing="ADVANCE",
        next_period_start=d("2026-07-01"),
    )
    contract(acme, "Not signed yet", flat("5000.00"), status=ContractStatus.DRAFT, start_date=d("2026-01-01"))
    subscription(acme, "49.00", current_period_end=sydney(2026, 3, 25, 9), created_at=sydney(2025, 9, 15, 12))
    # API calls: November is more than three months back, March is the current month; the last minutes of February
    # in Sydney are already March in UTC and still count for February, the first of March's do not.
    for at, quantity in [
        (sydney(2025, 11, 20, 12), 9999),
        (sydney(2025, 12, 5, 12), 1500),
        (sydney(2026, 1, 5, 12), 2000),
        (sydney(2026, 2, 10, 12), 2999),
        (sydney(2026, 2, 28, 23, 30), 1),
        (sydney(2026, 3, 1, 0, 30), 5000),
    ]:
        usage(managed, "api_calls", quantity, at)
    for at, quantity in [(sydney(2025, 12, 9), 100), (sydney(2026, 1, 9), 100), (sydney(2026, 2, 9), 130)]:
        usage(backup, "storage_gb", quantity, at)
    return {"managed": managed, "backup": backup, "security": security}


@pytest.fixture
def initech_books(initech: Organization) -> None:
    contract(
        initech,
        "Initech support",
        flat("200.00"),
        status=ContractStatus.ENDED,
        start_date=d("2024-01-01"),
        end_date=d("2025-08-01"),
        timing="ADVANCE",
    )
    trial_end = datetime(2026, 3, 20, 9, tzinfo=PERTH)
    subscription(
        initech,
        "29.00",
        status=SubscriptionStatus.TRIALING,
        trial_end=trial_end,
        current_period_end=trial_end,
        created_at=datetime(2026, 3, 6, 9, tzinfo=PERTH),
    )


@pytest.fixture
def globex_books(globex: Organization) -> None:
    contract(
        globex,
        "Globex payroll hosting",
        flat("999.00"),
        start_date=d("2025-06-01"),
        timing="ADVANCE",
        next_period_start=d("2026-04-01"),
    )


@pytest.fixture
def books(acme_books: Any, initech_books: Any, globex_books: Any) -> None:
    """Everyone's books."""


def fetch(client: Any, path: str, **headers: Any) -> dict[str, Any]:
    response = client.get(path, **headers)
    assert response.status_code == 200, response.content
    return response.json()


def by_currency(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {part["currency"]: part for part in body["currencies"]}


def column(part: dict[str, Any], name: str) -> list[str]:
    return [month[name] for month in part["forecast"]]


# The 12 months from March 2026 of Acme's books.
ACME_CONTRACTS = [
    "0.00",  # Mar: the month's period was invoiced on the 1st
    "310.00",
    "610.00",  # May: + Backup's Feb-Apr quarter, in arrears
    "310.00",
    "1510.00",  # Jul: + Security's renewed year, in advance
    "610.00",  # Aug: + Backup's May-Jul quarter
    "310.00",
    "554.57",  # Oct: + Backup's last piece, 1 Aug-14 Oct: 300.00 x 75 / 92 days, invoiced on its end
    *["310.00"] * 4,
]
# API calls: Dec 500, Jan 1000, Feb 2000 beyond the 1000 included at 0.02: 10 + 20 + 40 = 70 over 3 months.
# Storage: 100, 100, 130 GB a month, priced as quarters of 300, 300 and 390 GB: 0, 0 and 45.00 a quarter (90 GB
# beyond the 300 included at 0.50), or 15.00 a month: 15.00 over 3 months.
ACME_USAGE = [
    "20.11",  # Mar 10-31, 22 of 31 days: 70 x 22 / 93 = 16.56, plus 15 x 22 / 93 = 3.55
    *["28.33"] * 6,  # 23.33 + 5.00
    "25.59",  # Oct: 23.33, plus Backup's 1-14 Oct: 15 x 14 / 93 = 2.26
    *["23.33"] * 4,  # Backup has ended
]
ACME_TOTALS = ["69.11", "387.33", "687.33", "387.33", "1587.33", "687.33", "387.33", "629.16", *["382.33"] * 4]


# -- the forecast ------------------------------------------------------------------------------------------------------


def test_the_forecast_of_an_organization_to_the_cent(acme_key, acme_books):
    body = fetch(acme_key, FORECAST)
    assert (body["first_month"], body["months"]) == ("2026-03-01", 12)
    (aud,) = body["currencies"]
    assert aud["currency"] == "AUD"
    assert [month["month"] for month in aud["forecast"]] == [
        f"{year}-{month:02d}-01" for year, month in [*((2026, m) for m in range(3, 13)), (2027, 1), (2027, 2)]
    ]
    assert column(aud, "contracts") == ACME_CONTRACTS
    assert column(aud, "subscriptions") == ["49.00"] * 12  # charged on the 25th, from this month on
    assert column(aud, "usage") == ACME_USAGE
    assert column(aud, "total") == ACME_TOTALS
    assert aud["totals"] == {"contracts": "5454.57", "subscriptions": "588.00", "usage": "309.00", "total": "6351.57"}


def test_the_metrics_of_an_organization(acme_key, acme_books):
    metrics = fetch(acme_key, FORECAST)["currencies"][0]["metrics"]
    # Monthly 310.00, the quarter's 300.00 / 3, the year's 1200.00 / 12 and the subscription's 49.00.
    assert (metrics["mrr"], metrics["arr"], metrics["churned_mrr"]) == ("559.00", "6708.00", "0.00")
    # 559.00 now of the 510.00 a year ago (the subscription came later, and counts): 109.6 %.
    assert metrics["net_revenue_retention"] == "109.6"
    rows = metrics["by_month"]
    assert [row["date"] for row in rows] == [
        "2025-04-30", "2025-05-31", "2025-06-30", "2025-07-31", "2025-08-31", "2025-09-30", "2025-10-31",
        "2025-11-30", "2025-12-31", "2026-01-31", "2026-02-28", "2026-03-10",
    ]  # fmt: skip
    assert [row["mrr"] for row in rows] == ["510.00"] * 5 + ["559.00"] * 7
    assert rows[5] == {
        "date": "2025-09-30",
        "mrr": "559.00",
        "new_mrr": "0.00",
        "expansion_mrr": "49.00",
        "contraction_mrr": "0.00",
        "churned_mrr": "0.00",
    }


def test_past_months_count_at_the_price_invoiced_then(acme_key, acme):
    """Managed IT costs 310.00 today, but was invoiced at 250.00 a month from April to August 2025 and 300.00 from
    September; December's invoice (999.00) was voided. Each month-end counts at the price invoiced for its month (the
    voided month, and March 2025 before the first invoice, at the next one invoiced); today at today's price."""
    managed = contract(acme, "Managed IT", flat("310.00"), start_date=d("2025-01-01"), timing="ADVANCE",
                       next_period_start=d("2026-04-01"))  # fmt: skip
    months = [d(f"2025-{month:02}-01") for month in range(4, 13)] + [d(f"2026-{month:02}-01") for month in (1, 2, 3)]
    for number, (start, end) in enumerate(zip(months, [*months[1:], d("2026-04-01")], strict=True), start=1):
        price = "250.00" if start < d("2025-09-01") else "999.00" if start == d("2025-12-01") else "300.00"
        status = InvoiceStatus.VOID if price == "999.00" else InvoiceStatus.PAID
        billed = invoice(acme, number, start + timedelta(days=14), price, status=status, contract=managed,
                         period_start=start, period_end=end)  # fmt: skip
        InvoiceLine.objects.create(organization=acme, invoice=billed, description="Managed services",
                                   unit_price=Decimal(price), amount=Decimal(price), kind=LineKind.RECURRING,
                                   period_start=start, period_end=end)  # fmt: skip
    # The partial first piece of a later contract is prorated, not a period's price: that contract counts at 40.00.
    extra = contract(acme, "Backup", flat("40.00"), start_date=d("2026-02-15"), next_period_start=d("2026-04-01"))
    piece = invoice(acme, 99, d("2026-03-01"), "20.00", contract=extra, period_start=d("2026-02-15"),
                    period_end=d("2026-03-01"))  # fmt: skip
    InvoiceLine.objects.create(organization=acme, invoice=piece, description="Backup (14 of 28 days)",
                               amount=Decimal("20.00"), kind=LineKind.PRORATION, period_start=d("2026-02-15"),
                               period_end=d("2026-03-01"))  # fmt: skip
    metrics = fetch(acme_key, FORECAST)["currencies"][0]["metrics"]
    rows = metrics["by_month"]
    assert [row["mrr"] for row in rows] == ["250.00"] * 5 + ["300.00"] * 5 + ["340.00", "350.00"]
    assert (rows[5]["date"], rows[5]["expansion_mrr"]) == ("2025-09-30", "50.00")
    assert (rows[10]["expansion_mrr"], rows[11]["expansion_mrr"]) == ("40.00", "10.00")  # Backup, then today's price
    assert metrics["mrr"] == "350.00"


def test_a_partner_key_adds_up_its_organizations_in_one_currency(api, summit_raw, books):
    aud = by_currency(fetch(api(summit_raw), FORECAST))
    assert list(aud) == ["AUD"]  # Globex (USD) is not Summit's
    part = aud["AUD"]
    # Initech's trial ends on 20 March: 29.00 then and every month after.
    assert column(part, "subscriptions") == ["78.00"] * 12
    assert column(part, "contracts") == ACME_CONTRACTS
    assert column(part, "total") == [f"{Decimal(total) + 29:.2f}" for total in ACME_TOTALS]
    metrics = part["metrics"]
    # Initech's 200.00 ended on 1 August: churned at the end of August. Its trial is no MRR yet.
    assert (metrics["mrr"], metrics["arr"], metrics["churned_mrr"]) == ("559.00", "6708.00", "200.00")
    assert [row["churned_mrr"] for row in metrics["by_month"]] == ["0.00"] * 4 + ["200.00"] + ["0.00"] * 7
    # 559.00 now of the 710.00 the two had a year ago: 78.7 %.
    assert metrics["net_revenue_retention"] == "78.7"


def test_staff_see_every_organization_one_part_per_currency(tess, books):
    body = fetch(session(tess), FORECAST)
    # Globex's today is still 9 March: the month is the same.
    assert body["first_month"] == "2026-03-01"
    parts = by_currency(body)
    assert list(parts) == ["AUD", "USD"]
    assert column(parts["AUD"], "subscriptions") == ["78.00"] * 12
    usd = parts["USD"]
    assert column(usd, "total") == ["0.00"] + ["999.00"] * 11
    assert usd["totals"]["total"] == "10989.00"
    # Globex started in June: nobody had USD MRR a year ago.
    assert (usd["metrics"]["mrr"], usd["metrics"]["net_revenue_retention"]) == ("999.00", None)
    assert [row["new_mrr"] for row in usd["metrics"]["by_month"]] == ["0.00"] * 2 + ["999.00"] + ["0.00"] * 9
    # One organization, by id or slug.
    only = by_currency(fetch(session(tess), f"{FORECAST}?organization={Organization.objects.get(slug='globex').pk}"))
    assert list(only) == ["USD"] and only["USD"] == usd
    assert list(by_currency(fetch(session(tess), f"{FORECAST}/?organization=initech"))) == ["AUD"]
    assert session(tess).get(f"{FORECAST}?organization=nobody").status_code == 404


def test_an_organization_without_billing_sees_zeros_in_its_currency(acme_key, acme):
    part = fetch(acme_key, f"{FORECAST}?months=2")["currencies"]
    assert part[0]["currency"] == "AUD"
    assert column(part[0], "total") == ["0.00", "0.00"]
    assert (part[0]["metrics"]["mrr"], part[0]["metrics"]["net_revenue_retention"]) == ("0.00", None)


def test_organizations_in_different_zones_at_the_turn_of_a_month(time_machine, acme, globex, tess, acme_key):
    contract(acme, "Managed IT", flat("310.00"), start_date=d("2025-01-01"), timing="ADVANCE",
             next_period_start=d("2026-04-01"))  # fmt: skip
    contract(globex, "Hosting", flat("999.00"), start_date=d("2025-01-01"), anchor_day=31, timing="ADVANCE",
             next_period_start=d("2026-03-31"))  # fmt: skip
    # 09:00 on 1 April in Sydney is still 31 March (18:00) in New York.
    time_machine.move_to(datetime(2026, 4, 1, 9, tzinfo=SYDNEY), tick=False)
    body = fetch(session(tess), f"{FORECAST}?months=2")
    assert body["first_month"] == "2026-03-01"
    parts = by_currency(body)
    # Acme's April invoice is due today, in April; Acme adds nothing to March, which is over in Sydney.
    assert column(parts["AUD"], "contracts") == ["0.00", "310.00"]
    # Globex bills on the last day of each month: today, 31 March, and 30 April.
    assert column(parts["USD"], "contracts") == ["999.00", "999.00"]
    # Acme alone starts in its own April.
    alone = fetch(acme_key, f"{FORECAST}?months=1")
    assert alone["first_month"] == "2026-04-01"
    assert column(alone["currencies"][0], "contracts") == ["310.00"]


@pytest.mark.parametrize("months", ["0", "37", "x", "1.5", "-1", "twelve", "9" * 30])
def test_months_must_be_a_whole_number_from_1_to_36(acme_key, months):
    response = acme_key.get(f"{FORECAST}?months={months}")
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["months"]
    assert "1 to 36" in body["months"][0]


def test_months_defaults_to_12_and_reaches_36(acme_key, acme_books):
    assert len(fetch(acme_key, FORECAST)["currencies"][0]["forecast"]) == 12
    assert len(fetch(acme_key, f"{FORECAST}?months=")["currencies"][0]["forecast"]) == 12  # empty: the default
    first = fetch(acme_key, f"{FORECAST}?months=1")["currencies"][0]
    assert column(first, "total") == ["69.11"] and first["totals"]["total"] == "69.11"
    longest = fetch(acme_key, f"{FORECAST}/?months=36")["currencies"][0]
    assert len(longest["forecast"]) == 36
    assert longest["forecast"][-1]["month"] == "2029-02-01"
    # Security renews every July; Backup has ended.
    assert [month["contracts"] for month in longest["forecast"] if month["month"].endswith("-07-01")] == [
        "1510.00", "1510.00", "1510.00"
    ]  # fmt: skip


# -- the ageing --------------------------------------------------------------------------------------------------------


def invoice(organization: Organization, number: int, due: date, total: str, **fields: Any) -> Invoice:
    values: dict[str, Any] = {"status": InvoiceStatus.OPEN, **fields}
    return Invoice.objects.create(
        organization=organization,
        number=None if values["status"] in (InvoiceStatus.DRAFT,) else number,
        currency=organization.currency,
        issue_date=due - timedelta(days=14),
        due_date=due,
        subtotal=Decimal(total),
        total=Decimal(total),
        **values,
    )


def credit(made: Invoice, number: int, total: str) -> None:
    CreditNote.objects.create(organization=made.organization, number=number, invoice=made,
                              kind=CreditNoteKind.ADJUSTMENT, reason="Goodwill", subtotal=Decimal(total),
                              total=Decimal(total), currency=made.currency)  # fmt: skip


@pytest.fixture
def receivables(acme: Organization, globex: Organization) -> dict[int, Invoice]:
    """Acme's invoices due 0, 1, 30, 31, 60, 61, 90 and 91 days before today (10 March), one due later, and some that
    owe nothing; Globex's due on its today (9 March) and the day before."""
    today = d("2026-03-10")
    made = {}
    for number, (days, total) in enumerate(
        [
            (0, "110.00"),
            (1, "120.00"),
            (30, "130.00"),
            (31, "140.00"),
            (60, "150.00"),
            (61, "160.00"),
            (90, "170.00"),
            (91, "180.00"),
            (-10, "50.00"),
        ],
        start=1,
    ):
        status = InvoiceStatus.UNCOLLECTIBLE if days == 61 else InvoiceStatus.OPEN
        made[days] = invoice(acme, number, today - timedelta(days=days), total, status=status)
    Invoice.objects.filter(pk=made[1].pk).update(amount_paid=Decimal("20.00"))  # a partial payment
    credit(made[30], 1, "30.00")  # a credit note
    # Owing nothing, or not open: never aged.
    credited = invoice(acme, 20, today - timedelta(days=45), "80.00")
    credit(credited, 2, "80.00")
    invoice(acme, 21, today - timedelta(days=45), "90.00", status=InvoiceStatus.PAID, amount_paid=Decimal("90.00"))
    invoice(acme, 22, today - timedelta(days=45), "95.00", status=InvoiceStatus.VOID)
    invoice(acme, 0, today - timedelta(days=45), "99.00", status=InvoiceStatus.DRAFT)
    invoice(globex, 1, d("2026-03-09"), "75.00")
    invoice(globex, 2, d("2026-03-08"), "25.00")
    return made


ACME_BUCKETS = [
    {"bucket": "current", "amount": "160.00", "invoices": 2},  # due today (110.00) and in 10 days (50.00)
    {"bucket": "1-30", "amount": "200.00", "invoices": 2},  # 120.00 less 20.00 paid; 130.00 less 30.00 credited
    {"bucket": "31-60", "amount": "290.00", "invoices": 2},  # 140.00 and 150.00
    {"bucket": "61-90", "amount": "330.00", "invoices": 2},  # 160.00 (uncollectible) and 170.00
    {"bucket": "90+", "amount": "180.00", "invoices": 1},
]


def test_ageing_buckets_at_their_edges(acme_key, receivables):
    body = fetch(acme_key, AGEING)
    assert body == {"currencies": [{"currency": "AUD", "total": "1160.00", "buckets": ACME_BUCKETS}]}


def test_ageing_holds_each_invoice_to_its_organizations_today(tess, receivables):
    parts = by_currency(fetch(session(tess), AGEING))
    assert parts["AUD"]["buckets"] == ACME_BUCKETS
    # Due on 9 March is not overdue in New York yet (it would be a day overdue in Sydney).
    assert parts["USD"] == {
        "currency": "USD",
        "total": "100.00",
        "buckets": [
            {"bucket": "current", "amount": "75.00", "invoices": 1},
            {"bucket": "1-30", "amount": "25.00", "invoices": 1},
            *({"bucket": name, "amount": "0.00", "invoices": 0} for name in ("31-60", "61-90", "90+")),
        ],
    }


def test_ageing_moves_with_the_days(time_machine, acme_key, receivables):
    time_machine.move_to(datetime(2026, 3, 11, 10, tzinfo=SYDNEY), tick=False)
    amounts = [bucket["amount"] for bucket in fetch(acme_key, AGEING)["currencies"][0]["buckets"]]
    # Each invoice one day older: 0 -> 1, 30 -> 31, 60 -> 61, 90 -> 91.
    assert amounts == ["50.00", "210.00", "240.00", "310.00", "350.00"]


# -- who sees what -----------------------------------------------------------------------------------------------------


def globex_free(response: Any) -> None:
    body = response.content.decode()
    assert "USD" not in body and "999" not in body and "75.00" not in body


@pytest.mark.isolation("api-billing-forecast")
def test_the_forecast_never_shows_another_organization(alice, acme_key, api, summit_raw, carol, globex, books):
    globex_id = str(globex.pk)
    for client in (session(alice), acme_key, api(summit_raw), api(summit_raw, organization="acme")):
        response = client.get(FORECAST)
        assert response.status_code == 200
        globex_free(response)
        assert list(by_currency(response.json())) == ["AUD"]
        for wanted in (globex_id, "globex"):
            response = client.get(f"{FORECAST}?organization={wanted}")
            assert response.status_code == 404
            globex_free(response)
    # Naming Globex as the organization to act for is 404 too.
    for client in (session(alice), acme_key, api(summit_raw)):
        assert client.get(FORECAST, HTTP_X_ORGANIZATION="globex").status_code == 404
    # Alice (Acme) never sees Initech's trial, nor the partner's sum.
    assert column(fetch(session(alice), FORECAST)["currencies"][0], "subscriptions") == ["49.00"] * 12
    assert session(alice).get(f"{FORECAST}?organization=initech").status_code == 404
    # Carol sees Globex alone.
    parts = by_currency(fetch(session(carol), FORECAST))
    assert list(parts) == ["USD"] and parts["USD"]["metrics"]["mrr"] == "999.00"
    assert session(carol).get(f"{FORECAST}?organization=acme").status_code == 404


@pytest.mark.isolation("api-billing-ageing")
def test_the_ageing_never_shows_another_organization(alice, acme_key, api, summit_raw, carol, globex, receivables):
    for client in (session(alice), acme_key, api(summit_raw), api(summit_raw, organization="acme")):
        response = client.get(AGEING)
        assert response.status_code == 200
        globex_free(response)
        assert response.json()["currencies"][0]["buckets"] == ACME_BUCKETS
        for wanted in (str(globex.pk), "globex"):
            response = client.get(f"{AGEING}?organization={wanted}")
            assert response.status_code == 404
            globex_free(response)
    for client in (session(alice), acme_key, api(summit_raw)):
        assert client.get(AGEING, HTTP_X_ORGANIZATION="globex").status_code == 404
    parts = by_currency(fetch(session(carol), AGEING))
    assert list(parts) == ["USD"] and parts["USD"]["total"] == "100.00"
    assert session(carol).get(f"{AGEING}/?organization=acme").status_code == 404


def test_a_partner_key_narrows_to_one_of_its_organizations(api, summit_raw, books):
    initech_only = by_currency(fetch(api(summit_raw), f"{FORECAST}?organization=initech"))["AUD"]
    assert column(initech_only, "total") == ["29.00"] * 12
    assert initech_only["metrics"]["churned_mrr"] == "200.00"
    # The header and the parameter must agree.
    assert api(summit_raw, organization="acme").get(f"{FORECAST}?organization=initech").status_code == 404


def test_customers_read_billing_reports_only_as_owners_admins_or_managers(bob, pat, acme_books, initech_books):
    for path in (FORECAST, AGEING):
        response = session(bob).get(path)
        assert response.status_code == 403
        assert "owners, admins and managers" in response.json()["detail"]
    # Pat, the partner's admin, reads both of the partner's organizations.
    aud = by_currency(fetch(session(pat), FORECAST))["AUD"]
    assert column(aud, "subscriptions") == ["78.00"] * 12


def test_keys_need_read_and_billing_read(api, api_key_for, acme, acme_books):
    for scopes, expected in [
        (("read",), 403),
        (("billing:read",), 403),
        (("read", "billing:write"), 403),
        (READ_SCOPES, 200),
    ]:
        _, raw = api_key_for(organization=acme, scopes=scopes)
        for path in (FORECAST, AGEING):
            response = api(raw).get(path)
            assert response.status_code == expected, (scopes, path)
            if expected == 403:
                assert "billing:read" in response.json()["detail"] or "read" in response.json()["detail"]
    assert api(None).get(FORECAST).status_code in (401, 403)
    assert api(None).get(AGEING).status_code in (401, 403)


def test_the_reports_are_read_only(acme_key):
    for path in (FORECAST, AGEING):
        assert acme_key.post(path, {}, format="json").status_code in (403, 405)


# -- the schema --------------------------------------------------------------------------------------------------------


def test_the_schema_documents_both_reports(acme_key):
    schema = acme_key.get("/api/schema/?format=json").json()
    forecast = schema["paths"]["/api/billing/forecast/"]["get"]
    months = next(parameter for parameter in forecast["parameters"] if parameter["name"] == "months")
    assert months["schema"]["type"] == "integer" and "1 to 36" in months["description"]
    assert {"200", "400", "403", "404"} <= set(forecast["responses"])
    ageing = schema["paths"]["/api/billing/ageing/"]["get"]
    assert {"200", "403", "404"} <= set(ageing["responses"])
    components = schema["components"]["schemas"]
    assert components["ForecastMonth"]["properties"]["total"]["type"] == "string"
    assert components["AgeingBucket"]["properties"]["amount"]["type"] == "string"


# -- query counts ------------------------------------------------------------------------------------------------------


def test_the_reports_do_not_grow_with_the_rows(acme, acme_key, acme_books, receivables, django_assert_max_num_queries):
    acme_key.get(FORECAST)  # the key's first use records last_used_at; later calls in the minute do not
    few = (count_queries(acme_key, FORECAST), count_queries(acme_key, AGEING))
    for index in range(10):
        made = contract(acme, f"More {index}", flat("10.00"), metered("api_calls", "0.01", "0"),
                        start_date=d("2025-06-01"), timing="ARREARS", next_period_start=d("2026-03-01"))  # fmt: skip
        usage(made, "api_calls", 100 + index, sydney(2026, 2, 1 + index, 12))
        subscription(acme, f"{index + 1}.00", current_period_end=sydney(2026, 4, 1), created_at=sydney(2025, 1, 1))
        invoice(acme, 100 + index, d("2026-01-01"), "10.00")
    assert (count_queries(acme_key, FORECAST), count_queries(acme_key, AGEING)) == few
    # The forecast: the key with its organization; the organizations' zones and currencies; the contracts with their
    # organizations; their lines; the usage of the last three months, summed per contract, metric and month; the
    # subscriptions; the recurring charges invoiced per contract and period.
    with django_assert_max_num_queries(6):
        acme_key.get(FORECAST)
    # The ageing: the key; the zones and currencies; the open invoices with their organizations; their credit notes.
    with django_assert_max_num_queries(4):
        acme_key.get(AGEING)
