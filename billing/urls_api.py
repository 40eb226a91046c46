"""Contract and invoice routes, included under /api/ by msp.api_urls; served with and without a trailing slash."""

from django.urls import re_path

from billing import api_contracts, api_invoices

urlpatterns = [
    re_path(r"^contracts/?$", api_contracts.contract_list_view, name="api-contract-list"),
    re_path(
        r"^contracts/(?P<pk>[^/]+)/activate/?$", api_contracts.contract_activate_view, name="api-contract-activate"
    ),
    re_path(r"^contracts/(?P<pk>[^/]+)/lines/?$", api_contracts.contract_lines_view, name="api-contract-lines"),
    re_path(
        r"^contracts/(?P<pk>[^/]+)/lines/(?P<line_id>[^/]+)/?$",
        api_contracts.contract_line_detail_view,
        name="api-contract-line-detail",
    ),
    re_path(r"^contracts/(?P<pk>[^/]+)/usage/?$", api_contracts.contract_usage_view, name="api-contract-usage"),
    re_path(r"^contracts/(?P<pk>[^/]+)/?$", api_contracts.contract_detail_view, name="api-contract-detail"),
    re_path(r"^invoices/?$", api_invoices.invoice_list_view, name="api-invoice-list"),
    re_path(r"^invoices/generate/?$", api_invoices.invoice_generate_view, name="api-invoice-generate"),
    re_path(r"^invoices/(?P<pk>[^/]+)/lines/?$", api_invoices.invoice_lines_view, name="api-invoice-lines"),
    re_path(
        r"^invoices/(?P<pk>[^/]+)/lines/(?P<line_id>[^/]+)/?$",
        api_invoices.invoice_line_detail_view,
        name="api-invoice-line-detail",
    ),
    re_path(r"^invoices/(?P<pk>[^/]+)/finalize/?$", api_invoices.invoice_finalize_view, name="api-invoice-finalize"),
    re_path(r"^invoices/(?P<pk>[^/]+)/void/?$", api_invoices.invoice_void_view, name="api-invoice-void"),
    re_path(r"^invoices/(?P<pk>[^/]+)/send/?$", api_invoices.invoice_send_view, name="api-invoice-send"),
    re_path(
        r"^invoices/(?P<pk>[^/]+)/retry-payment/?$",
        api_invoices.invoice_retry_payment_view,
        name="api-invoice-retry-payment",
    ),
    re_path(
        r"^invoices/(?P<pk>[^/]+)/credit-notes/?$",
        api_invoices.invoice_credit_notes_view,
        name="api-invoice-credit-notes",
    ),
    re_path(r"^invoices/(?P<pk>[^/]+)/pdf/?$", api_invoices.invoice_pdf_view, name="api-invoice-pdf"),
    re_path(r"^invoices/(?P<pk>[^/]+)/?$", api_invoices.invoice_detail_view, name="api-invoice-detail"),
]
