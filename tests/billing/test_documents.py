"""An invoice as the customer gets it: the branded PDF (read back here with the standard library) and the email."""

from __future__ import annotations

import base64
import re
import zlib
from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
from PIL import Image

from billing.documents import format_amount, invoice_email_context, invoice_pdf, invoice_pdf_filename
from billing.models import Invoice, InvoiceLine, InvoiceStatus, LineKind
from tenancy.emails import render_email

pytestmark = pytest.mark.django_db

D = Decimal
PAY_URL = "https://pay.keel.test/i/tok_123?a=1&b=2"
LONG = (
    "Managed endpoint protection for every workstation and server at the head office, the warehouse and the two "
    "branch offices, including after-hours monitoring, patching windows agreed in advance and monthly reports"
)


def make_invoice(
    organization, lines, *, number=42, currency="AUD", tax_rate="10", tax_label="GST", paid="0", status="OPEN", **fields
) -> Invoice:
    """An invoice with ``lines`` of (description, quantity, unit price), totals computed as invoicing does."""
    subtotal = sum((D(quantity) * D(price) for _, quantity, price in lines), D(0))
    tax = (subtotal * D(tax_rate) / 100).quantize(D(1) if currency == "JPY" else D("0.01"))
    invoice = Invoice.objects.create(
        organization=organization,
        number=number,
        status=status,
        currency=currency,
        issue_date=date(2026, 3, 1),
        due_date=date(2026, 3, 15),
        period_start=date(2026, 3, 1),
        period_end=date(2026, 4, 1),
        subtotal=subtotal,
        tax=tax,
        total=subtotal + tax,
        amount_paid=D(paid),
        tax_rate=D(tax_rate),
        tax_label=tax_label,
        **fields,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            organization=organization,
            invoice=invoice,
            position=position,
            description=description,
            quantity=D(quantity),
            unit_price=D(price),
            amount=D(quantity) * D(price),
            kind=LineKind.ADJUSTMENT if D(price) < 0 else LineKind.RECURRING,
        )
        for position, (description, quantity, price) in enumerate(lines)
    )
    return invoice


def pdf_streams(data: bytes) -> list[bytes]:
    """Every stream of the PDF, undoing ReportLab's ASCII85 and Flate filters."""
    streams = []
    for match in re.finditer(rb"<<(.*?)>>\s*stream\r?\n(.*?)endstream", data, re.DOTALL):
        header, body = match.groups()
        if b"/ASCII85Decode" in header:
            body = base64.a85decode(body.strip(), adobe=True)
        if b"/FlateDecode" in header:
            body = zlib.decompress(body)
        streams.append(body)
    return streams


def pdf_text(data: bytes) -> str:
    """The text drawn on the pages, one line of the PDF a line here: the strings shown (``(...) Tj``) joined, with a
    new line at each ``T*`` and at the end of each text object."""
    out: list[str] = []
    token = re.compile(rb"\((?:\\.|[^\\)])*\)|T\*|\bET\b", re.DOTALL)
    for stream in pdf_streams(data):
        for match in token.finditer(stream):
            item = match.group()
            if item in (b"T*", b"ET"):
                out.append("\n")
                continue
            raw = item[1:-1]
            raw = re.sub(rb"\\([0-7]{1,3})", lambda m: bytes([int(m.group(1), 8)]), raw)
            raw = re.sub(rb"\\(.)", rb"\1", raw)
            out.append(raw.decode("latin-1"))
    return "".join(out)


def page_count(data: bytes) -> int:
    found = re.search(rb"/Count (\d+) /Kids", data)
    assert found is not None
    return int(found.group(1))


@pytest.fixture
def invoice(acme) -> Invoice:
    acme.brand_display_name = "Acme Cloud"
    acme.brand_support_email = "billing@acme.test"
    acme.save()
    lines = [("Managed services", "1", "1000.00"), ("Extra users", "12", "15.50"), ("Goodwill credit", "1", "-50.00")]
    return make_invoice(acme, lines, memo="Thank you for your business.")


def test_the_pdf_is_a_branded_tax_invoice_with_dates_lines_totals_and_the_pay_link(invoice):
    data = invoice_pdf(invoice, pay_url=PAY_URL)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert b"/FlateDecode" in data  # the file sent is compressed; the text below is read back through the filter
    text = pdf_text(data)
    lines = text.splitlines()
    for expected in (
        "Acme Cloud",  # the brand at the top
        "Tax invoice",
        "INV-00042",
        "Acme Pty Ltd",  # billed to: the organization's own name
        "1 March 2026",
        "15 March 2026",
        "1 March 2026 - 31 March 2026",  # the period's end is exclusive
        "AUD",
        "Managed services",
        "1,000.00",
        "Extra users",
        "12",
        "15.50",
        "186.00",
        "Goodwill credit",
        "-50.00",
        "1,136.00",  # subtotal
        "GST 10 %",
        "113.60",
        "1,249.60",  # total and amount due
        "Thank you for your business.",
        f"Pay online: {PAY_URL}",
    ):
        assert expected in text, expected
    assert "Subtotal" in lines and "Total AUD" in lines and "Amount due AUD" in lines
    assert lines.count("1,249.60") == 2 and "0.00" in lines  # total, amount due; nothing paid yet
    assert "Page 1" in lines and "Acme Cloud | INV-00042" in lines
    assert b"/URI" in data and PAY_URL.encode() in data  # the pay link is a live link, not just text
    assert page_count(data) == 1


