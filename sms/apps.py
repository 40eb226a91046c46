from django.apps import AppConfig


class SmsConfig(AppConfig):
    name = "sms"
    verbose_name = "Messaging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenancy.services.api_keys import API_SCOPES

        API_SCOPES["sms:read"] = "SMS contacts, campaigns and messages: read"
        API_SCOPES["sms:write"] = "SMS contacts, campaigns and messages: write"
