"""The customer's invoices in the portal: the list and its filters, one invoice with its money to the cent and its
payment history, paying it through the sandbox payment page, the PDF, and the contract and invoice summaries of the
Billing page.

Acme (Sydney, AUD: alice owner, bob member) and Globex (New York, USD: carol owner) have invoices made directly in
the database with amounts worked out here, so every figure the pages show is checked against arithmetic done by hand.
Time is frozen at 12:00 on Monday 16 March 2026 in Sydney (01:00 UTC) unless a test moves it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client

from billing import proration
from billing.models import (
    AttemptStatus,
    AttemptTrigger,
    BillingSettings,
    Contract,
    ContractLine,
    ContractStatus,
    CreditNote,
    CreditNoteKind,
    Cycle,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    PaymentAttempt,
    PricingModel,
    Timing,
)
from billing.providers import sandbox
from billing.providers.base import ProviderError
from tenancy.models import Organization, Role, User
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

# 12:00 in Sydney (AEDT, UTC+11) on Monday 16 March 2026.
NOW = datetime(2026, 3, 16, 1, 0, tzinfo=UTC)
# Every portal page: the user, the organizations (with the role), the second-factor check, and saving the session
# (savepoint, update, release).
BASE = 6
SECRET = "whsec_portal_invoices"
GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"

# Nothing of Globex may show to Acme.
GLOBEX_TEXT = ("Globex", "Hammock fleet", "4,321.99", "USD")

Line = tuple[str, str, str]  # description, quantity, unit price


@pytest.fixture(autouse=True)
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _sandbox_payments(settings: Any) -> None:
    settings.STRIPE_PROVIDER = "sandbox"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_WEBHOOK_TOLERANCE = 300
    sandbox.SENT.clear()


def member(organization: Organization, role: str) -> User:
    user = UserFactory(email=f"{role.lower()}@{organization.slug}.test")
    MembershipFactory(user=user, organization=organization, role=role)
    return user


def make_invoice(
    organization: Organization,
    number: int | None,
    *,
    status: str = InvoiceStatus.OPEN,
    issued: date = date(2026, 3, 1),
    due: date = date(2026, 3, 31),
    lines: Sequence[Line] = (("Managed services", "1", "100.00"),),
    tax_rate: str = "10.00",
    paid: str | None = None,
    period: tuple[date, date] | None = (date(2026, 3, 1), date(2026, 4, 1)),
) -> Invoice:
    """An invoice as the services leave it: each line rounded, tax on the subtotal rounded once, totals summed.
    A PAID invoice has its total paid unless ``paid`` says otherwise."""
    currency = organization.currency
    amounts = [proration.quantize(Decimal(qty) * Decimal(price), currency) for _, qty, price in lines]
    subtotal = sum(amounts, Decimal("0"))
    tax = proration.quantize(subtotal * Decimal(tax_rate) / 100, currency)
    total = subtotal + tax
    amount_paid = Decimal(paid) if paid is not None else (total if status == InvoiceStatus.PAID else Decimal("0"))
    invoice = Invoice.objects.create(
        organization=organization,
        number=number,
        status=status,
        currency=currency,
        issue_date=issued,
        due_date=due,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        subtotal=subtotal,
        tax=tax,
        total=total,
        amount_paid=amount_paid,
        tax_rate=Decimal(tax_rate),
        tax_label="GST",
        finalized_at=None if number is None else NOW,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            organization=organization,
            invoice=invoice,
            position=position,
            description=description,
            quantity=Decimal(qty),
            unit_price=Decimal(price),
            amount=amount,
        )
        for position, ((description, qty, price), amount) in enumerate(zip(lines, amounts, strict=True))
    )
    return invoice


def credit(invoice: Invoice, number: int, subtotal: str, reason: str = "Goodwill credit") -> CreditNote:
    amount = Decimal(subtotal)
    tax = proration.quantize(amount * invoice.tax_rate / 100, invoice.currency)
    return CreditNote.objects.create(
        organization_id=invoice.organization_id,
        number=number,
        invoice=invoice,
        kind=CreditNoteKind.ADJUSTMENT,
        reason=reason,
        subtotal=amount,
        tax=tax,
        total=amount + tax,
        currency=invoice.currency,
        created_at=NOW,
    )


def attempt(invoice: Invoice, number: int, status: str, trigger: str, amount: str, message: str = "") -> None:
    PaymentAttempt.objects.create(
        organization_id=invoice.organization_id,
        invoice=invoice,
        number=number,
        trigger=trigger,
        status=status,
        amount=Decimal(amount),
        currency=invoice.currency,
        idempotency_key=f"test-{invoice.pk}-{number}",
        failure_code="card_declined" if status == AttemptStatus.FAILED else "",
        failure_message=message,
        created_at=NOW,
        completed_at=NOW,
    )


def pointed_at(client: Client, organization: Organization) -> Client:
    """``client`` with its session's current organization set to ``organization`` (tampered with)."""
    session = client.session
    session["organization_id"] = str(organization.pk)
    session.save()
    return client


