"""An invoice as the customer receives it: a branded A4 PDF and the context of the ``invoice`` email that carries it.

Rendering only: nothing here writes. The PDF is built with ReportLab's layout engine (platypus), so long
descriptions wrap inside their cell and a long invoice flows onto further pages with the column headings repeated.
Text is set in the PDF standard fonts (Helvetica), which every reader has, so nothing is embedded and the file stays
small. Amounts are shown with the currency's minor units (``billing.proration.minor_units``), thousands separators
and a leading minus sign on credits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import dateformat
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.enums import TA_RIGHT  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.lib.utils import ImageReader  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Image,
    KeepTogether,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from billing import proration
from billing.models import Invoice, InvoiceLine, InvoiceStatus

__all__ = ["format_amount", "invoice_email_context", "invoice_pdf", "invoice_pdf_filename"]

# The email lists this many lines; the PDF attached to it has them all.
EMAIL_LINES = 10

_MARGIN = 18 * mm
# What the page's frame leaves between its margins: platypus frames pad their content by 6 points on each side.
_LEFT = _MARGIN + 6
_WIDTH = A4[0] - 2 * _LEFT
_INK = colors.HexColor("#1c2430")
_MUTED = colors.HexColor("#4a5566")
_RULE = colors.HexColor("#d5dbe3")
_FAINT = colors.HexColor("#f4f6f9")


def format_amount(amount: Decimal, currency: str) -> str:
    """``amount`` rounded to ``currency``'s minor unit, with thousands separators and a leading minus on credits:
    ``1,234.50`` in AUD, ``-1,235`` in JPY."""
    value = proration.quantize(amount, currency)
    text = f"{abs(value):,.{proration.minor_units(currency)}f}"
    return f"-{text}" if value < 0 else text


def _format_unit_price(amount: Decimal, currency: str) -> str:
    # A unit price may be finer than the currency's minor unit (0.005 an API call): show up to the four places
    # stored rather than round a price the customer agreed to.
    places = proration.minor_units(currency)
    exponent = amount.quantize(Decimal("0.0001")).normalize().as_tuple().exponent
    finer = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    shown = max(places, min(4, finer))
    value = amount.quantize(Decimal(1).scaleb(-shown))
    text = f"{abs(value):,.{shown}f}"
    return f"-{text}" if value < 0 else text


def _format_quantity(quantity: Decimal) -> str:
    value = quantity.quantize(Decimal("0.0001")).normalize()
    return f"{value:,f}" if value else "0"


def _format_date(value: date) -> str:
    return dateformat.format(value, "j F Y")


def _period(start: date | None, end: date | None) -> str:
    """A period with an exclusive end, as people read it: ``1 March 2026 - 31 March 2026``."""
    if start is None or end is None:
        return ""
    last = max(start, end - timedelta(days=1))
    return f"{_format_date(start)} - {_format_date(last)}"


def _title(invoice: Invoice) -> str:
    if invoice.status == InvoiceStatus.DRAFT:
        return "Draft invoice"
    return "Tax invoice" if invoice.tax > 0 else "Invoice"


def _tax_name(invoice: Invoice) -> str:
    """The tax line's label with its rate: ``GST 10 %``."""
    rate = invoice.tax_rate.normalize()
    return f"{invoice.tax_label or 'Tax'} {rate:f} %"


def _shows_tax(invoice: Invoice) -> bool:
    return bool(invoice.tax or invoice.tax_label)


def invoice_pdf_filename(invoice: Invoice) -> str:
    """The attachment's file name: ``acme-INV-00042.pdf`` (ASCII only: the slug and the reference)."""
    return f"{invoice.organization.slug}-{invoice.reference.replace(' ', '-')}.pdf"


EMAIL_DATE = "j F Y"


def invoice_email_context(invoice: Invoice, pay_url: str) -> dict[str, Any]:
    """The context of ``templates/email/invoice.*``, in plain values (it is stored as a notice's JSON): amounts and
    dates already written out, the first ``EMAIL_LINES`` lines, and ``pay_url``. ``tenancy.emails`` adds branding."""
    currency = invoice.currency
    lines = list(invoice.lines.all())
    due = invoice.amount_due
    return {
        "reference": invoice.reference,
        "title": _title(invoice),
        "organization_name": invoice.organization.name,
        "currency": currency,
        "issue_date": dateformat.format(invoice.issue_date, EMAIL_DATE),
        "due_date": dateformat.format(invoice.due_date, EMAIL_DATE),
        "period": _period(invoice.period_start, invoice.period_end),
        "lines": [
            {
                "description": line.description,
                "quantity": _format_quantity(line.quantity),
                "amount": format_amount(line.amount, currency),
            }
            for line in lines[:EMAIL_LINES]
        ],
        "more_lines": max(0, len(lines) - EMAIL_LINES),
        "subtotal": format_amount(invoice.subtotal, currency),
        "shows_tax": _shows_tax(invoice),
        "tax_name": _tax_name(invoice),
        "tax": format_amount(invoice.tax, currency),
        "total": format_amount(invoice.total, currency),
        "amount_paid": format_amount(invoice.amount_paid, currency),
        "amount_due": format_amount(due, currency),
        "has_amount_due": proration.quantize(due, currency) > 0,
        "partly_paid": proration.quantize(invoice.amount_paid, currency) != 0,
        "memo": invoice.memo,
        "pay_url": pay_url,
    }


