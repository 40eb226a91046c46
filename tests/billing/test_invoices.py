"""An invoice after it is made: manual drafts and their lines, finalizing with the next number, voiding with a
credit note, partial credits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from billing.models import CreditNote, Invoice, InvoiceStatus
from billing.services.contracts import ContractTerms, contract_create
from billing.services.invoices import (
    amount_due,
    credit_note_create,
    invoice_create,
    invoice_finalize,
    invoice_line_delete,
    invoice_line_update,
    invoice_lines_add,
    invoice_void,
)
from billing.services.invoicing import invoices_generate
from events.models import Event
from notifications.models import Notice
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import AuditEvent
from tests.helpers import race

pytestmark = pytest.mark.django_db

D = Decimal


def manual(organization, *lines: tuple[str, str, str], **options) -> Invoice:
    return invoice_create(
        organization=organization,
        lines=[{"description": d, "quantity": q, "unit_price": p} for d, q, p in lines],
        issue_date=date(2026, 3, 2),
        **options,
    )


def test_a_manual_invoice_is_a_draft_with_totals_from_its_lines(acme):
    invoice = manual(acme, ("Server migration", "6", "165.00"), ("Cabling", "1", "89.95"))
    assert (invoice.status, invoice.number, invoice.currency) == (InvoiceStatus.DRAFT, None, "AUD")
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("1079.95"), D("108.00"), D("1187.95"))
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 3, 2), date(2026, 3, 16))
    assert AuditEvent.objects.filter(action="invoice.created").count() == 1


def test_bad_lines_name_their_fields_and_nothing_is_written(acme):
    with pytest.raises(ServiceValidationError) as bad:
        invoice_create(
            organization=acme,
            lines=[{"description": "", "quantity": "-1", "unit_price": "x"}, "not a line"],  # type: ignore[list-item]
            tax_rate=D("120"),
        )
    assert {
        "lines[0].description",
        "lines[0].quantity",
        "lines[0].unit_price",
        "lines[1].description",
        "tax_rate",
    } <= set(bad.value.message_dict)
    with pytest.raises(ServiceValidationError) as empty:
        invoice_create(organization=acme, lines=[])
    assert "lines" in empty.value.message_dict
    assert not Invoice.objects.exists()


def test_draft_lines_can_be_added_changed_and_removed(acme):
    invoice = manual(acme, ("Labour", "2", "100.00"))
    invoice_lines_add(invoice=invoice, lines=[{"description": "Discount", "quantity": "1", "unit_price": "-20.00"}])
    invoice.refresh_from_db()
    assert invoice.subtotal == D("180.00")
    labour = invoice.lines.get(description="Labour")
    invoice_line_update(line=labour, data={"quantity": "3"})
    invoice.refresh_from_db()
    assert (invoice.subtotal, invoice.total) == (D("280.00"), D("308.00"))
    invoice_line_delete(line=invoice.lines.get(description="Discount"))
    invoice.refresh_from_db()
    assert invoice.subtotal == D("300.00")
    with pytest.raises(ConflictError):
        invoice_line_delete(line=invoice.lines.get())  # the last line


def test_finalizing_numbers_the_draft_and_emails_it_after_commit(acme, django_capture_on_commit_callbacks):
    first = manual(acme, ("Labour", "1", "100.00"))
    second = manual(acme, ("Labour", "1", "50.00"))
    with django_capture_on_commit_callbacks() as callbacks:
        finalized = invoice_finalize(invoice=second)
    assert (finalized.status, finalized.number, finalized.reference) == (InvoiceStatus.OPEN, 1, "INV-00001")
    assert len(callbacks) == 2  # the event's fan-out and the email job wait for the commit
    assert invoice_finalize(invoice=second).number == 1  # again: nothing changes
    assert invoice_finalize(invoice=first).number == 2
    assert Event.objects.filter(type="invoice.finalized").count() == 2
    with pytest.raises(ConflictError):
        invoice_lines_add(invoice=finalized, lines=[{"description": "More", "quantity": "1", "unit_price": "1"}])


def test_finalizing_continues_the_numbers_of_generated_invoices(acme):
    contract_create(
        organization=acme,
        terms=ContractTerms(name="IT", start_date=date(2026, 3, 1)),
        lines=[{"description": "Managed", "pricing_model": "FLAT", "amount": "100.00"}],
        activate=True,
    )
    invoices_generate(through=date(2026, 4, 1))
    assert invoice_finalize(invoice=manual(acme, ("Extra", "1", "10.00"))).number == 3


def test_voiding_an_open_invoice_credits_it_in_full(acme):
    invoice = invoice_finalize(invoice=manual(acme, ("Labour", "1", "100.00")))
    voided = invoice_void(invoice=invoice, reason="Billed to the wrong organization")
    assert (voided.status, voided.number) == (InvoiceStatus.VOID, 1)
    note = CreditNote.objects.get()
    assert (note.reference, note.kind, note.subtotal, note.tax, note.total) == (
        "CN-00001",
        "void",
        D("100.00"),
        D("10.00"),
        D("110.00"),
    )
    assert invoice_void(invoice=invoice, reason="again").status == InvoiceStatus.VOID
    assert CreditNote.objects.count() == 1
    with pytest.raises(ServiceValidationError):
        invoice_void(invoice=manual(acme, ("X", "1", "1")), reason=" ")


def test_voiding_a_draft_needs_no_credit_note(acme):
    invoice_void(invoice=manual(acme, ("Labour", "1", "100.00")), reason="Not needed")
    assert not CreditNote.objects.exists()


def test_a_paid_invoice_cannot_be_voided(acme):
    invoice = invoice_finalize(invoice=manual(acme, ("Labour", "1", "100.00")))
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.PAID, amount_paid=D("110.00"))
    with pytest.raises(ConflictError):
        invoice_void(invoice=invoice, reason="Oops")


def test_partial_credits_lower_the_amount_due_up_to_the_subtotal(acme):
    invoice = invoice_finalize(invoice=manual(acme, ("Labour", "4", "50.00")))
    note = credit_note_create(invoice=invoice, amount="50.00", reason="One hour was not worked")
    assert (note.total, amount_due(invoice)) == (D("55.00"), D("165.00"))
    with pytest.raises(ServiceValidationError) as bad:
        credit_note_create(invoice=invoice, amount="150.01", reason="Too much")
    assert bad.value.message_dict == {"amount": ["At most 150.00 is left to credit."]}
    credit_note_create(invoice=invoice, amount="150.00", reason="The rest")
    assert amount_due(invoice) == D("0")
    voided = invoice_void(invoice=invoice, reason="Cancelled")  # nothing left to credit: no third note
    assert voided.status == InvoiceStatus.VOID and CreditNote.objects.count() == 2


def test_credit_notes_and_invoices_number_separately(acme, globex):
    first = invoice_finalize(invoice=manual(acme, ("A", "1", "10.00")))
    invoice_finalize(invoice=manual(globex, ("B", "1", "10.00")))
    credit_note_create(invoice=first, amount="1.00", reason="r")
    assert invoice_finalize(invoice=manual(acme, ("C", "1", "10.00"))).number == 2
    assert CreditNote.objects.get().number == 1


@pytest.mark.django_db(transaction=True)
def test_finalizing_at_once_never_repeats_or_skips_a_number(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    drafts = [manual(acme, (f"Item {n}", "1", "10.00")) for n in range(8)]
    queue = list(drafts)

    def finalize_next() -> list[int | None]:
        numbers = []
        while queue:
            try:
                draft = queue.pop()
            except IndexError:
                break
            numbers.append(invoice_finalize(invoice=draft).number)
        return numbers

    outcomes = race(finalize_next, 4)
    assert sorted(n or 0 for numbers in outcomes for n in numbers) == list(range(1, 9))


def test_the_finalized_invoice_is_emailed_with_its_pdf_to_owners_and_admins(
    acme, alice, mailoutbox, django_capture_on_commit_callbacks
):
    from tenancy.models import Role
    from tests.factories import MembershipFactory, UserFactory

    MembershipFactory(user=UserFactory(email="admin@acme.test"), organization=acme, role=Role.ADMIN)
    MembershipFactory(user=UserFactory(email="member@acme.test"), organization=acme, role=Role.MEMBER)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_finalize(invoice=manual(acme, ("Labour", "1", "100.00")))
    assert sorted(to for mail in mailoutbox for to in mail.to) == ["admin@acme.test", "alice@acme.test"]
    for mail in mailoutbox:  # one email each, through the notification's delivery with its retries
        assert "INV-00001" in mail.subject and f"/billing/invoices/{invoice.pk}/" in mail.body
        ((name, content, kind),) = mail.attachments
        assert (name.endswith("INV-00001.pdf"), content[:5], kind) == (True, b"%PDF-", "application/pdf")
    invoice.refresh_from_db()
    assert invoice.sent_at is not None
    (notice,) = Notice.objects.for_org(acme).filter(event_type="invoice.issued")
    assert notice.template == "invoice"
    assert notice.context["attachments"] == [{"kind": "invoice_pdf", "id": str(invoice.pk)}]


def test_nothing_is_emailed_for_an_invoice_voided_before_the_job_ran(acme, alice, mailoutbox):
    from billing.services.invoices import invoice_email

    invoice = invoice_finalize(invoice=manual(acme, ("Labour", "1", "100.00")))
    invoice_void(invoice=invoice, reason="Wrong customer")
    assert invoice_email(invoice_id=str(invoice.pk), organization_id=str(acme.pk)) is False and mailoutbox == []


def test_the_email_job_finds_no_invoice_under_another_organization(
    acme, globex, alice, mailoutbox, django_capture_on_commit_callbacks
):
    from billing.services.invoices import invoice_email

    invoice = invoice_finalize(invoice=manual(acme, ("Labour", "1", "100.00")))
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_email(invoice_id=str(invoice.pk), organization_id=str(globex.pk)) is False
        assert invoice_email(invoice_id=str(invoice.pk), organization_id=str(acme.pk)) is True
    assert len(mailoutbox) == 1


def test_the_batch_email_job_run_again_does_not_send_twice(acme, alice, mailoutbox, django_capture_on_commit_callbacks):
    from billing.tasks import send_invoices

    invoice = invoice_finalize(invoice=manual(acme, ("Labour", "1", "100.00")))
    jobs = [(str(invoice.pk), str(acme.pk), False)]
    with django_capture_on_commit_callbacks(execute=True):
        assert send_invoices(jobs) == 1
        assert send_invoices(jobs) == 0  # a redelivered job after a crash
    assert len(mailoutbox) == 1