def text_of(response: Any) -> str:
    return str(response.content.decode())


def squeezed(response: Any) -> str:
    """The page without the white space between its tags."""
    return re.sub(r">\s+<", "><", text_of(response))


def references(body: str) -> list[str]:
    """The invoice references the list links to, in order."""
    return [part.split("</a>", 1)[0] for part in body.split('/">INV-')[1:]]


@pytest.fixture
def globex_invoice(globex: Organization) -> Invoice:
    return make_invoice(globex, 1, lines=(("Hammock fleet", "1", "4321.99"),), tax_rate="0")


@pytest.fixture
def follow() -> Callable[[Client, Any], Any]:
    """The page a redirect leads to (the messages the redirect left are on it)."""

    def get(client: Client, response: Any) -> Any:
        assert response.status_code in (302, 303), response.status_code
        return client.get(response["Location"])

    return get


# -- the list ----------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:billing_invoices")
def test_list_shows_issued_invoices_newest_first_never_drafts_nor_another_organizations(
    client_for, acme, alice, carol, globex_invoice
):
    make_invoice(acme, 1, status=InvoiceStatus.PAID, issued=date(2026, 1, 1), due=date(2026, 1, 15))
    february = (date(2026, 2, 1), date(2026, 3, 1))
    make_invoice(acme, 2, issued=date(2026, 2, 1), due=date(2026, 2, 15), lines=(("Firewall", "2", "617.25"),),
                 period=february)  # fmt: skip
    make_invoice(acme, 3, issued=date(2026, 3, 1))
    make_invoice(acme, None, status=InvoiceStatus.DRAFT, lines=(("Under review", "1", "999.00"),))
    make_invoice(acme, None, status=InvoiceStatus.VOID, lines=(("Never sent", "1", "888.00"),))

    for client in (client_for(alice), pointed_at(client_for(alice), globex_invoice.organization)):
        response = client.get("/billing/invoices/")
        assert response.status_code == 200
        body = text_of(response)
        assert references(body) == ["00003", "00002", "00001"]
        assert "Draft" not in body and "1,098.90" not in body and "976.80" not in body
        for secret in GLOBEX_TEXT:
            assert secret not in body
        # INV-00002: 2 x 617.25 = 1,234.50 + GST 123.45 = 1,357.95, due 15 Feb and unpaid on 16 Mar: overdue.
        [row] = [row for row in body.split("<tr>") if ">INV-00002</a>" in row]
        assert "AUD 1,357.95" in row and ">Overdue</span>" in row and "15 Feb 2026" in row
        # The period's stored end (1 March) is exclusive: it shows as February's last day.
        assert "1 Feb 2026</time> to <time" in row and "28 Feb 2026</time>" in row and "1 Mar 2026" not in row

    carol_body = text_of(client_for(carol).get("/billing/invoices/"))
    assert references(carol_body) == ["00001"]
    assert "USD 4,321.99" in carol_body and "Managed services" not in carol_body and "1,357.95" not in carol_body


def test_list_is_paginated_by_25(client_for, acme, alice):
    for number in range(1, 28):
        make_invoice(acme, number, issued=date(2026, 1, 1))
    client = client_for(alice)
    first = text_of(client.get("/billing/invoices/"))
    assert references(first) == [f"{number:05d}" for number in range(27, 2, -1)]
    assert "Page 1 of 2" in first
    second = text_of(client.get("/billing/invoices/?status=all&page=2"))
    assert references(second) == ["00002", "00001"]
    # A page that is not a number is the first page, one past the end the last: never an error.
    assert references(text_of(client.get("/billing/invoices/?page=abc"))) == references(first)
    assert references(text_of(client.get("/billing/invoices/?page=99"))) == ["00002", "00001"]