class _Styles:
    def __init__(self, primary: colors.Color) -> None:
        base = ParagraphStyle("base", fontName="Helvetica", fontSize=9, leading=11.5, textColor=_INK)
        self.body = base
        self.small = ParagraphStyle("small", base, fontSize=7.5, leading=9.5, textColor=_MUTED)
        self.right = ParagraphStyle("right", base, alignment=TA_RIGHT)
        self.brand = ParagraphStyle(
            "brand", base, fontName="Helvetica-Bold", fontSize=16, leading=20, textColor=primary
        )
        self.title = ParagraphStyle(
            "title", base, fontName="Helvetica-Bold", fontSize=18, leading=22, alignment=TA_RIGHT, textColor=primary
        )
        self.label = ParagraphStyle("label", base, fontName="Helvetica-Bold", fontSize=8, leading=10, textColor=_MUTED)


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text: user text is escaped, as ReportLab reads paragraph text as markup."""
    return Paragraph(escape(text), style)


def _logo(invoice: Invoice) -> Image | None:
    data = bytes(invoice.organization.brand_logo or b"")
    if not data:
        return None
    try:
        reader = ImageReader(BytesIO(data))
        width, height = reader.getSize()
    except Exception:  # the upload check reads only the magic bytes; an unreadable image leaves the name alone
        return None
    if not width or not height:
        return None
    scale = min(16 * mm / height, 50 * mm / width)
    return Image(BytesIO(data), width=width * scale, height=height * scale, hAlign="LEFT")


def _header(invoice: Invoice, styles: _Styles) -> list[Any]:
    organization = invoice.organization
    brand: list[Any] = [_p(organization.display_name, styles.brand)]
    logo = _logo(invoice)
    if logo is not None:
        brand.insert(0, logo)
    if organization.brand_support_email:
        brand.append(_p(organization.brand_support_email, styles.small))
    title = [_p(_title(invoice), styles.title), _p(invoice.reference, styles.right)]
    if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE):
        title.append(_p(invoice.get_status_display().upper(), styles.right))
    table = Table([[brand, title]], colWidths=[_WIDTH * 0.55, _WIDTH * 0.45])
    flush = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, -1), 0)]
    table.setStyle(TableStyle([*flush, ("RIGHTPADDING", (-1, 0), (-1, -1), 0)]))
    return [table, Spacer(1, 6 * mm)]


def _issuer(styles: _Styles) -> list[Any]:
    """Who issues the invoice (the MSP running Keel): a tax invoice names its supplier and the supplier's ABN."""
    name = settings.BILLING_ISSUER_NAME.strip()
    if not name:
        return []
    block = [_p("FROM", styles.label), _p(name, styles.body)]
    if settings.BILLING_ISSUER_ABN.strip():
        block.append(_p(f"ABN {settings.BILLING_ISSUER_ABN.strip()}", styles.body))
    block += [_p(line.strip(), styles.small) for line in settings.BILLING_ISSUER_ADDRESS.split(";") if line.strip()]
    if settings.BILLING_ISSUER_EMAIL.strip():
        block.append(_p(settings.BILLING_ISSUER_EMAIL.strip(), styles.small))
    return [*block, Spacer(1, 3 * mm)]