def test_an_invoice_without_tax_is_titled_invoice_and_shows_no_tax_line(globex):
    invoice = make_invoice(globex, [("Support block", "10", "150.00")], currency="USD", tax_rate="0", tax_label="")
    text = pdf_text(invoice_pdf(invoice))
    assert "Tax invoice" not in text and "Invoice" in text.splitlines()
    assert "Tax 0 %" not in text and "1,500.00" in text and "Pay online" not in text
    assert "Please pay USD 1,500.00 by 15 March 2026." in text


def test_eighty_lines_flow_onto_further_pages_with_headings_repeated_and_long_descriptions_wrapped(acme):
    lines = [(f"Line {n:02d} {LONG}", "1", "10.00") for n in range(1, 81)]
    invoice = make_invoice(acme, lines)
    data = invoice_pdf(invoice)
    text = pdf_text(data)
    pages = page_count(data)
    assert pages >= 3
    assert [f"Page {n}" in text.splitlines() for n in range(1, pages + 1)] == [True] * pages
    assert text.count("Description") == pages  # the column headings start every page of the table
    # Each description is printed whole, wrapped within its cell over several lines of the page.
    flowing = " ".join(text.split())
    assert all(f"Line {n:02d} {LONG}" in flowing for n in range(1, 81))
    assert not any("Managed endpoint" in line and "monthly reports" in line for line in text.splitlines())
    assert "800.00" in text and "880.00" in text  # subtotal and total


def test_the_pdf_reads_the_organization_and_the_lines_once(acme, django_assert_num_queries):
    invoice = make_invoice(acme, [(f"Line {n}", "1", "1.00") for n in range(80)])
    fresh = Invoice.objects.get(pk=invoice.pk)
    with django_assert_num_queries(3):  # the organization; the lines; the credit notes
        invoice_pdf(fresh)


def test_yen_are_shown_without_decimals(globex):
    invoice = make_invoice(globex, [("Managed services", "3", "412345"), ("Credit", "1", "-2345")], currency="JPY")
    text = pdf_text(invoice_pdf(invoice))
    lines = text.splitlines()
    assert "412,345" in lines and "1,237,035" in lines and "-2,345" in lines
    assert "1,234,690" in lines and "123,469" in lines and "1,358,159" in lines
    assert not re.search(r"\d\.\d", text)  # no minor units anywhere, not even in the unit prices
    assert "Amount (JPY)" in lines


def test_markup_in_user_text_is_printed_as_typed(acme):
    acme.brand_display_name = "Acme <b>&</b> Sons"
    acme.save()
    invoice = make_invoice(acme, [("<script>alert(1)</script> R&D", "1", "10.00")], memo="Ref <PO-1>")
    text = pdf_text(invoice_pdf(invoice, pay_url='https://pay.keel.test/?x=1&y="2"'))
    assert "<script>alert(1)</script> R&D" in text
    assert "Acme <b>&</b> Sons" in text and "Ref <PO-1>" in text
    assert 'Pay online: https://pay.keel.test/?x=1&y="2"' in text


def png(width: int, height: int) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (width, height), "#1f4e79").save(buffer, "PNG")
    return buffer.getvalue()


def test_the_logo_is_drawn_and_an_unreadable_one_is_left_out(acme):
    acme.brand_logo = png(300, 100)
    acme.save()
    invoice = make_invoice(acme, [("Managed services", "1", "10.00")])
    assert b"/Subtype /Image" in invoice_pdf(invoice)
    acme.brand_logo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # passes the upload's magic-byte check only
    acme.save()
    data = invoice_pdf(Invoice.objects.get(pk=invoice.pk))
    assert b"/Subtype /Image" not in data and "Acme Pty Ltd" in pdf_text(data)


def test_a_paid_invoice_says_nothing_is_due(acme):
    invoice = make_invoice(acme, [("Managed services", "1", "100.00")], paid="110.00", status=InvoiceStatus.PAID)
    text = pdf_text(invoice_pdf(invoice, pay_url=PAY_URL))
    assert "PAID" in text.splitlines() and "Nothing is due on this invoice. Thank you." in text
    assert "Pay online" not in text


def test_the_file_name_is_the_organization_and_the_reference(acme, invoice):
    assert invoice_pdf_filename(invoice) == "acme-INV-00042.pdf"
    draft = make_invoice(acme, [("Managed services", "1", "1.00")], number=None, status=InvoiceStatus.DRAFT)
    assert invoice_pdf_filename(draft) == f"acme-Draft-{str(draft.pk)[:8]}.pdf"
    assert "Draft invoice" in pdf_text(invoice_pdf(draft))


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("1234567.005", "AUD", "1,234,567.01"),
        ("-1234.5", "AUD", "-1,234.50"),
        ("-0.001", "AUD", "0.00"),
        ("0", "USD", "0.00"),
        ("1234.5", "JPY", "1,235"),
        ("-1234.5", "JPY", "-1,235"),
        ("1.2345", "KWD", "1.235"),
    ],
)
def test_amounts_have_the_currency_minor_units_separators_and_a_minus_on_credits(amount, currency, shown):
    assert format_amount(D(amount), currency) == shown