def test_overdue_is_judged_in_the_organizations_time_zone(client_for, acme, alice, globex, carol, frozen):
    # Both due on Tuesday 17 March, unpaid.
    make_invoice(acme, 1, due=date(2026, 3, 17))
    make_invoice(globex, 1, due=date(2026, 3, 17))
    overdue = "/billing/invoices/?status=overdue"

    # 12:30 UTC on the 17th: 23:30 in Sydney, still the due date there.
    frozen.move_to(datetime(2026, 3, 17, 12, 30, tzinfo=UTC))
    body = text_of(client_for(alice).get("/billing/invoices/"))
    assert ">Open</span>" in body and "Overdue</span>" not in body
    assert references(text_of(client_for(alice).get(overdue))) == []

    # 13:30 UTC: 00:30 on the 18th in Sydney, so Acme's is overdue; in New York it is 09:30 on the 17th.
    frozen.move_to(datetime(2026, 3, 17, 13, 30, tzinfo=UTC))
    body = text_of(client_for(alice).get("/billing/invoices/"))
    assert ">Overdue</span>" in body and ">Open</span>" not in body
    assert references(text_of(client_for(alice).get(overdue))) == ["00001"]
    assert ">Open</span>" in text_of(client_for(carol).get("/billing/invoices/"))
    assert references(text_of(client_for(carol).get(overdue))) == []

    # New York has been on daylight time (UTC-4) since 8 March. 03:30 UTC on the 18th is 23:30 on the 17th there:
    # Globex's is not overdue yet; an hour later it is.
    frozen.move_to(datetime(2026, 3, 18, 3, 30, tzinfo=UTC))
    assert references(text_of(client_for(carol).get(overdue))) == []
    frozen.move_to(datetime(2026, 3, 18, 4, 30, tzinfo=UTC))
    assert references(text_of(client_for(carol).get(overdue))) == ["00001"]


def test_status_filter_and_a_bad_value_shows_everything_with_a_message(client_for, acme, alice):
    make_invoice(acme, 1, status=InvoiceStatus.PAID)
    make_invoice(acme, 2, due=date(2026, 3, 2))  # overdue
    make_invoice(acme, 3)  # open, due 31 March
    make_invoice(acme, 4, status=InvoiceStatus.VOID)
    make_invoice(acme, 5, status=InvoiceStatus.UNCOLLECTIBLE)
    client = client_for(alice)

    expected = {
        "all": ["00005", "00004", "00003", "00002", "00001"],
        "open": ["00003", "00002"],
        "overdue": ["00002"],
        "paid": ["00001"],
        "void": ["00004"],
        "uncollectible": ["00005"],
        "PAID": ["00001"],
    }
    for status, shown in expected.items():
        response = client.get("/billing/invoices/", {"status": status})
        assert response.status_code == 200
        assert references(text_of(response)) == shown, status
        assert 'role="alert"' not in text_of(response)

    for bad in ("bogus", "DRAFT", "x" * 500, "'<script>"):
        response = client.get("/billing/invoices/", {"status": bad})
        assert response.status_code == 200
        body = text_of(response)
        assert references(body) == expected["all"]
        assert 'role="alert">There is no invoice status' in body and "all invoices are shown" in body
        assert "<script>" not in body and "x" * 41 not in body


# -- who may see invoices ----------------------------------------------------------------------------------------------


def test_owners_admins_managers_and_partner_admins_see_invoices_members_do_not(client_for, acme, alice, bob, pat):
    invoice = make_invoice(acme, 1)
    admin, manager = member(acme, Role.ADMIN), member(acme, Role.MANAGER)
    page = f"/billing/invoices/{invoice.pk}/"
    for user in (alice, admin, manager, pat):
        client = client_for(user)
        listing = client.get("/billing/invoices/")
        assert listing.status_code == 200, user.email
        assert 'href="/billing/invoices/" aria-current="page">Invoices<' in text_of(listing)
        assert client.get(page).status_code == 200
        assert client.get(f"{page}pdf/").status_code == 200

    # A plain member: the portal's answer for a page the role cannot use (404), and no link to it.
    client = client_for(bob)
    assert client.get("/billing/invoices/").status_code == 404
    assert client.get(page).status_code == 404
    assert client.get(f"{page}pdf/").status_code == 404
    assert client.post(f"{page}pay/").status_code == 404
    assert 'href="/billing/invoices/"' not in text_of(client.get("/dashboard/"))
    assert PaymentAttempt.objects.count() == 0 and sandbox.SENT == []


def test_staff_are_treated_by_their_membership(client_for, acme):
    staff_member = UserFactory(email="tess@keel.test", is_staff=True)
    MembershipFactory(user=staff_member, organization=acme, role=Role.MEMBER)
    assert client_for(staff_member).get("/billing/invoices/").status_code == 404


