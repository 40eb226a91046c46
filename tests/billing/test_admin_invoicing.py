"""The staff admin for contract billing: drafting a contract with its lines (checked like the API), an active
contract's pricing held still, and the invoice actions (approve drafts, charge the saved card, email again, void)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from billing.models import BillingSettings, Contract, CreditNote, Invoice, PaymentAttempt
from billing.services.contracts import ContractTerms, contract_create
from billing.services.invoices import invoice_create, invoice_finalize

pytestmark = pytest.mark.django_db


def contract_form(acme: Any, *lines: dict[str, str], **fields: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "organization": str(acme.pk),
        "name": "Managed IT",
        "start_date": "2026-03-01",
        "end_date": "",
        "cycle": "MONTHLY",
        "anchor_day": "",
        "timing": "ADVANCE",
        "payment_terms_days": "14",
        "tax_rate": "10.00",
        "tax_label": "GST",
        "renewal_term_months": "",
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        **fields,
    }
    defaults = {"amount": "0", "unit_price": "0", "quantity": "1", "included_quantity": "0", "tiers": "[]",
                "metric": "", "overage_rate": "0"}  # fmt: skip
    for index, line in enumerate(lines):
        for name, value in {"position": str(index), **defaults, **line}.items():
            data[f"lines-{index}-{name}"] = value
    return data


FLAT = {"description": "Managed services", "pricing_model": "FLAT", "amount": "1500.00"}
SEATS = {"description": "Microsoft 365 seats", "pricing_model": "PER_UNIT", "unit_price": "22.50", "quantity": "12"}


def test_staff_draft_a_contract_with_lines(staff_client, acme):
    response = staff_client.post("/admin/billing/contract/add/", contract_form(acme, FLAT, SEATS))
    assert response.status_code == 302, response.content.decode()[:3000]
    contract = Contract.objects.get()
    assert (contract.status, contract.anchor_day, contract.organization) == ("DRAFT", 1, acme)
    lines = list(contract.lines.order_by("position"))
    assert [(line.description, line.organization_id) for line in lines] == [
        ("Managed services", acme.pk),
        ("Microsoft 365 seats", acme.pk),
    ]


def test_bad_terms_and_lines_are_named_and_nothing_is_written(staff_client, acme):
    tiered = {"description": "Backup", "pricing_model": "TIERED_VOLUME", "tiers": '[{"up_to": "x"}]'}
    form = contract_form(acme, tiered, end_date="2026-02-01", auto_renew="on")
    response = staff_client.post("/admin/billing/contract/add/", form)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Must be after the start date." in text
    assert "tiers" in text.lower()
    assert Contract.objects.count() == 0


def test_an_active_contracts_pricing_is_read_only(staff_client, acme):
    contract = contract_create(
        organization=acme,
        terms=ContractTerms(name="Managed IT", start_date=date(2026, 3, 1)),
        lines=[FLAT],
        activate=True,
    )
    page = staff_client.get(f"/admin/billing/contract/{contract.pk}/change/").content.decode()
    assert 'name="cycle"' not in page and 'name="lines-0-amount"' not in page and 'name="name"' in page
    form = contract_form(acme, name="Managed IT (renamed)", cycle="WEEKLY")
    for key in [key for key in form if key.startswith("lines-")]:
        del form[key]
    form.update({"lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "1", "lines-MIN_NUM_FORMS": "0",
                 "lines-MAX_NUM_FORMS": "1000"})  # fmt: skip
    response = staff_client.post(f"/admin/billing/contract/{contract.pk}/change/", form)
    assert response.status_code == 302
    contract.refresh_from_db()
    assert (contract.name, contract.cycle) == ("Managed IT (renamed)", "MONTHLY")
    assert contract.lines.get().amount == Decimal("1500.00")


def test_activate_action_starts_invoicing(staff_client, acme):
    contract = contract_create(organization=acme, terms=ContractTerms(name="IT", start_date=date(2026, 3, 1)),
                               lines=[FLAT])  # fmt: skip
    staff_client.post("/admin/billing/contract/", {"action": "activate", "_selected_action": [str(contract.pk)]})
    contract.refresh_from_db()
    assert (contract.status, contract.next_period_start) == ("ACTIVE", date(2026, 3, 1))


def manual(acme: Any) -> Invoice:
    return invoice_create(organization=acme, lines=[{"description": "Onsite visit", "unit_price": "300"}])


def act(client: Any, action: str, *invoices: Invoice) -> str:
    response = client.post(
        "/admin/billing/invoice/", {"action": action, "_selected_action": [str(i.pk) for i in invoices]}, follow=True
    )
    return response.content.decode()


def test_approve_charge_send_and_void_from_the_invoice_list(
    staff_client, acme, alice, mailoutbox, django_capture_on_commit_callbacks
):
    draft = manual(acme)
    with django_capture_on_commit_callbacks(execute=True):
        text = act(staff_client, "approve", draft)
    assert "1 invoice(s) approved and sent" in text
    draft.refresh_from_db()
    assert (draft.status, draft.number) == ("OPEN", 1)
    text = act(staff_client, "charge", draft)
    assert "no saved card" in text and PaymentAttempt.objects.count() == 0
    acme.stripe_customer_id = "cus_acme"
    acme.save(update_fields=["stripe_customer_id"])
    BillingSettings.objects.create(organization=acme, payment_method_id="pm_card_chargeDeclined")
    text = act(staff_client, "charge", draft)
    assert "declined" in text and PaymentAttempt.objects.get().status == "FAILED"
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        act(staff_client, "send_again", draft)
    assert len(mailoutbox) == 1
    other = invoice_finalize(invoice=manual(acme))
    text = act(staff_client, "void", draft, other)
    assert "2 invoice(s) voided" in text
    assert CreditNote.objects.count() == 2 and set(Invoice.objects.values_list("status", flat=True)) == {"VOID"}


def test_the_invoice_page_shows_lines_credit_notes_and_attempts(staff_client, acme, django_assert_max_num_queries):
    invoice = invoice_finalize(invoice=manual(acme))
    page = staff_client.get(f"/admin/billing/invoice/{invoice.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200 and "Onsite visit" in text and "Payment attempts" in text
    for _ in range(5):
        invoice_finalize(invoice=manual(acme))
    with django_assert_max_num_queries(20):
        assert staff_client.get("/admin/billing/invoice/?overdue=yes").status_code == 200
    for url in ("/admin/billing/paymentattempt/", "/admin/billing/billingsettings/", "/admin/billing/contract/"):
        assert staff_client.get(url).status_code == 200