def test_the_email_shows_the_reference_amounts_lines_and_a_pay_button_in_the_brand(invoice):
    invoice.organization.brand_primary_color = "#aa3311"
    invoice.lines.filter(position=1).update(description="<script>alert('x')</script> & more")
    message = render_email("invoice", invoice_email_context(invoice, PAY_URL), invoice.organization)
    assert message["subject"] == "Tax invoice INV-00042 for Acme Pty Ltd: AUD 1,249.60 due 15 March 2026"
    html, text = message["html"], message["text"]
    assert 'href="https://pay.keel.test/i/tok_123?a=1&amp;b=2"' in html and ">Pay invoice</a>" in html
    assert "INV-00042" in html and "AUD 1,249.60" in html and "15 March 2026" in html
    assert "Acme Cloud" in html and "#aa3311" in html and "billing@acme.test" in html
    assert "GST 10 %" in html and "113.60" in html and "-50.00" in html and "Managed services" in html
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
    assert text.startswith(
        "Hello,\n\nPlease find attached tax invoice INV-00042 for Acme Pty Ltd, covering 1 March 2026 - 31"
    )
    assert PAY_URL in text and "Total: AUD 1,249.60" in text
    assert "Amount due: AUD 1,249.60 by 15 March 2026." in text
    assert "- <script>alert('x')</script> & more x 12: AUD 186.00" in text  # plain text: printed as typed
    assert "- Goodwill credit x 1: AUD -50.00" in text and "Questions? Write to billing@acme.test." in text


def test_the_email_lists_the_first_lines_and_counts_the_rest(acme):
    invoice = make_invoice(acme, [(f"Item {n}", "1", "1000") for n in range(1, 26)])
    context = invoice_email_context(invoice, PAY_URL)
    assert [line["description"] for line in context["lines"]] == [f"Item {n}" for n in range(1, 11)]
    message = render_email("invoice", context, acme)
    assert "And 15 more lines: see the PDF." in message["html"] and "Item 11" not in message["html"]
    assert "- and 15 more lines: see the PDF." in message["text"]
    assert "AUD 27,500.00" in message["html"]


def test_the_email_of_a_paid_invoice_has_no_pay_button(acme):
    invoice = make_invoice(acme, [("Managed services", "1", "100.00")], paid="110.00", status=InvoiceStatus.PAID)
    message = render_email("invoice", invoice_email_context(invoice, PAY_URL), acme)
    assert "Pay invoice" not in message["html"] and PAY_URL not in message["text"]
    assert "paid in full" in message["html"] and "paid in full" in message["text"]
    assert message["subject"] == "Tax invoice INV-00042 for Acme Pty Ltd"


def test_the_issuer_and_its_abn_head_the_invoice(invoice, settings):
    settings.BILLING_ISSUER_NAME = "Summit IT Services Pty Ltd"
    settings.BILLING_ISSUER_ABN = "51 824 753 556"
    settings.BILLING_ISSUER_ADDRESS = "Level 4, 12 Pitt Street; Sydney NSW 2000"
    settings.BILLING_ISSUER_EMAIL = "accounts@summit.test"
    lines = [line for line in pdf_text(invoice_pdf(invoice)).splitlines() if line]
    start = lines.index("FROM")
    assert lines[start : start + 6] == [
        "FROM",
        "Summit IT Services Pty Ltd",
        "ABN 51 824 753 556",
        "Level 4, 12 Pitt Street",
        "Sydney NSW 2000",
        "accounts@summit.test",
    ]
    assert lines.index("BILL TO") > start
    settings.BILLING_ISSUER_NAME = ""
    assert "FROM" not in pdf_text(invoice_pdf(invoice)).splitlines()


def test_a_credited_invoice_asks_for_what_is_left(acme):
    from billing.models import CreditNote

    invoice = make_invoice(acme, [("Managed services", "1", "1000.00")])  # 1,100.00 with GST
    CreditNote.objects.create(organization=acme, number=1, invoice=invoice, kind="adjustment", reason="Outage",
                              subtotal=D("200.00"), tax=D("20.00"), total=D("220.00"), currency="AUD")  # fmt: skip
    lines = [line for line in pdf_text(invoice_pdf(invoice, pay_url=PAY_URL)).splitlines() if line]
    assert lines[lines.index("Credited") + 1] == "-220.00"
    assert lines[lines.index("Amount due AUD") + 1] == "880.00"
    assert "Please pay AUD 880.00 by 15 March 2026." in lines
    assert invoice_email_context(invoice, PAY_URL)["amount_due"] == "880.00"