def test_the_navigation_marks_invoices_not_billing_as_the_current_page(client_for, alice):
    body = text_of(client_for(alice).get("/billing/invoices/"))
    assert 'href="/billing/invoices/" aria-current="page">Invoices<' in body
    assert 'href="/billing/">Billing<' in body
    billing = text_of(client_for(alice).get("/billing/"))
    assert 'href="/billing/" aria-current="page">Billing<' in billing
    assert 'href="/billing/invoices/">Invoices<' in billing


# -- one invoice -------------------------------------------------------------------------------------------------------

# 12 x 45.50 = 546.00; 1 x 1,234.50; 1,234 API calls x 0.005 = 6.17. Subtotal 1,786.67, GST 10 % 178.667 -> 178.67,
# total 1,965.34. Paid 100.00 by card; credit note CN-00001 of 10.00 + 1.00 GST = 11.00. Due 1,854.34.
DETAILED_LINES = (
    ("Managed endpoints", "12", "45.50"),
    ("Network refresh", "1", "1234.50"),
    ("API calls", "1234", "0.005"),
)


def test_invoice_page_shows_lines_totals_credits_and_payments_to_the_cent(client_for, acme, alice):
    invoice = make_invoice(acme, 7, lines=DETAILED_LINES, paid="100.00", due=date(2026, 3, 10))
    credit(invoice, 1, "10.00", reason="Outage on 3 March")
    attempt(invoice, 1, AttemptStatus.FAILED, AttemptTrigger.AUTOMATIC, "1965.34", "Your card has insufficient funds.")
    attempt(invoice, 2, AttemptStatus.SUCCEEDED, AttemptTrigger.CUSTOMER, "100.00")

    response = client_for(alice).get(f"/billing/invoices/{invoice.pk}/")
    assert response.status_code == 200
    body = squeezed(response)
    assert "Invoice INV-00007" in body and ">Overdue</span>" in body
    for text in (
        '<td class="num">12</td><td class="num">AUD 45.50</td><td class="num">AUD 546.00</td>',
        '<td class="num">1</td><td class="num">AUD 1,234.50</td><td class="num">AUD 1,234.50</td>',
        '<td class="num">1,234</td><td class="num">AUD 0.005</td><td class="num">AUD 6.17</td>',
        'Subtotal</th><td class="num">AUD 1,786.67</td>',
        'GST 10%</th><td class="num">AUD 178.67</td>',
        'Total</th><td class="num"><strong>AUD 1,965.34</strong></td>',
        'Amount paid</th><td class="num">AUD 100.00</td>',
        'Credit note CN-00001</th><td class="num">AUD -11.00</td>',
        'Amount due</th><td class="num"><strong>AUD 1,854.34</strong></td>',
        "Outage on 3 March",
        "10 Mar 2026",
        "1 Mar 2026</time> to <time",
        "31 Mar 2026",
    ):
        assert text in body, text
    # The payment history, newest first, automatic and customer payments alike, with the reason of the failure.
    history = body.split("Payment history", 1)[1]
    assert history.index("Paid online") < history.index("Automatic charge")
    assert ">Succeeded</span>" in history and ">Failed</span>" in history
    assert "Your card has insufficient funds." in history and "AUD 1,965.34" in history
    # Something is owed: the pay form, with the card box, and the PDF.
    assert f'action="/billing/invoices/{invoice.pk}/pay/"' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert '<label for="id_save_card"><input type="checkbox" name="save_card" id="id_save_card">' in body
    assert "Save this card and pay future invoices automatically" in body
    assert f'href="/billing/invoices/{invoice.pk}/pdf/"' in body


def test_a_paid_invoice_has_no_pay_form(client_for, acme, alice):
    invoice = make_invoice(acme, 1, status=InvoiceStatus.PAID)
    body = text_of(client_for(alice).get(f"/billing/invoices/{invoice.pk}/"))
    assert ">Paid</span>" in body and "/pay/" not in body and "Save this card" not in body
    assert 'Amount due</th><td class="num"><strong>AUD 0.00</strong>' in body


def test_back_from_the_payment_page_says_thank_you(client_for, acme, alice):
    invoice = make_invoice(acme, 1)
    client = client_for(alice)
    confirming = text_of(client.get(f"/billing/invoices/{invoice.pk}/?paid=1"))
    assert "Thank you, your payment is being confirmed" in confirming
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.PAID, amount_paid=invoice.total)
    paid = text_of(client.get(f"/billing/invoices/{invoice.pk}/?paid=1"))
    assert "Paid, thank you" in paid and "being confirmed" not in paid
    plain = text_of(client.get(f"/billing/invoices/{invoice.pk}/"))
    assert "Paid, thank you" not in plain


