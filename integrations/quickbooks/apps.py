from django.apps import AppConfig


class QuickBooksConfig(AppConfig):
    name = "integrations.quickbooks"
    label = "quickbooks"
    verbose_name = "QuickBooks Online"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations.quickbooks import handlers  # registers the outbox handlers

        del handlers
