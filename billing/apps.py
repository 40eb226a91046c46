from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import exporters, services  # noqa: F401  (registers the export section and event handlers)
        from tenancy.services.api_keys import API_SCOPES

        API_SCOPES["billing:read"] = "Billing: read"
        API_SCOPES["billing:write"] = "Billing: write"