@pytest.mark.isolation("portal:billing_invoice")
def test_another_organizations_invoice_a_draft_and_a_bad_id_are_404(client_for, acme, alice, carol, globex_invoice):
    draft = make_invoice(acme, None, status=InvoiceStatus.DRAFT)
    voided_draft = make_invoice(acme, None, status=InvoiceStatus.VOID)
    mine = make_invoice(acme, 1)
    for client in (client_for(alice), pointed_at(client_for(alice), globex_invoice.organization)):
        for invoice_id in (globex_invoice.pk, draft.pk, voided_draft.pk, uuid.uuid4()):
            response = client.get(f"/billing/invoices/{invoice_id}/")
            assert response.status_code == 404
            for secret in GLOBEX_TEXT:
                assert secret not in text_of(response)
        assert client.get("/billing/invoices/not-a-uuid/").status_code == 404
        assert client.get(f"/billing/invoices/{mine.pk}/").status_code == 200
    assert client_for(carol).get(f"/billing/invoices/{mine.pk}/").status_code == 404
    assert client_for(carol).get(f"/billing/invoices/{globex_invoice.pk}/").status_code == 200


# -- paying ------------------------------------------------------------------------------------------------------------


def pay(client: Client, invoice: Invoice, *, save_card: bool) -> str:
    response = client.post(f"/billing/invoices/{invoice.pk}/pay/", {"save_card": "on"} if save_card else {})
    assert response.status_code == 303
    return str(response["Location"])


def test_paying_goes_to_the_payment_page_and_completing_it_pays_and_saves_the_card(
    client_for, acme, alice, django_capture_on_commit_callbacks
):
    invoice = make_invoice(acme, 1, lines=DETAILED_LINES)
    client = client_for(alice)

    url = pay(client, invoice, save_card=True)
    assert url.startswith("/sandbox/stripe/pay/")
    [started] = PaymentAttempt.objects.filter(invoice=invoice)
    assert (started.trigger, started.status, started.amount) == (
        AttemptTrigger.CUSTOMER,
        AttemptStatus.PENDING,
        Decimal("1965.34"),
    )
    page = client.get(url)
    assert page.status_code == 200 and "AUD 1965.34" in text_of(page)

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"card": GOOD_CARD})
    assert done.status_code == 302
    assert done["Location"] == f"{django_settings.SITE_URL}/billing/invoices/{invoice.pk}/?paid=1"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, Decimal("1965.34"))
    started.refresh_from_db()
    assert started.status == AttemptStatus.SUCCEEDED and PaymentAttempt.objects.count() == 1
    card = BillingSettings.objects.get(organization=acme)
    assert card.payment_method_id.startswith("pm_") and card.autopay

    body = text_of(client.get(f"/billing/invoices/{invoice.pk}/?paid=1"))
    assert "Paid, thank you" in body and "Save this card" not in body
    assert ">Succeeded</span>" in body and "Paid online" in body
    billing = text_of(client.get("/billing/"))
    assert "Visa ending 4242 is saved" in billing and "It pays new invoices automatically" in billing


def test_a_declined_card_leaves_the_invoice_open_with_the_failure_in_its_history(
    client_for, acme, alice, django_capture_on_commit_callbacks
):
    invoice = make_invoice(acme, 1)
    client = client_for(alice)
    url = pay(client, invoice, save_card=True)
    with django_capture_on_commit_callbacks(execute=True):
        declined = client.post(url, {"card": DECLINED_CARD})
    assert declined.status_code == 402
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.OPEN, Decimal("0"))
    [failed] = PaymentAttempt.objects.filter(invoice=invoice)
    assert failed.status == AttemptStatus.FAILED and failed.trigger == AttemptTrigger.CUSTOMER
    assert not BillingSettings.objects.filter(organization=acme).exclude(payment_method_id="").exists()

    body = text_of(client.get(f"/billing/invoices/{invoice.pk}/"))
    history = body.split("Payment history", 1)[1]
    assert ">Failed</span>" in history and "Your card was declined." in history and "AUD 110.00" in history
    # Still owed: the customer may try again.
    assert f'action="/billing/invoices/{invoice.pk}/pay/"' in body


