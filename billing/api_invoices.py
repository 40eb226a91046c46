"""Invoices in the partner API: list and read them, manual invoices and their draft lines, finalizing, voiding,
credit notes, the PDF, and a run of recurring invoicing.

Access follows ``billing.api_contracts.BillingAPIView``: keys need ``billing:read`` / ``billing:write``; staff may do
everything; customers (owners, admins and managers) may read their organizations' invoices and download the PDFs,
but never see drafts (an invoice under review is not theirs yet). Running invoicing is for staff and partner keys.
Another organization's invoice is 404 on every route.

Writes to an invoice's lines answer with the whole invoice: its totals change with every line.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, Prefetch, QuerySet
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, renderers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api_contracts import BillingAPIView, parse_int, parse_uuid
from billing.filters import InvoiceFilter
from billing.models import CreditNote, Invoice, InvoiceLine, InvoiceStatus, PaymentAttempt
from billing.serializers import (
    FORBIDDEN,
    GENERATE_RESULT,
    INVOICE_ID,
    INVOICE_NOT_FOUND,
    LINE_ID,
    NOT_DRAFT,
    CreditNoteCreateSerializer,
    CreditNoteSerializer,
    InvoiceCreateSerializer,
    InvoiceDetailSerializer,
    InvoiceGenerateSerializer,
    InvoiceLineInputSerializer,
    InvoiceSerializer,
    InvoiceVoidSerializer,
    check_invoice_size,
    check_line,
)
from billing.services.collection import invoice_charge
from billing.services.invoices import (
    credit_note_create,
    invoice_create,
    invoice_finalize,
    invoice_line_delete,
    invoice_line_update,
    invoice_lines_add,
    invoice_resend,
    invoice_void,
    line_input,
)
from billing.services.invoicing import invoices_generate
from tenancy.api_base import PAGE_PARAMETERS, refuse_unknown, represent_many, request_object
from tenancy.api_cache import cached_list
from tenancy.models import Organization

LINE_KEYS = ("description", "quantity", "unit_price", "kind")
CONFLICT = OpenApiResponse(description="The invoice's status does not allow this.")


class InvoiceAPIView(BillingAPIView):
    def invoices(self) -> QuerySet[Invoice]:
        scoped = self.scoped(Invoice.objects.all())
        if self.caller.is_customer:  # drafts, and drafts voided before they were issued, are not theirs
            scoped = scoped.exclude(status=InvoiceStatus.DRAFT).exclude(number__isnull=True)
        return (
            scoped.select_related("organization")
            .defer("organization__brand_logo")  # up to 256 KB, never read here, and it would come with every row
            .prefetch_related(Prefetch("credit_notes", queryset=CreditNote.objects.order_by("number")))
            .order_by(F("issue_date").desc(), F("number").desc(nulls_first=True), "-created_at", "id")
        )

    def get_invoice(self, pk: str) -> Invoice:
        invoice = (
            self.invoices()
            .prefetch_related(
                Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "id")),
                Prefetch("attempts", queryset=PaymentAttempt.objects.order_by("number")),
            )
            .filter(pk=parse_uuid(pk, "invoice"))
            .first()
        )
        if invoice is None:
            raise exceptions.NotFound("No such invoice.")
        return invoice

    def get_line(self, invoice: Invoice, line_id: str) -> InvoiceLine:
        line = (
            InvoiceLine.objects.for_org(invoice.organization_id)
            .filter(invoice=invoice, pk=parse_int(line_id, "invoice line"))
            .first()
        )
        if line is None:
            raise exceptions.NotFound("No such invoice line.")
        line.invoice = invoice
        return line

    def invoice_data(self, pk: str) -> dict[str, Any]:
        return dict(InvoiceDetailSerializer(self.get_invoice(pk), context={"now": timezone.now()}).data)


# -- views -------------------------------------------------------------------------------------------------------------


class InvoiceViewSet(InvoiceAPIView, viewsets.GenericViewSet):
    """Invoices, newest first. List (filters ``status`` with the derived ``overdue``, ``organization``, ``contract``,
    ``issued_from``, ``issued_to``): each row has its totals. Read one: with its lines and credit notes. Create a
    manual invoice (not tied to a contract period): a draft to review, edit and finalize."""

    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilter
    queryset = Invoice.objects.none()  # the real queryset depends on the caller: see get_queryset

    def get_queryset(self) -> QuerySet[Invoice]:
        if getattr(self, "swagger_fake_view", False):
            return Invoice.objects.none()
        return self.invoices()

    @extend_schema(parameters=PAGE_PARAMETERS, responses=InvoiceSerializer(many=True))
    def list(self, request: Request) -> HttpResponseBase:
        def build() -> Response:
            page = self.paginate_queryset(self.filter_queryset(self.get_queryset())) or []
            return self.get_paginated_response(represent_many(InvoiceSerializer, page, now=timezone.now()))

        return cached_list(self, build)

    @extend_schema(request=InvoiceCreateSerializer, responses={201: InvoiceDetailSerializer, 403: FORBIDDEN})
    def create(self, request: Request) -> Response:
        organization = self.tenant.require_organization()
        incoming = InvoiceCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        invoice = invoice_create(
            organization=organization,
            lines=values["lines"],
            actor=self.caller.user,
            payment_terms_days=values["payment_terms_days"],
            tax_rate=values["tax_rate"],
            tax_label=values["tax_label"],
            memo=values["memo"],
        )
        return Response(self.invoice_data(str(invoice.pk)), status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[INVOICE_ID], responses={200: InvoiceDetailSerializer, 404: INVOICE_NOT_FOUND})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.invoice_data(pk))


class InvoiceLinesView(InvoiceAPIView):
    """Add a line to a draft invoice (409 once it is finalized)."""

    @extend_schema(
        parameters=[INVOICE_ID],
        request=InvoiceLineInputSerializer,
        responses={201: InvoiceDetailSerializer, 403: FORBIDDEN, 404: INVOICE_NOT_FOUND, 409: NOT_DRAFT},
    )
    def post(self, request: Request, pk: str) -> Response:
        invoice = self.get_invoice(pk)
        data = request_object(request)
        values = check_line(data, InvoiceLineInputSerializer)
        amounts = [line.amount for line in invoice.lines.all()]
        check_invoice_size([*amounts, values["quantity"] * values["unit_price"]], "unit_price")
        line_input(data)  # the service's rules, with errors naming the field itself (not lines[0].field)
        invoice_lines_add(invoice=invoice, lines=[data], actor=self.caller.user)
        return Response(self.invoice_data(pk), status=status.HTTP_201_CREATED)


class InvoiceLineDetailView(InvoiceAPIView):
    """Change or delete a line of a draft invoice (409 once it is finalized, or when it is the last line)."""

    @extend_schema(
        parameters=[INVOICE_ID, LINE_ID],
        request=InvoiceLineInputSerializer(partial=True),
        responses={200: InvoiceDetailSerializer, 403: FORBIDDEN, 404: INVOICE_NOT_FOUND, 409: NOT_DRAFT},
    )
    def patch(self, request: Request, pk: str, line_id: str) -> Response:
        invoice = self.get_invoice(pk)
        line = self.get_line(invoice, line_id)
        data = request_object(request)
        refuse_unknown(data, LINE_KEYS)
        if not data:
            raise exceptions.ValidationError({"non_field_errors": [f"Give one or more of {', '.join(LINE_KEYS)}."]})
        current = {
            "description": line.description,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "kind": line.kind,
        }
        values = check_line({**current, **data}, InvoiceLineInputSerializer)
        others = [other.amount for other in invoice.lines.all() if other.pk != line.pk]
        check_invoice_size([*others, values["quantity"] * values["unit_price"]], "unit_price")
        invoice_line_update(line=line, data=data, actor=self.caller.user)
        return Response(self.invoice_data(pk))

    @extend_schema(
        parameters=[INVOICE_ID, LINE_ID],
        request=None,
        responses={200: InvoiceDetailSerializer, 403: FORBIDDEN, 404: INVOICE_NOT_FOUND, 409: NOT_DRAFT},
    )
    def delete(self, request: Request, pk: str, line_id: str) -> Response:
        invoice = self.get_invoice(pk)
        invoice_line_delete(line=self.get_line(invoice, line_id), actor=self.caller.user)
        return Response(self.invoice_data(pk))


class InvoiceFinalizeView(InvoiceAPIView):
    """Number a draft (the organization's next invoice number, without gaps) and open it for payment; it is emailed
    to the customer. Finalizing an open invoice again changes nothing; a void or paid one is 409."""

    @extend_schema(
        parameters=[INVOICE_ID],
        request=None,
        responses={200: InvoiceDetailSerializer, 403: FORBIDDEN, 404: INVOICE_NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, pk: str) -> Response:
        invoice_finalize(invoice=self.get_invoice(pk), actor=self.caller.user)
        return Response(self.invoice_data(pk))


class InvoiceVoidView(InvoiceAPIView):
    """Void a draft or open invoice, saying why. An open invoice was sent: it gets a credit note for what was not yet
    credited. A paid invoice is refunded instead (409)."""

    @extend_schema(
        parameters=[INVOICE_ID],
        request=InvoiceVoidSerializer,
        responses={200: InvoiceDetailSerializer, 403: FORBIDDEN, 404: INVOICE_NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, pk: str) -> Response:
        invoice = self.get_invoice(pk)
        incoming = InvoiceVoidSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        invoice_void(invoice=invoice, reason=incoming.validated_data["reason"], actor=self.caller.user)
        return Response(self.invoice_data(pk))


class InvoiceSendView(InvoiceAPIView):
    """Email the invoice (with its PDF and pay link) to the organization's billing contacts again. Drafts and void
    invoices are not sent (409)."""

    @extend_schema(
        parameters=[INVOICE_ID],
        request=None,
        responses={202: InvoiceDetailSerializer, 403: FORBIDDEN, 404: INVOICE_NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, pk: str) -> Response:
        invoice_resend(invoice=self.get_invoice(pk), actor=self.caller.user)
        return Response(self.invoice_data(pk), status=status.HTTP_202_ACCEPTED)


class InvoiceRetryPaymentView(InvoiceAPIView):
    """Charge the organization's saved card now for what the invoice owes (a new payment attempt, outside the retry
    schedule; hard declines are worth a retry only once the customer has a new card). 409 when nothing is owed,
    no card is saved, or a payment is still processing. The answer carries the attempt's outcome."""

    @extend_schema(
        parameters=[INVOICE_ID],
        request=None,
        responses={200: InvoiceDetailSerializer, 403: FORBIDDEN, 404: INVOICE_NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, pk: str) -> Response:
        invoice = self.get_invoice(pk)
        invoice_charge(
            invoice_id=invoice.pk, organization_id=invoice.organization_id, trigger="staff", actor=self.caller.user
        )
        return Response(self.invoice_data(pk))


class InvoiceCreditNotesView(InvoiceAPIView, generics.GenericAPIView[CreditNote]):
    """An invoice's credit notes, oldest first; credit part of an open or paid invoice (an amount before tax)."""

    serializer_class = CreditNoteSerializer
    queryset = CreditNote.objects.none()  # see get()
    filter_backends: list[Any] = []

    @extend_schema(
        parameters=[INVOICE_ID, *PAGE_PARAMETERS],
        responses={200: CreditNoteSerializer(many=True), 404: INVOICE_NOT_FOUND},
    )
    def get(self, request: Request, pk: str) -> Response:
        invoice = self.get_invoice(pk)
        notes = CreditNote.objects.for_org(invoice.organization_id).filter(invoice=invoice).order_by("number")
        page = self.paginate_queryset(notes) or []
        return self.get_paginated_response(represent_many(CreditNoteSerializer, page))

    @extend_schema(
        parameters=[INVOICE_ID],
        request=CreditNoteCreateSerializer,
        responses={201: CreditNoteSerializer, 403: FORBIDDEN, 404: INVOICE_NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, pk: str) -> Response:
        invoice = self.get_invoice(pk)
        incoming = CreditNoteCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        note = credit_note_create(
            invoice=invoice, amount=values["amount"], reason=values["reason"], actor=self.caller.user
        )
        return Response(CreditNoteSerializer(note).data, status=status.HTTP_201_CREATED)


class PdfRenderer(renderers.BaseRenderer):
    """Lets a client ask for ``Accept: application/pdf``; errors are still JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, bytes):
            return data
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return renderers.JSONRenderer().render(data)


class InvoicePdfView(InvoiceAPIView):
    """The invoice as a PDF, to download."""

    renderer_classes = [renderers.JSONRenderer, PdfRenderer]

    @extend_schema(
        parameters=[INVOICE_ID],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 404: INVOICE_NOT_FOUND},
    )
    def get(self, request: Request, pk: str) -> HttpResponse:
        invoice = self.get_invoice(pk)
        from billing import documents  # imported when a PDF is asked for: it loads the PDF library

        response = HttpResponse(documents.invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=documents.invoice_pdf_filename(invoice)
        )
        return response


class InvoiceGenerateView(BillingAPIView):
    """Run recurring invoicing now: every contract period due on or before ``date`` (default: today in each
    organization's zone) becomes an invoice, as the nightly job does. A dry run reports the invoices it would create
    and writes nothing. For the organization in ``X-Organization``, or without it every organization the caller
    sees. Staff and partner keys only."""

    partner_wide_writes = True

    @extend_schema(
        request=InvoiceGenerateSerializer,
        responses={
            200: GENERATE_RESULT,
            403: OpenApiResponse(description="Not staff or a partner key with billing:write."),
        },
    )
    def post(self, request: Request) -> Response:
        if not (self.caller.is_staff or self.caller.is_partner_key):
            raise exceptions.PermissionDenied("Only staff and partner keys run invoicing.")
        incoming = InvoiceGenerateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        targets: list[Organization] = (
            [self.tenant.organization]
            if self.tenant.organization is not None
            else list(self.tenant.organizations.order_by("name", "id"))
        )
        result: dict[str, Any] = {"created": 0, "contracts": 0, "invoices": [], "dry_run": values["dry_run"]}
        for organization in targets:
            report = invoices_generate(through=values.get("date"), dry_run=values["dry_run"], organization=organization)
            result["created"] += report.created
            result["contracts"] += report.contracts
            result["invoices"] += report.lines
        return Response(result)


invoice_list_view = InvoiceViewSet.as_view({"get": "list", "post": "create"})
invoice_detail_view = InvoiceViewSet.as_view({"get": "retrieve"})
invoice_lines_view = InvoiceLinesView.as_view()
invoice_line_detail_view = InvoiceLineDetailView.as_view()
invoice_finalize_view = InvoiceFinalizeView.as_view()
invoice_void_view = InvoiceVoidView.as_view()
invoice_credit_notes_view = InvoiceCreditNotesView.as_view()
invoice_send_view = InvoiceSendView.as_view()
invoice_retry_payment_view = InvoiceRetryPaymentView.as_view()
invoice_pdf_view = InvoicePdfView.as_view()
invoice_generate_view = InvoiceGenerateView.as_view()
