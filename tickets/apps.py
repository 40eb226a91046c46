from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Support"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenancy.services.api_keys import API_SCOPES

        API_SCOPES["tickets:read"] = "Support tickets: read"
        API_SCOPES["tickets:write"] = "Support tickets: write"