@pytest.mark.isolation("portal:billing_invoice_pay")
def test_paying_another_organizations_invoice_or_a_draft_is_404_and_starts_nothing(
    client_for, acme, alice, globex_invoice
):
    draft = make_invoice(acme, None, status=InvoiceStatus.DRAFT)
    for client in (client_for(alice), pointed_at(client_for(alice), globex_invoice.organization)):
        for invoice_id in (globex_invoice.pk, draft.pk, uuid.uuid4()):
            response = client.post(f"/billing/invoices/{invoice_id}/pay/", {"save_card": "on"})
            assert response.status_code == 404
            for secret in GLOBEX_TEXT:
                assert secret not in text_of(response)
        assert client.post("/billing/invoices/nope/pay/").status_code == 404
    assert PaymentAttempt.objects.count() == 0 and sandbox.SENT == []


def test_paying_a_paid_invoice_says_there_is_nothing_to_pay(client_for, acme, alice, follow):
    invoice = make_invoice(acme, 1, status=InvoiceStatus.PAID)
    client = client_for(alice)
    response = client.post(f"/billing/invoices/{invoice.pk}/pay/")
    assert response.status_code == 303 and response["Location"] == f"/billing/invoices/{invoice.pk}/"
    body = text_of(follow(client, response))
    assert 'role="alert">This invoice has nothing left to pay.</p>' in body
    assert PaymentAttempt.objects.count() == 0 and sandbox.SENT == []


def test_pay_takes_only_post(client_for, acme, alice):
    invoice = make_invoice(acme, 1)
    assert client_for(alice).get(f"/billing/invoices/{invoice.pk}/pay/").status_code == 405
    assert PaymentAttempt.objects.count() == 0


def test_a_payment_service_failure_is_a_message_and_a_log_line(client_for, acme, alice, follow, monkeypatch, caplog):
    def refuse(self: Any, request: Any) -> Any:
        raise ProviderError("Stripe: connection reset (APIConnectionError)", retryable=True)

    monkeypatch.setattr(sandbox.SandboxProvider, "invoice_checkout_create", refuse)
    invoice = make_invoice(acme, 1)
    client = client_for(alice)
    response = client.post(f"/billing/invoices/{invoice.pk}/pay/", {"save_card": "on"})
    assert response.status_code == 303 and response["Location"] == f"/billing/invoices/{invoice.pk}/"
    body = text_of(follow(client, response))
    assert "The payment service is unavailable; try again shortly." in body
    assert "APIConnectionError" not in body
    assert "APIConnectionError" in caplog.text
    # The attempt the service wrote is closed; the invoice can be paid again.
    assert list(PaymentAttempt.objects.values_list("status", flat=True)) == [AttemptStatus.CANCELED]
    assert f'action="/billing/invoices/{invoice.pk}/pay/"' in body


# -- the PDF -----------------------------------------------------------------------------------------------------------


@pytest.fixture
def pdf_pay_urls(monkeypatch: Any) -> list[str]:
    """The ``pay_url`` each rendered PDF was given."""
    from billing import documents

    seen: list[str] = []
    real = documents.invoice_pdf

    def spy(invoice: Invoice, *, pay_url: str = "") -> bytes:
        seen.append(pay_url)
        return real(invoice, pay_url=pay_url)

    monkeypatch.setattr(documents, "invoice_pdf", spy)
    return seen


