from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import exporters, services  # noqa: F401  (registers the export section and event handlers)
        from billing.services.invoices import INVOICE_PDF, invoice_pdf_attachment
        from notifications.attachments import register
        from tenancy.services.api_keys import API_SCOPES

        register(INVOICE_PDF, invoice_pdf_attachment)

        API_SCOPES["billing:read"] = "Billing: read"
        API_SCOPES["billing:write"] = "Billing: write"