def _details(invoice: Invoice, styles: _Styles) -> list[Any]:
    rows = [
        ("Invoice number", invoice.reference),
        ("Issue date", _format_date(invoice.issue_date)),
        ("Due date", _format_date(invoice.due_date)),
    ]
    period = _period(invoice.period_start, invoice.period_end)
    if period:
        rows.append(("Period", period))
    rows.append(("Currency", invoice.currency))
    facts = Table(
        [[_p(label, styles.label), _p(value, styles.body)] for label, value in rows],
        colWidths=[28 * mm, _WIDTH * 0.5 - 28 * mm],
    )
    tight = [("LEFTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 1)]
    facts.setStyle(TableStyle([*tight, ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    bill_to = [*_issuer(styles), _p("BILL TO", styles.label), _p(invoice.organization.name, styles.body)]
    table = Table([[bill_to, facts]], colWidths=[_WIDTH * 0.5, _WIDTH * 0.5])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return [table, Spacer(1, 6 * mm)]


def _lines(invoice: Invoice, lines: Sequence[InvoiceLine], styles: _Styles) -> LongTable:
    currency = invoice.currency
    heading = ParagraphStyle("heading", styles.label, textColor=colors.white)
    heading_right = ParagraphStyle("heading_right", heading, alignment=TA_RIGHT)
    rows: list[list[Any]] = [
        [
            Paragraph("Description", heading),
            Paragraph("Quantity", heading_right),
            Paragraph("Unit price", heading_right),
            Paragraph(f"Amount ({escape(currency)})", heading_right),
        ]
    ]
    invoice_period = (invoice.period_start, invoice.period_end)
    for line in lines:
        description: list[Any] = [_p(line.description, styles.body)]
        if line.period_start and line.period_end and (line.period_start, line.period_end) != invoice_period:
            description.append(_p(_period(line.period_start, line.period_end), styles.small))
        rows.append(
            [
                description,
                _p(_format_quantity(line.quantity), styles.right),
                _p(_format_unit_price(line.unit_price, currency), styles.right),
                _p(format_amount(line.amount, currency), styles.right),
            ]
        )
    table = LongTable(rows, colWidths=[_WIDTH - 86 * mm, 20 * mm, 30 * mm, 36 * mm], repeatRows=1)
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), styles.brand.textColor),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 1), (-1, -1), 0.5, _RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]
    style += [("BACKGROUND", (0, row), (-1, row), _FAINT) for row in range(2, len(rows), 2)]
    table.setStyle(TableStyle(style))
    return table


def _totals(invoice: Invoice, styles: _Styles, due: Decimal) -> Table:
    currency = invoice.currency
    bold = ParagraphStyle("bold", styles.right, fontName="Helvetica-Bold")
    rows: list[tuple[str, Decimal, ParagraphStyle]] = [("Subtotal", invoice.subtotal, styles.right)]
    if _shows_tax(invoice):
        rows.append((_tax_name(invoice), invoice.tax, styles.right))
    rows += [
        (f"Total {currency}", invoice.total, bold),
        ("Amount paid", invoice.amount_paid, styles.right),
    ]
    credited = invoice.total - invoice.amount_paid - due
    if credited > 0 and invoice.status != InvoiceStatus.VOID:
        rows.append(("Credited", -credited, styles.right))
    rows.append((f"Amount due {currency}", due, bold))
    table = Table(
        [[_p(label, style), _p(format_amount(amount, currency), style)] for label, amount, style in rows],
        colWidths=[44 * mm, 36 * mm],
        hAlign="RIGHT",
    )
    total = next(index for index, row in enumerate(rows) if row[0] == f"Total {currency}")
    last = len(rows) - 1
    rules = [("LINEABOVE", (0, total), (-1, total), 0.75, _INK), ("LINEABOVE", (0, last), (-1, last), 0.5, _RULE)]
    table.setStyle(TableStyle([*rules, ("RIGHTPADDING", (-1, 0), (-1, -1), 6)]))
    return table


def _payment(invoice: Invoice, pay_url: str, styles: _Styles, owed: Decimal) -> list[Any]:
    currency = invoice.currency
    if proration.quantize(owed, currency) <= 0:
        text = "Nothing is due on this invoice. Thank you."
        return [_p(text, styles.body)]
    due = f"Please pay {currency} {format_amount(owed, currency)} by {_format_date(invoice.due_date)}."
    parts = [_p(due, styles.body)]
    if pay_url:
        link = escape(pay_url, {'"': "&quot;"})
        colour = styles.brand.textColor.hexval()[2:]
        parts.append(Paragraph(f'Pay online: <a href="{link}" color="#{colour}">{escape(pay_url)}</a>', styles.body))
    return parts


def invoice_pdf(invoice: Invoice, *, pay_url: str = "") -> bytes:
    """The invoice as an A4 PDF: the organization's branding, title (``Tax invoice`` when it carries tax), reference,
    dates and period, who is billed, every line, the totals with the tax line, what is due, and ``pay_url`` when
    given. Reads the organization, the lines and the credit notes (prefetch them to save the queries)."""
    organization = invoice.organization
    primary = colors.HexColor(organization.brand_primary_color or "#1f4e79")
    accent = colors.HexColor(organization.brand_accent_color or "#f2a900")
    styles = _Styles(primary)
    lines = list(invoice.lines.all())
    footer = f"{organization.display_name} | {invoice.reference}"

    def decorate(canvas: Any, document: Any) -> None:
        width, height = A4
        canvas.saveState()
        canvas.setFillColor(primary)
        canvas.rect(0, height - 7 * mm, width, 7 * mm, stroke=0, fill=1)
        canvas.setFillColor(accent)
        canvas.rect(0, height - 8.5 * mm, width, 1.5 * mm, stroke=0, fill=1)
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(_MUTED)
        canvas.drawString(_LEFT, 10 * mm, footer)
        canvas.drawRightString(width - _LEFT, 10 * mm, f"Page {document.page}")
        canvas.restoreState()

    story: list[Any] = [*_header(invoice, styles), *_details(invoice, styles), _lines(invoice, lines, styles)]
    owed = invoice.amount_due
    story += [Spacer(1, 4 * mm), KeepTogether([_totals(invoice, styles, owed)]), Spacer(1, 6 * mm)]
    if invoice.memo:
        story += [_p(invoice.memo, styles.body), Spacer(1, 3 * mm)]
    story += _payment(invoice, pay_url, styles, owed)

    buffer = BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"{_title(invoice)} {invoice.reference}",
        author=organization.display_name,
        subject=f"{invoice.reference} for {organization.name}",
        creator="Keel",
    )
    document.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()