@pytest.mark.isolation("portal:billing_invoice_pdf")
def test_the_pdf_is_an_attachment_with_the_pay_link_when_something_is_owed(
    client_for, acme, alice, globex_invoice, pdf_pay_urls
):
    owed = make_invoice(acme, 1, lines=DETAILED_LINES)
    paid = make_invoice(acme, 2, status=InvoiceStatus.PAID)
    client = client_for(alice)

    response = client.get(f"/billing/invoices/{owed.pk}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="acme-INV-00001.pdf"'
    assert "private" in response["Cache-Control"]
    assert response.content.startswith(b"%PDF")
    assert client.get(f"/billing/invoices/{paid.pk}/pdf/").status_code == 200
    assert pdf_pay_urls == [f"{django_settings.SITE_URL}/billing/invoices/{owed.pk}/", ""]

    draft = make_invoice(acme, None, status=InvoiceStatus.DRAFT)
    for invoice_id in (globex_invoice.pk, draft.pk, uuid.uuid4()):
        assert client.get(f"/billing/invoices/{invoice_id}/pdf/").status_code == 404
    assert (
        pointed_at(client, globex_invoice.organization).get(f"/billing/invoices/{globex_invoice.pk}/pdf/").status_code
        == 404
    )
    assert len(pdf_pay_urls) == 2


# -- query counts ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, 30])
def test_list_query_count_does_not_grow_with_invoices(client_for, acme, alice, count, django_assert_max_num_queries):
    for number in range(1, count + 1):
        invoice = make_invoice(acme, number, lines=DETAILED_LINES)
        credit(invoice, number, "1.00")
    client = client_for(alice)
    # base + the count, one page of invoices, and their credit notes
    with django_assert_max_num_queries(BASE + 3):
        response = client.get("/billing/invoices/")
    assert len(response.context["rows"]) == min(count, 25)
    with django_assert_max_num_queries(BASE + 3):
        assert client.get("/billing/invoices/?status=overdue").status_code == 200


@pytest.mark.parametrize("lines", [2, 40])
def test_invoice_page_query_count_does_not_grow_with_lines(
    client_for, acme, alice, lines, django_assert_max_num_queries
):
    invoice = make_invoice(acme, 1, lines=[(f"Line {index}", "1", "10.00") for index in range(lines)])
    for number in range(1, lines // 2 + 1):
        credit(invoice, number, "0.10")
        attempt(invoice, number, AttemptStatus.FAILED, AttemptTrigger.RETRY, "5.00", "Your card was declined.")
    client = client_for(alice)
    # base + the invoice (with its organization and contract), its lines, its credit notes, its payment attempts
    with django_assert_max_num_queries(BASE + 4):
        response = client.get(f"/billing/invoices/{invoice.pk}/")
    assert text_of(response).count("Line ") == lines


# -- the Billing page --------------------------------------------------------------------------------------------------


def make_contract(
    organization: Organization, name: str, status: str = ContractStatus.ACTIVE, **fields: Any
) -> Contract:
    values: dict[str, Any] = {
        "start_date": date(2026, 1, 1),
        "anchor_day": 1,
        "next_period_start": date(2026, 4, 1),
        "next_invoice_on": date(2026, 4, 1),
        **fields,
    }
    return Contract.objects.create(organization=organization, name=name, status=status, **values)


def add_line(contract: Contract, description: str, model: str, position: int = 0, **fields: Any) -> ContractLine:
    return ContractLine.objects.create(
        organization_id=contract.organization_id,
        contract=contract,
        position=position,
        description=description,
        pricing_model=model,
        **fields,
    )


def test_billing_page_summarizes_contracts_invoices_and_the_saved_card(client_for, acme, alice, globex):
    support = make_contract(
        acme,
        "Managed support",
        end_date=date(2027, 1, 1),
        auto_renew=True,
        renewal_term_months=12,
    )
    add_line(support, "Helpdesk", PricingModel.FLAT, 0, amount=Decimal("499.00"))
    add_line(support, "Endpoints", PricingModel.PER_UNIT, 1, unit_price=Decimal("45.50"), quantity=Decimal("12"))
    add_line(
        support,
        "Onsite hours",
        PricingModel.HOURS_BLOCK,
        2,
        amount=Decimal("1200.00"),
        included_quantity=Decimal("10"),
        overage_rate=Decimal("150.00"),
    )
    add_line(
        support,
        "Mailboxes",
        PricingModel.TIERED_GRADUATED,
        3,
        quantity=Decimal("60"),
        tiers=[{"up_to": "50", "unit_price": "6.00", "flat_fee": "0"}, {"up_to": None, "unit_price": "4.50"}],
    )
    add_line(support, "Backup storage", PricingModel.USAGE, 4, unit_price=Decimal("0.005"), metric="GB")
    backup = make_contract(
        acme, "Offsite backup", ContractStatus.SUSPENDED, cycle=Cycle.QUARTERLY, timing=Timing.ARREARS
    )
    add_line(backup, "Backup appliance", PricingModel.FLAT, amount=Decimal("300.00"))
    make_contract(acme, "Old phones", ContractStatus.ENDED)
    make_contract(acme, "Proposed CCTV", ContractStatus.DRAFT)
    make_contract(globex, "Hammock fleet care")

    # Seven issued invoices: the page lists the five latest. Open ones owe 110.00 (due 31 March), 55.00 (overdue:
    # half paid) and 220.00 (overdue) less a 22.00 credit: 363.00 in all, two overdue.
    make_invoice(acme, 1, status=InvoiceStatus.PAID, issued=date(2025, 9, 1))
    make_invoice(acme, 2, issued=date(2025, 10, 1), due=date(2025, 10, 15), lines=(("Old", "2", "100.00"),))
    credit(Invoice.objects.get(organization=acme, number=2), 1, "20.00")
    make_invoice(acme, 3, status=InvoiceStatus.PAID, issued=date(2025, 11, 1))
    make_invoice(acme, 4, status=InvoiceStatus.VOID, issued=date(2025, 12, 1))
    make_invoice(acme, 5, status=InvoiceStatus.PAID, issued=date(2026, 1, 1))
    make_invoice(acme, 6, issued=date(2026, 2, 1), due=date(2026, 2, 15), paid="55.00")
    make_invoice(acme, 7, issued=date(2026, 3, 1))
    make_invoice(acme, None, status=InvoiceStatus.DRAFT, issued=date(2026, 3, 15))
    make_invoice(globex, 1, lines=(("Hammock fleet", "1", "4321.99"),), tax_rate="0")
    BillingSettings.objects.create(
        organization=acme, payment_method_id="pm_123", payment_method_label="Visa ending 4242"
    )

    response = client_for(alice).get("/billing/")
    assert response.status_code == 200
    body = text_of(response)
    # Still the page of an organization without a self-serve subscription.
    assert "Acme Pty Ltd has no self-serve subscription" in body and "billed under your\n      contracts" in body

    contracts = body.split('id="contracts-heading"', 1)[1].split('id="invoices-heading"', 1)[0]
    assert contracts.index("Managed support") < contracts.index("Offsite backup")
    for text in (
        "Monthly, billed in advance",
        "1 Apr 2026",  # the next invoice
        "31 Dec 2026",  # the last day of the term (its stored end, 1 January 2027, is exclusive)
        "Renews automatically for 12 months",
        "Helpdesk</th><td>Flat amount per period</td><td>AUD 499.00 a month</td>",
        "Endpoints</th><td>Per unit</td><td>12 at AUD 45.50 each, a month</td>",
        "Onsite hours</th><td>Block of hours</td><td>AUD 1,200.00 a month for 10 hours, then AUD 150.00 an hour</td>",
        "Mailboxes</th><td>Tiered, graduated</td><td>60 units, a month: up to 50 at AUD 6.00 each; above 50 at AUD "
        "4.50 each</td>",
        "Backup storage</th><td>Metered usage</td><td>AUD 0.005 per GB used</td>",
        "Quarterly, billed in arrears",
        ">Suspended</span>",
        "None while the contract is suspended",
        "Does not renew automatically",
        "No end date",
    ):
        assert text in contracts, text
    for absent in ("Old phones", "Proposed CCTV", "Hammock"):
        assert absent not in body

    invoices = body.split('id="invoices-heading"', 1)[1]
    assert references(invoices) == ["00007", "00006", "00005", "00004", "00003"]
    assert "<dt>Outstanding</dt><dd>AUD 363.00</dd>" in invoices
    assert "<dt>Open invoices</dt><dd>3</dd>" in invoices
    assert "<dt>Overdue</dt><dd>2</dd>" in invoices
    assert "2 invoices are overdue." in invoices
    assert 'href="/billing/invoices/">All invoices</a>' in invoices
    assert "Visa ending 4242 is saved." in invoices and "It pays new invoices automatically" in invoices
    assert "USD" not in body and "4,321.99" not in body


def test_billing_page_without_contracts_invoices_or_card(client_for, acme, alice):
    body = text_of(client_for(alice).get("/billing/"))
    assert "Acme Pty Ltd has no self-serve subscription" in body
    assert "Acme Pty Ltd has no active contract with us." in body
    assert "<dt>Outstanding</dt><dd>AUD 0.00</dd>" in body and "No invoices yet." in body
    assert "No card is saved." in body
    BillingSettings.objects.create(organization=acme, payment_method_id="pm_1", autopay=False)
    body = text_of(client_for(alice).get("/billing/"))
    assert "A card is saved." in body and "It is not charged automatically" in body


@pytest.mark.parametrize("count", [1, 8])
def test_billing_page_query_count_does_not_grow_with_contracts_or_invoices(
    client_for, acme, alice, count, django_assert_max_num_queries
):
    for index in range(count):
        contract = make_contract(acme, f"Contract {index}")
        for position in range(3):
            add_line(contract, f"Service {index}.{position}", PricingModel.FLAT, position, amount=Decimal("10"))
        invoice = make_invoice(acme, index + 1, due=date(2026, 3, 1))
        credit(invoice, index + 1, "1.00")
    client = client_for(alice)
    # base + the subscription (none) and the SMS credit balance; then the contracts, their lines, the latest and the
    # open invoices, their credit notes, and the billing settings; and who invoices go to (the owners and admins)
    with django_assert_max_num_queries(BASE + 2 + 6):
        response = client.get("/billing/")
    assert text_of(response).count("Service ") == 3 * count
